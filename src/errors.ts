/**
 * Every HF_ERR_* code Holdfast uses, in one table (as fastify's lib/errors.js keeps its codes): the HTTP
 * status it is answered with, which listener answers it, and what it means. Errors (the classes below) are
 * made from an entry (`new ClientRequestError(E.BAD_HOST, '...')`), so a status is written once and a
 * misspelt code does not compile. The README's error table is checked against this one
 * (test/docs/error-table.test.ts).
 *
 * `status` is null for a code that names an event, never an answer of ours (a cut connection, a refusal the
 * backend made). `wsCloseCode` is the close code a WebSocket already open is closed with for this error.
 * `listener` says where the code can be answered: `client` (the proxy port), `control` (the control
 * listener), or `none` (start-up, the CLI, logs and metrics only).
 */
const TABLE = {
  // --- the client listener: requests refused before any backend sees them (never forwarded) ---------------
  MALFORMED_REQUEST: { status: 400, listener: 'client', meaning: 'the request does not parse as HTTP/1.1' },
  DUPLICATE_HOST: { status: 400, listener: 'client', meaning: 'more than one Host header' },
  MISSING_HOST: { status: 400, listener: 'client', meaning: 'an HTTP/1.1 request without Host, or an HTTP/2 one without :authority or Host' },
  BAD_HOST: { status: 400, listener: 'client', meaning: 'the Host header is not a valid authority' },
  TE_ON_HTTP10: { status: 400, listener: 'client', meaning: 'Transfer-Encoding in an HTTP/1.0 request' },
  CHUNKED_NOT_FINAL: { status: 400, listener: 'client', meaning: 'the last transfer coding is not chunked' },
  AUTHORITY_MISMATCH: { status: 400, listener: 'client', meaning: 'an absolute-form target (or an HTTP/2 :authority) names another host than Host' },
  BAD_TARGET: { status: 400, listener: 'client', meaning: 'the request target is not origin-form, absolute-form or * for OPTIONS' },
  BAD_VERSION: { status: 400, listener: 'client', meaning: 'the request line does not end in an HTTP version' },
  EXPECTATION_FAILED: { status: 417, listener: 'client', meaning: 'an Expect other than 100-continue' },
  VERSION_NOT_SUPPORTED: { status: 505, listener: 'client', meaning: 'an HTTP version other than 1.0 and 1.1' },
  UNSUPPORTED_TRANSFER_CODING: { status: 501, listener: 'client', meaning: 'a transfer coding other than chunked' },
  METHOD_NOT_SUPPORTED: { status: 501, listener: 'client', meaning: 'a method the parser does not know, or CONNECT' },
  URI_TOO_LONG: { status: 414, listener: 'client', meaning: 'the request line alone exceeds limits.maxHeaderBytes' },
  HEADERS_TOO_LARGE: { status: 431, listener: 'client', meaning: 'the request head exceeds limits.maxHeaderBytes' },
  TOO_MANY_HEADERS: { status: 431, listener: 'client', meaning: 'more header fields than limits.maxHeaderFields' },
  CHUNK_EXTENSIONS_TOO_LARGE: { status: 413, listener: 'client', meaning: 'chunk extensions longer than the parser takes' },
  REQUEST_HEAD_TIMEOUT: { status: 408, listener: 'client', meaning: 'the request head did not arrive within timeouts.requestHeadMs' },
  BODY_TIMEOUT: { status: 408, listener: 'client', meaning: 'the request body stalled for timeouts.requestBodyStallMs' },
  CONNECTION_LIMIT: { status: 503, listener: 'client', meaning: 'limits.maxConnections reached and no connection is idle' },
  CLIENT_CONNECTION_LIMIT: { status: 503, listener: 'client', meaning: 'limits.maxConnectionsPerClient reached for the address' },
  NO_ROUTE: { status: 404, listener: 'client', meaning: 'no route matches the request' },
  DRAINING: { status: 503, listener: 'client', meaning: 'shutting down: no new WebSocket connections' },
  SEND_TIMEOUT: { status: null, listener: 'none', meaning: 'the client read nothing for timeouts.sendStallMs: the connection is cut' },
  CLIENT_GONE: { status: 499, listener: 'none', meaning: 'the client closed the connection before its answer (logs only)' },

  // --- the client listener: backends failed us ------------------------------------------------------------
  NO_HEALTHY_BACKEND: { status: 503, listener: 'client', wsCloseCode: 1011, meaning: 'no server of the group takes traffic' },
  QUEUE_FULL: { status: 503, listener: 'client', wsCloseCode: 1011, meaning: 'the group is at capacity and its queue is full' },
  QUEUE_TIMEOUT: { status: 503, listener: 'client', wsCloseCode: 1011, meaning: 'no server was free within queue.timeoutMs' },
  UPSTREAM_REFUSED: { status: 502, listener: 'client', wsCloseCode: 1011, meaning: 'the backend refused the connection' },
  UPSTREAM_RESET: { status: 502, listener: 'client', wsCloseCode: 1011, meaning: 'the backend closed the connection mid-exchange' },
  UPSTREAM_BAD_RESPONSE: { status: 502, listener: 'client', wsCloseCode: 1011, meaning: 'the backend answered something that is not valid HTTP' },
  UPSTREAM_FAILED: { status: 502, listener: 'client', wsCloseCode: 1011, meaning: 'the backend exchange failed another way' },
  UPSTREAM_CONNECT_TIMEOUT: { status: 504, listener: 'client', wsCloseCode: 1011, meaning: 'the backend did not accept the connection in time' },
  UPSTREAM_TIMEOUT: { status: 504, listener: 'client', wsCloseCode: 1011, meaning: 'the backend did not answer in time' },
  UPSTREAM_BODY_TIMEOUT: { status: 504, listener: 'client', wsCloseCode: 1011, meaning: 'the backend stalled while sending its answer' },
  UNFORWARDABLE_REQUEST: { status: 400, listener: 'client', wsCloseCode: 1011, meaning: 'the request cannot be sent to a backend as given' },
  GRIP_INSTRUCT: { status: 502, listener: 'client', meaning: 'the backend sent an invalid GRIP instruction' },
  HOLD_LIMIT: { status: 502, listener: 'client', meaning: 'the backend asked for more channels than push.maxChannelsPerConnection' },

  // --- WebSockets --------------------------------------------------------------------------------------
  WS_BAD_HANDSHAKE: { status: 400, listener: 'client', meaning: 'not a valid WebSocket handshake' },
  WS_VERSION: { status: 426, listener: 'client', meaning: 'a WebSocket version other than 13' },
  WS_REFUSED: { status: null, listener: 'none', meaning: "the backend refused the handshake: its answer is relayed (metrics only)" },
  WS_EVENTS: { status: 502, listener: 'client', wsCloseCode: 1011, meaning: 'the backend sent an invalid application/websocket-events body' },
  WS_EVENTS_REFUSED: { status: 502, listener: 'none', wsCloseCode: 1011, meaning: 'the backend answered an open WebSocket-over-HTTP session with an error status or not application/websocket-events' },
  WS_CONTROL: { status: 502, listener: 'none', meaning: 'the backend sent an invalid GRIP control message (it is dropped)' },

  // --- the control listener ------------------------------------------------------------------------------
  PUBLISH_UNAUTHORIZED: { status: 401, listener: 'control', meaning: 'a publish without the publish key' },
  PUBLISH_TOO_LARGE: { status: 413, listener: 'control', meaning: 'the publish body exceeds publish.maxBodyBytes' },
  PUBLISH_JSON: { status: 400, listener: 'control', meaning: 'the publish body is not JSON' },
  PUBLISH_ITEMS: { status: 400, listener: 'control', meaning: "the publish body is not an object with an 'items' list" },
  PUBLISH_ITEM: { status: 400, listener: 'control', meaning: 'a publish item is invalid' },
  PUBLISH_MESSAGE_TOO_LARGE: { status: 413, listener: 'control', meaning: 'a published message exceeds publish.maxMessageBytes' },
  CONTROL_UNAUTHORIZED: { status: 401, listener: 'control', meaning: 'a control endpoint asked without the publish key' },
  CONTROL_NOT_FOUND: { status: 404, listener: 'control', meaning: 'no such control endpoint (or reload is not available)' },
  CONTROL_METHOD_NOT_ALLOWED: { status: 405, listener: 'control', meaning: 'a method the control endpoint does not take' },
  CONFIG: { status: 400, listener: 'control', meaning: 'an invalid configuration: start-up stops, a reload changes nothing' },
  BUS_UNAVAILABLE: { status: 503, listener: 'control', meaning: 'the bus cannot take or give items now: nothing was published' },
  CLUSTER_UNAVAILABLE: { status: 503, listener: 'control', meaning: 'a worker or the primary did not answer in time' },
  INTERNAL: { status: 500, listener: 'control', meaning: 'an unexpected failure (a bug): the message says what' },

  // --- start-up and the command line ------------------------------------------------------------------------
  LISTEN: { status: 500, listener: 'none', meaning: 'cannot listen on an address' },
  FD_LIMIT: { status: 500, listener: 'none', meaning: 'the open-files limit leaves no room for client connections' },
  WORKER_CRASH_LOOP: { status: 500, listener: 'none', meaning: 'a worker kept exiting before it was ready' },
  CONTROL_UNREACHABLE: { status: 502, listener: 'none', meaning: '`holdfast publish` got no answer from the control address' },
  NOT_CONTROL_LISTENER: { status: 502, listener: 'none', meaning: "`holdfast publish` got an answer, but not the control listener's" },
} as const satisfies Record<string, TableRow>;

