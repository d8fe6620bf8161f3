import { Http2ServerRequest, Http2ServerResponse, type Http2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Node's HTTP/2 compatibility objects, shaped so the rest of Holdfast (the exchange, the holds, the error
 * answers), written against HTTP/1's IncomingMessage and ServerResponse, serves an HTTP/2 stream unchanged
 * (one proxy path, not two). node:http2 lets a server pick these classes (`Http2ServerRequest` and
 * `Http2ServerResponse` options); what they change is the HTTP/1.1 request the backend is sent and the
 * HTTP/2 response the client gets.
 */

/**
 * RFC 9113 §8.2.2: fields that describe one HTTP/1 connection, which an HTTP/2 message must not carry. Our
 * own answers add `Connection: close` when they close an HTTP/1 connection, and a backend's are stripped as
 * hop-by-hop already (headers.ts); on a stream they would make Node throw, so they are dropped here, once.
 */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/**
 * An HTTP/2 request as the edge and the exchange read it. `rawHeaders` is the HTTP/1.1 field list the
 * backend is sent: pseudo-header fields dropped, `:authority` as Host when the client sent no Host (RFC 9113
 * §8.3.1), and the cookie fields HTTP/2 splits per crumb joined again with "; " (§8.2.3). The fields as
 * received, pseudo-header fields included, are kept until the edge checks them (`takeReceivedHeaders`,
 * request-checks.ts), and no longer: a held stream lives for hours, and a second list per stream is about
 * 160 bytes of its heap (issue 13, bench/h2/README.md's heap breakdown).
 * `socket` is the connection's (through Node's guard, so it cannot be written or destroyed from here): its FIN
 * means the client left, its byte counters are the connection's. Writes to this client are measured on
 * the stream (`stream`), not on the connection several streams share.
 */
export class H2Request extends Http2ServerRequest {
  #received: readonly string[] | null;
  /**
   * The connection's guarded socket, taken while the session is there: after the stream is gone Node's
   * `stream.session` is undefined, and a `socket` read then (undici aborting a request, a log line) threw.
   * HTTP/1's `req.socket` stays the (destroyed) socket; this does the same.
   */
  readonly connectionSocket: Socket;
  /** Body bytes this stream has received: its progress, where the connection's counts every stream's (body-stall.ts). */
  bodyBytesRead = 0;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: object | undefined, rawHeaders: string[]) {
    super(stream, headers, options as never, http1Fields(rawHeaders));
    this.#received = rawHeaders;
    this.connectionSocket = stream.session!.socket;
  }

  /** The fields as received, pseudo-header fields included, for the edge's checks: given once, then let go of. */
  takeReceivedHeaders(): readonly string[] {
    const received = this.#received;
    if (received === null) throw new Error('H2Request: the received header fields were already taken');
    this.#received = null;
    return received;
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) this.bodyBytesRead += (chunk as Buffer).length;
    return super.push(chunk, encoding);
  }
}

/** `socket`: the session's guarded socket, not a per-stream stand-in whose `on('end')` is the stream's. */
Object.defineProperty(H2Request.prototype, 'socket', {
  configurable: true,
  get(this: H2Request): Socket {
    return this.connectionSocket;
  },
});

/**
 * An HTTP/2 response as the exchange and the holds write it: what HTTP/2 has no place for (a reason phrase,
 * connection-specific fields) is dropped instead of thrown, 102 goes out as an informational HEADERS frame,
 * and `socket` is null: there is no connection of this response's own to cork, reset or watch (the stream is
 * what a stall watch measures, send-stall.ts), and a FIN watch belongs to the connection (h2-front.ts).
 */
export class H2Response extends Http2ServerResponse<H2Request> {
  override writeHead(statusCode: number, reasonOrHeaders?: string | OutgoingHttpHeaders | string[], headers?: OutgoingHttpHeaders | string[]): this {
    const fields = typeof reasonOrHeaders === 'string' ? headers : reasonOrHeaders;
    if (fields === undefined) return super.writeHead(statusCode);
    // Node's compatibility writeHead takes a flat [name, value, ...] list as HTTP/1's does (typed as an object only).
    return super.writeHead(statusCode, (Array.isArray(fields) ? withoutConnectionFields(fields) : withoutConnectionKeys(fields)) as OutgoingHttpHeaders);
  }

  /** RFC 9110 §15.2.2 (HTTP/1's writeProcessing): an informational HEADERS frame. */
  writeProcessing(): void {
    if (!this.stream.headersSent && !this.stream.destroyed) this.stream.additionalHeaders({ ':status': 102 });
  }

  /**
   * A held stream (hold-registry.ts activate) lives for hours and only writes: let go of what Node's
   * compatibility objects keep for a response still being built and a request still arriving, which is
   * HTTP/2's counterpart of HTTP/1 giving its parser back (stream-takeover.ts). Returns false, changing
   * nothing, when the head is not sent yet or the stream is gone; see releaseCompatState for the rest.
   */
  releaseForHold(): boolean {
    const stream = this.stream;
    if (stream.destroyed || !stream.headersSent) return false;
    return releaseCompatState(this, stream);
  }
}

// Typed on Http2ServerResponse, missing at run time (Node 20): the holds read them as on a ServerResponse.
Object.defineProperties(H2Response.prototype, {
  socket: { configurable: true, get: () => null },
  destroyed: {
    configurable: true,
    get(this: H2Response): boolean {
      return this.stream.destroyed;
    },
  },
  writableNeedDrain: {
    configurable: true,
    get(this: H2Response): boolean {
      return this.stream.writableNeedDrain;
    },
  },
});

