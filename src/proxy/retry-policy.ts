import { errors } from 'undici';
import { E, UpstreamError } from '../errors.js';
import { kSocketBytesRead } from './upstream.js';

/** RFC 9110 §9.2.2. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method);
}

/** Errors raised while opening the connection: the request never left us, so any method may go elsewhere. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** undici's messages for an interim or upgrade answer it refuses (client-h1.js onHeadersComplete). */
const UNDICI_BAD_RESPONSE = new Set(['bad response', 'bad upgrade']);

/** The connection broke under the request. */
const RESET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED']);

export interface UpstreamFailure {
  error: UpstreamError;
  /** The request provably never reached the backend. */
  notSent: boolean;
  /** The failure came on a pooled socket that had served earlier responses (the keep-alive race). */
  staleReusedSocket: boolean;
  /** Counts against the backend's passive health. */
  healthFailure: boolean;
}

type UndiciError = Error & { code?: string; socket?: { bytesRead?: number }; [kSocketBytesRead]?: number };

/** Turns what undici reports into the status we answer with and the facts the retry decision needs. */
export function classifyUpstreamError(backend: string, err: unknown, responseStarted: boolean): UpstreamFailure {
  const e = err as UndiciError;
  const code = e.code ?? '';
  if (CONNECT_ERRORS.has(code)) {
    const timedOut = code === 'UND_ERR_CONNECT_TIMEOUT';
    return {
      error: new UpstreamError(
        timedOut ? E.UPSTREAM_CONNECT_TIMEOUT : E.UPSTREAM_REFUSED,
        backend,
        timedOut ? 'did not accept the connection in time' : `refused the connection (${code})`,
        err,
      ),
      notSent: true,
      staleReusedSocket: false,
      healthFailure: true,
    };
  }
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
    // undici refused to send what the client gave us (a header it will not write): the client's fault, not
    // the backend's, and nothing was sent.
    return {
      error: new UpstreamError(E.UNFORWARDABLE_REQUEST, backend, `cannot be sent this request (${e.message})`, err),
      notSent: false,
      staleReusedSocket: false,
      healthFailure: false,
    };
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return {
      error: new UpstreamError(E.UPSTREAM_TIMEOUT, backend, 'did not answer in time', err),
      notSent: false,
      staleReusedSocket: false,
      healthFailure: true,
    };
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return {
      error: new UpstreamError(E.UPSTREAM_BODY_TIMEOUT, backend, 'stalled while sending the response', err),
      notSent: false,
      staleReusedSocket: false,
      healthFailure: true,
    };
  }
  if (code === 'UND_ERR_SOCKET' && UNDICI_BAD_RESPONSE.has(e.message)) {
    // undici's SocketError for an answer it will not take: a 100 it did not ask for (it never sends Expect),
    // or a 101 to a plain request. The backend answered, wrongly: a bad response, not a reset, and the
    // request is not re-sent as if the socket had gone stale (the bytes it read were this answer's).
    return {
      error: new UpstreamError(
        E.UPSTREAM_BAD_RESPONSE,
        backend,
        `sent an answer the request did not allow (${e.message}: an unasked 100 Continue or 101)`,
        err,
      ),
      notSent: false,
      staleReusedSocket: false,
      healthFailure: true,
    };
  }
  if (RESET_ERRORS.has(code)) {
    // With no byte of this response read, any bytes the socket had read belong to earlier responses: the
    // socket was reused. That is the one failure where a fresh connection may succeed (DESIGN.md).
    const bytesRead = e.socket?.bytesRead ?? e[kSocketBytesRead] ?? 0;
    return {
      error: new UpstreamError(E.UPSTREAM_RESET, backend, `closed the connection (${code})`, err),
      notSent: false,
      staleReusedSocket: !responseStarted && bytesRead > 0,
      healthFailure: responseStarted || bytesRead === 0,
    };
  }
  // undici 7 builds HTTPParserError's code from a name->number table indexed by number, so `code` is
  // undefined for every llhttp failure (garbage status line, bad header): recognise the class instead.
  if (
    code.startsWith('HPE_') ||
    err instanceof errors.HTTPParserError ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    code === 'UND_ERR_RESPONSE' ||
    code === 'UND_ERR_INFO'
  ) {
    return {
      error: new UpstreamError(E.UPSTREAM_BAD_RESPONSE, backend, `sent an invalid response (${code})`, err),
      notSent: false,
      staleReusedSocket: false,
      healthFailure: true,
    };
  }
  return {
    error: new UpstreamError(E.UPSTREAM_FAILED, backend, `failed (${code || e.message})`, err),
    notSent: false,
    staleReusedSocket: false,
    healthFailure: true,
  };
}

export interface RetryFacts {
  method: string;
  /** The request has a body we stream (we never buffer one), so once sent it cannot be sent again. */
  hasBody: boolean;
  /** Not a byte of the body has been read from the client yet. */
  bodyUntouched: boolean;
  /** A response byte reached the client already. */
  responseStarted: boolean;
  attemptsLeft: number;
}

/**
 * nginx never re-sends POST/LOCK/PATCH; we are stricter still: a request is resent only when it provably
 * never arrived (connect failure) or when a reused pooled socket died before any response byte and the
 * request is idempotent with a replayable body. A POST is never sent twice.
 */
export function mayRetry(failure: UpstreamFailure, facts: RetryFacts): boolean {
  if (facts.attemptsLeft <= 0 || facts.responseStarted) return false;
  if (failure.notSent) return facts.bodyUntouched;
  return failure.staleReusedSocket && isIdempotent(facts.method) && !facts.hasBody;
}
