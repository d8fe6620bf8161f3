import type { IncomingMessage } from 'node:http';
import type { H2Request } from './h2-compat.js';
import { type AnswerableErrorDef, ClientRequestError, E } from '../errors.js';

/**
 * What Node's parser (llhttp) lets through but a gateway must refuse (DESIGN.md). Returns the target to
 * forward (origin-form, or `*` for a server-wide OPTIONS), or the error to answer with. Every refusal here is
 * answered and the connection closed; nothing reaches a backend.
 */
export interface CheckedRequest {
  /** Target to send upstream: origin-form, or `*` (asterisk-form, OPTIONS only). */
  target: string;
  /** RFC 9112 §6.3: a body only if Content-Length > 0 or Transfer-Encoding says so. */
  hasBody: boolean;
}

export function checkRequest(req: IncomingMessage, maxHeaderFields: number): CheckedRequest | ClientRequestError {
  const raw = req.rawHeaders;
  // The server lets one field more than the limit through (Edge sets maxHeadersCount), so more means too many;
  // Node itself would drop the excess without a word and the backend would get a truncated request.
  if (raw.length > maxHeaderFields * 2) {
    return new ClientRequestError(
      E.TOO_MANY_HEADERS,
      `the request has more than limits.maxHeaderFields (${maxHeaderFields}) header fields`,
    );
  }
  let hostCount = 0;
  let host: string | undefined;
  let transferEncoding: string | undefined;
  let contentLength: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hostCount++;
      host = raw[i + 1];
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? raw[i + 1]! : `${transferEncoding}, ${raw[i + 1]!}`;
    } else if (name.length === 14 && name.toLowerCase() === 'content-length') {
      contentLength = raw[i + 1];
    }
  }
  // llhttp accepts a request line without a version (reported as HTTP/0.9, so headers and framing rules
  // below would not apply) and `HTTP/2.0` in HTTP/1 framing. RFC 9112 §3: the request line needs an
  // HTTP-version, so no version is a 400; §2.3 / RFC 9110 §15.6.6: another major version is a 505.
  if (req.httpVersionMajor !== 1) {
    if (req.httpVersionMajor === 0) return refuse(E.BAD_VERSION, 'the request line must end in HTTP/1.0 or HTTP/1.1');
    return new ClientRequestError(E.VERSION_NOT_SUPPORTED, 'only HTTP/1.0 and HTTP/1.1 are spoken here');
  }
  // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host, or with more than one.
  if (hostCount > 1) return refuse(E.DUPLICATE_HOST, 'the request has more than one Host header');
  if (hostCount === 0 && req.httpVersionMinor >= 1) {
    return refuse(E.MISSING_HOST, 'an HTTP/1.1 request must carry a Host header');
  }
  if (host !== undefined && !isValidHost(host)) return refuse(E.BAD_HOST, 'the Host header is not a valid authority');
  if (transferEncoding !== undefined) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
    if (req.httpVersionMinor === 0) {
      return refuse(E.TE_ON_HTTP10, 'Transfer-Encoding is not allowed in an HTTP/1.0 request');
    }
    // RFC 9112 §6.3: when chunked is not the final coding the body length cannot be known: 400 and close.
    // (llhttp refuses `chunked, gzip` itself but lets a list without chunked, such as `gzip`, through.)
    const codings = transferEncoding.toLowerCase().split(',');
    if (codings[codings.length - 1]!.trim() !== 'chunked') {
      return refuse(E.CHUNKED_NOT_FINAL, 'the final transfer coding of a request must be chunked');
    }
    // We forward bodies re-chunked; any coding but a lone `chunked` would need decoding we do not do (§6.1: 501).
    if (transferEncoding.trim().toLowerCase() !== 'chunked') {
      return new ClientRequestError(
        E.UNSUPPORTED_TRANSFER_CODING,
        `transfer coding "${transferEncoding.slice(0, 64)}" is not supported; only chunked`,
      );
    }
  }

  const hasBody = transferEncoding !== undefined || (contentLength !== undefined && Number(contentLength) > 0);
  const url = req.url ?? '';
  // RFC 9112 §3.2: no form of request-target has a fragment; llhttp lets `#` through, HAProxy 2.6 answers 400.
  if (url.includes('#')) return refuse(E.BAD_TARGET, 'the request target carries a fragment (#)');
  if (url.startsWith('/')) return { target: url, hasBody };
  // RFC 9112 §3.2.4: the asterisk-form asks about the server as a whole, and only OPTIONS may use it (llhttp
  // takes `*` with any method). A gateway forwards it as it is, as HAProxy and nginx do.
  if (url === '*') {
    if (req.method === 'OPTIONS') return { target: '*', hasBody };
    return refuse(E.BAD_TARGET, 'the asterisk-form target (*) is only allowed with OPTIONS');
  }
  // RFC 9112 §3.2.2: absolute-form. A gateway must not let the target's authority disagree with Host:
  // routing on one and the backend trusting the other is a classic request-smuggling split.
  if (/^https?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return refuse(E.BAD_TARGET, 'the request target is not a valid absolute URI');
    }
    if (host === undefined || !sameAuthority(parsed, host)) {
      return refuse(E.AUTHORITY_MISMATCH, 'the absolute request target names another host than Host');
    }
    // RFC 9112 §3.2.4: OPTIONS with an empty path and no query means the server, and the last proxy before
    // the origin server MUST send it as `*` (URL would turn the empty path into `/`).
    if (req.method === 'OPTIONS' && EMPTY_PATH_ABSOLUTE_FORM.test(url)) return { target: '*', hasBody };
    return { target: originFormOf(url), hasBody };
  }
  return refuse(E.BAD_TARGET, 'the request target must be origin-form (/path), absolute-form, or * for OPTIONS');
}