interface TableRow {
  status: number | null;
  listener: ErrorListener;
  meaning: string;
  wsCloseCode?: number;
}

export type ErrorListener = 'client' | 'control' | 'none';
export type ErrorName = keyof typeof TABLE;
export type ErrorCode = `HF_ERR_${ErrorName}`;

export interface ErrorDef<N extends ErrorName = ErrorName> {
  readonly code: `HF_ERR_${N}`;
  readonly httpStatus: (typeof TABLE)[N]['status'];
  readonly listener: ErrorListener;
  readonly meaning: string;
  readonly wsCloseCode: number | undefined;
}

/** An entry a HoldfastError can be made from: one with a status to answer. */
export type AnswerableErrorDef = ErrorDef & { readonly httpStatus: number };

/** The registry: `E.NO_ROUTE.code === 'HF_ERR_NO_ROUTE'`, `E.NO_ROUTE.httpStatus === 404`. */
export const E = Object.freeze(
  Object.fromEntries(
    Object.entries(TABLE).map(([name, row]: [string, TableRow]) => [
      name,
      Object.freeze({
        code: `HF_ERR_${name}`,
        httpStatus: row.status,
        listener: row.listener,
        meaning: row.meaning,
        wsCloseCode: row.wsCloseCode,
      }),
    ]),
  ),
) as { readonly [N in ErrorName]: ErrorDef<N> };

