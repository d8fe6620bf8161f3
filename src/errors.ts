import { E, type AnswerableErrorDef, type ErrorCode } from './error-codes.js';

/**
 * Every error Holdfast raises on purpose carries a stable `code` (HF_ERR_*, never reused) and the HTTP status
 * the one boundary that turns errors into bytes should answer with, both from its entry in the registry
 * (error-codes.ts). Tests assert codes, never message text.
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