/**
 * The same gate for an HTTP/2 request (RFC 9113 §8.3). nghttp2 has already reset as malformed, with
 * PROTOCOL_ERROR, a stream carrying connection-specific fields or a TE other than `trailers`, upper-case
 * names, a missing, repeated or unknown pseudo-header field, or one after a regular field (§8.2.2, §8.3,
 * test/edge/h2-hostile.test.ts): those never reach here. What is left is what needs the gateway's view:
 * the authority the request is routed on, the target's form, and the field limit. Once per request: it takes
 * the fields as received (H2Request.takeReceivedHeaders).
 */
export function checkH2Request(req: H2Request, maxHeaderFields: number): CheckedRequest | ClientRequestError {
  const raw = req.takeReceivedHeaders();
  let fields = 0;
  let hostCount = 0;
  let host: string | undefined;
  let authority: string | undefined;
  let path: string | undefined;
  let protocol: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name === ':authority') authority = raw[i + 1];
    else if (name === ':path') path = raw[i + 1];
    else if (name === ':protocol') protocol = raw[i + 1];
    else if (name.charCodeAt(0) !== 0x3a) {
      fields++;
      if (name === 'host') {
        hostCount++;
        host = raw[i + 1];
      }
    }
  }
  if (fields > maxHeaderFields) {
    return new ClientRequestError(E.TOO_MANY_HEADERS, `the request has more than limits.maxHeaderFields (${maxHeaderFields}) header fields`);
  }
  if (hostCount > 1) return refuse(E.DUPLICATE_HOST, 'the request has more than one Host header');
  // RFC 9113 §8.3.1: an http or https request names its authority in :authority or Host; when both are
  // there they must agree (a router reading one and a backend the other is a request-smuggling split).
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
    return refuse(E.AUTHORITY_MISMATCH, ':authority and Host name different hosts');
  }
  const named = host ?? authority;
  if (named === undefined) return refuse(E.MISSING_HOST, 'an HTTP/2 request must carry :authority or Host');
  if (!isValidHost(named)) return refuse(E.BAD_HOST, ':authority or Host is not a valid authority');
  // RFC 8441 §4: extended CONNECT (nghttp2 checked :scheme and :path are there) opens a WebSocket.
  if (req.method === 'CONNECT' && protocol?.toLowerCase() !== 'websocket') {
    return new ClientRequestError(E.METHOD_NOT_SUPPORTED, protocol === undefined ? 'CONNECT tunnels are not offered' : `CONNECT :protocol ${JSON.stringify(protocol.slice(0, 32))} is not offered; websocket is`);
  }
  // The body is whatever DATA frames follow a HEADERS frame without END_STREAM (RFC 9113 §8.1).
  const hasBody = !req.stream.endAfterHeaders;
  if (path === undefined || path.includes('#')) return refuse(E.BAD_TARGET, 'the :path is missing or carries a fragment (#)');
  if (path.startsWith('/')) return { target: path, hasBody };
  if (path === '*' && req.method === 'OPTIONS') return { target: '*', hasBody };
  return refuse(E.BAD_TARGET, 'the :path must be origin-form (/path), or * for OPTIONS');
}

/**
 * The path and query of an absolute-form target exactly as the client sent them, as nginx and HAProxy forward
 * them. URL's pathname would rewrite them first: dot segments removed (`/a/%2e%2e/b` became `/b`) and `\`
 * turned into `/`, so the backend would get another resource than the one asked for, and the origin-form of
 * the same request.
 */
function originFormOf(absolute: string): string {
  const authorityStart = absolute.indexOf('//') + 2;
  const pathStart = absolute.slice(authorityStart).search(/[/?]/);
  if (pathStart < 0) return '/';
  const rest = absolute.slice(authorityStart + pathStart);
  return rest.startsWith('?') ? `/${rest}` : rest;
}

/** `http://authority` with nothing after the authority: no path, no query. */
const EMPTY_PATH_ABSOLUTE_FORM = /^https?:\/\/[^/?#]*$/i;

function refuse(def: AnswerableErrorDef & { httpStatus: 400 }, message: string): ClientRequestError {
  return new ClientRequestError(def, message);
}

/** RFC 3986 authority without userinfo: reg-name or IPv4, or an IP literal in brackets, optional port. */
const HOST_PATTERN = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::\d{0,5})?$/;

function isValidHost(value: string): boolean {
  return HOST_PATTERN.test(value);
}

function sameAuthority(target: URL, host: string): boolean {
  const defaultPort = target.protocol === 'https:' ? '443' : '80';
  const [hostName, hostPort] = splitHostPort(host.toLowerCase());
  return hostName === target.hostname.toLowerCase() && (hostPort || defaultPort) === (target.port || defaultPort);
}

function splitHostPort(authority: string): [string, string] {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority);
  return match ? [match[1]!, match[2] ?? ''] : [authority, ''];
}