/**
 * What releaseCompatState swaps in: frozen, so a write that should never come (a trailer set on a held
 * response) throws instead of landing in an object every held stream shares.
 */
const NO_TRAILERS: Readonly<Record<string, never>> = Object.freeze(Object.create(null) as Record<string, never>);
const NO_FIELDS: readonly string[] = Object.freeze([]);
/** The request fields Node's compatibility getters read (method, url, authority with its Host fallback, scheme). */
const KEPT_REQUEST_FIELDS = [':method', ':path', ':scheme', ':authority'] as const;

/** node:http2's private keys (lib/internal/http2/compat.js, Node 20), found once by their descriptions. */
interface CompatKeys {
  headers: symbol;
  trailers: symbol;
  rawHeaders: symbol;
  rawTrailers: symbol;
}
let compatKeys: CompatKeys | null | undefined;

function findCompatKeys(req: object): CompatKeys | null {
  const byName = new Map(Object.getOwnPropertySymbols(req).map((s) => [s.description, s]));
  const [headers, trailers, rawHeaders, rawTrailers] = ['headers', 'trailers', 'rawHeaders', 'rawTrailers'].map((name) => byName.get(name));
  if (headers === undefined || trailers === undefined || rawHeaders === undefined || rawTrailers === undefined) return null;
  return { headers, trailers, rawHeaders, rawTrailers };
}

type Keyed = Record<symbol, unknown>;

/**
 * Heap snapshots of 3,000 held streams (bench/h2/README.md, "Where the bytes go") put ~2.4 KB per stream in
 * the compatibility objects, most of it in what a held stream never reads again:
 * - the response's header object (a null-prototype dictionary): once sent, node:http2 keeps its own copy as
 *   `stream.sentHeaders`, which `getHeader` now reads (with `:status` and `date` in it);
 * - its trailer object and `wantTrailers` listener: Holdfast sets no trailers, and without the listener Node
 *   ends the stream with the same empty trailing HEADERS frame (core.js onStreamTrailers);
 * - the `timeout` closure each of request and response puts on the stream: nothing sets a timeout on a
 *   stream (the idle deadline is the session's, h2-front.ts); and the response's `aborted` listener, which
 *   does nothing ("non-op for now");
 * - the request's header dictionary: `req.headers` keeps the pseudo-header fields the compatibility getters
 *   read (`method`, `url`, `authority`, `scheme`); `rawHeaders`, the HTTP/1.1 field list, is kept for links;
 * - its trailer objects and `trailers` listener, once the request has ended (END_STREAM came): no trailer can
 *   follow. A request body still arriving keeps them.
 * Everything is checked against what Node 20 has; what is not found is left as it is.
 */
function releaseCompatState(res: H2Response, stream: Http2Stream): boolean {
  const req = res.req;
  compatKeys ??= findCompatKeys(req);
  const keys = compatKeys;
  if (keys === null || !(keys.headers in res) || !(keys.headers in req)) return false;
  const sent = stream.sentHeaders as object | undefined;
  if (sent !== undefined) (res as unknown as Keyed)[keys.headers] = sent;
  if (removeNamedListener(stream, 'wantTrailers', 'onStreamTrailersReady')) (res as unknown as Keyed)[keys.trailers] = NO_TRAILERS;
  removeNamedListener(stream, 'aborted', 'onStreamAbortedResponse');
  for (const timeout of stream.listeners('timeout')) {
    if (timeout.name === 'onStreamTimeout') stream.removeListener('timeout', timeout as () => void);
  }

  const received = req.headers;
  const kept: IncomingHttpHeaders = {};
  for (const name of KEPT_REQUEST_FIELDS) {
    const value = received[name];
    if (value !== undefined) kept[name] = value;
  }
  if (kept[':authority'] === undefined && received.host !== undefined) kept.host = received.host;
  (req as unknown as Keyed)[keys.headers] = kept;
  // The HTTP/1.1 field list stays: a GRIP link fetched for the stream later is built from it (the exchange
  // rebuilds its upstream fields from req.rawHeaders, test/hold/h2-links.test.ts).
  if ((stream.endAfterHeaders || req.readableEnded) && removeNamedListener(stream, 'trailers', 'onStreamTrailers')) {
    (req as unknown as Keyed)[keys.trailers] = NO_TRAILERS;
    (req as unknown as Keyed)[keys.rawTrailers] = NO_FIELDS;
  }
  return true;
}

function removeNamedListener(stream: Http2Stream, event: string, name: string): boolean {
  const listener = stream.listeners(event).find((l) => l.name === name);
  if (listener === undefined) return false;
  stream.removeListener(event, listener as () => void);
  return true;
}

/** The stream under a response, when it is an HTTP/2 one. */
export function h2StreamOf(res: object): Http2Stream | null {
  return res instanceof H2Response ? res.stream : null;
}

function http1Fields(raw: readonly string[]): string[] {
  const out: string[] = [];
  let authority: string | undefined;
  let hasHost = false;
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'host') hasHost = true;
    else if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    out.push(name, value);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  // Host first, where an HTTP/1.1 client puts it.
  if (!hasHost && authority !== undefined) out.unshift('host', authority);
  return out;
}

function withoutConnectionFields(fields: string[]): string[] {
  let kept: string[] | null = null;
  for (let i = 0; i < fields.length; i += 2) {
    if (CONNECTION_SPECIFIC.has(fields[i]!.toLowerCase())) {
      kept ??= fields.slice(0, i);
      continue;
    }
    kept?.push(fields[i]!, fields[i + 1]!);
  }
  return kept ?? fields;
}

function withoutConnectionKeys(fields: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(fields)) {
    if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}