const BY_CODE: ReadonlyMap<string, ErrorDef> = new Map(Object.values(E).map((def: ErrorDef) => [def.code, def]));

/** The entry for a code from outside (a cluster message, a response header); undefined when it is not ours. */
export function errorDefOf(code: string): ErrorDef | undefined {
  return BY_CODE.get(code);
}

/** True for an entry a HoldfastError can be made from (one with a status to answer). */
export function isAnswerable(def: ErrorDef): def is AnswerableErrorDef {
  return def.httpStatus !== null;
}

/** Every entry, in table order (the README's order). */
export function allErrorDefs(): readonly ErrorDef[] {
  return [...BY_CODE.values()];
}

/**
 * Every error Holdfast raises on purpose carries a stable `code` (HF_ERR_*, never reused) and the HTTP status
 * the one boundary that turns errors into bytes should answer with, both from its entry in the table above.
 * Tests assert codes, never message text.
 */
export class HoldfastError extends Error {
  readonly def: AnswerableErrorDef;
  readonly code: ErrorCode;
  readonly httpStatus: number;
  /** The close code for a WebSocket already open that this error ends (RFC 6455 §7.4.1). */
  readonly wsCloseCode: number | undefined;

  constructor(def: AnswerableErrorDef, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.def = def;
    this.code = def.code;
    this.httpStatus = def.httpStatus;
    this.wsCloseCode = def.wsCloseCode;
  }
}

/** One invalid configuration value: where it is, what it was, what was expected. */
export interface ConfigIssue {
  path: string;
  value: unknown;
  expected: string;
  /** The flag or HOLDFAST_* variable the value came from, when not the file: the error then names it. */
  source?: string;
}

export class ConfigError extends HoldfastError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(E.CONFIG, formatConfigIssues(issues));
    this.issues = issues;
  }
}

function formatConfigIssues(issues: readonly ConfigIssue[]): string {
  const lines = issues.map((i) =>
    i.source === undefined
      ? `  ${i.path || '(root)'}: ${showValue(i.value)} (${i.expected})`
      : `  ${i.source} must be ${i.expected}, got ${typeof i.value === 'string' || typeof i.value === 'number' ? `'${i.value}'` : showValue(i.value)} (${i.path})`,
  );
  return `invalid configuration:\n${lines.join('\n')}`;
}

function showValue(value: unknown): string {
  if (value === undefined) return 'missing';
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

export class ListenError extends HoldfastError {
  constructor(what: string, address: string, cause: NodeJS.ErrnoException) {
    const reason =
      cause.code === 'EADDRINUSE'
        ? 'address already in use'
        : cause.code === 'EACCES'
          ? 'permission denied'
          : cause.code === 'EADDRNOTAVAIL'
            ? 'address not available on this machine'
            : (cause.code ?? cause.message);
    super(E.LISTEN, `cannot listen for ${what} on ${address}: ${reason}`, { cause });
  }
}

/** A request the edge refuses before anything reaches a backend. */
export class ClientRequestError extends HoldfastError {}

/** A backend failed us: 502 (refused, reset, garbage), 503 (none available), 504 (too slow). */
export class UpstreamError extends HoldfastError {
  readonly backend: string;

  constructor(def: AnswerableErrorDef, backend: string, reason: string, cause?: unknown) {
    super(def, `backend ${backend} ${reason}`, { cause });
    this.backend = backend;
  }
}

/** The bus (Redis, NATS, the cluster primary) cannot take or give items now; nothing was published. */
export class BusUnavailableError extends HoldfastError {
  constructor(driver: string, reason: string, cause?: unknown) {
    super(E.BUS_UNAVAILABLE, `the ${driver} bus is unavailable: ${reason}`, { cause });
  }
}

/** A cluster worker got no answer from the primary in time, or the primary not from every worker. */
export class ClusterUnavailableError extends HoldfastError {
  constructor(reason: string) {
    super(E.CLUSTER_UNAVAILABLE, `the cluster cannot answer: ${reason}`);
  }
}

/** A worker slot kept exiting before it was ready: the primary stops instead of restarting it for ever. */
export class WorkerCrashLoopError extends HoldfastError {
  constructor(attempts: number, reason: string) {
    super(E.WORKER_CRASH_LOOP, `a worker failed ${attempts} times in a row before it was ready; stopping: ${reason}`);
  }
}

/** `holdfast publish` got no HTTP answer from the address it was given: the reason is the socket's. */
export class ControlUnreachableError extends HoldfastError {
  constructor(address: string, reason: string, cause?: unknown) {
    super(E.CONTROL_UNREACHABLE, `cannot reach the control listener at ${address}: ${reason}`, { cause });
  }
}

/** `holdfast publish` got an answer, but from something else (a backend's page, Holdfast's client port, Redis). */
export class NotControlListenerError extends HoldfastError {
  constructor(address: string, what: string) {
    super(E.NOT_CONTROL_LISTENER, `${address} answered, but not as Holdfast's control listener: ${what}`);
  }
}
