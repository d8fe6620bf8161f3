import type { Dispatcher } from 'undici';
import { HoldfastError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { PickRequest } from './balancer.js';
import type { BackendGroup, GroupRequest } from './group.js';
import { classifyUpstreamError, isIdempotent, mayRetry, type UpstreamFailure } from './retry-policy.js';
import type { Backend } from './upstream.js';

/** A request the sender places in a group and may send more than once. */
export interface SentRequest extends GroupRequest {
  readonly method: string;
  /** Sends so far, the failed one included. */
  readonly attempts: number;
  /** Servers a connect failure already ruled out for this request. */
  triedServers: Set<Backend> | null;
}

/** What the retry decision needs to know of a failed send, beyond the error. */
export interface SendFacts {
  /** A byte of the backend's answer had arrived: the request reached it. */
  responseStarted: boolean;
  /** The request's body is streamed from the client, so once sent it cannot be sent again. */
  streamedBody: boolean;
  /** Not a byte of that body has been read from the client yet. */
  bodyUntouched: boolean;
  /** A byte of the answer reached the client already. */
  clientSawResponse: boolean;
}

/** A failed send, counted: the server to send to again, or null when the request fails with `failure.error`. */
export interface SendOutcome {
  failure: UpstreamFailure;
  next: Backend | null;
}

/** A small request sent whole and answered whole (GRIP links, WebSocket-over-HTTP POSTs). */
export interface BufferedRequest {
  method: string;
  path: string;
  headers: string[];
  body: Buffer | null;
  /** What the group's balancer, sticky pin and hashing look at. */
  pickRequest: PickRequest;
  /** How much of an answer with this head to keep; past it the answer is cut and reported oversized. */
  maxBodyBytes(status: number, headers: readonly string[]): number;
}

export interface BufferedResponse {
  status: number;
  reason: string;
  /** Name/value pairs as the backend sent them. */
  headers: string[];
  body: Buffer;
  /** The body went past maxBodyBytes: `body` holds what came before, the rest was not read. */
  oversized: boolean;
  backend: Backend;
}

export type BufferedResult =
  | { ok: true; response: BufferedResponse }
  | {
      ok: false;
      error: HoldfastError;
      /** The request provably never reached a backend (refused connection, or never admitted). */
      notSent: boolean;
      backend: Backend | null;
    };

/**
 * The one way a request goes to a backend group, whoever sends it (the proxy, GRIP link fetches,
 * WebSocket-over-HTTP POSTs): admission (a server with a free slot, else the group's bounded queue, else
 * 503), the balancer's choice, passive health for every failure and answer, and the retry policy (a
 * request is resent only when it provably never arrived, or when a reused socket went stale under an
 * idempotent request: a POST that reached a backend is never sent again).
 */
export class GroupSender {
  readonly #metrics: Metrics;
  readonly #log: Logger;

  constructor(metrics: Metrics, log: Logger) {
    this.#metrics = metrics;
    this.#log = log;
  }

  /**
   * Place a request in its group: a server with a free slot, null when it waits in the queue (the group
   * calls `request.dequeued` later), or the 503 to answer with. Every admitted request, whatever the
   * outcome, ends with one call to `group.finished`.
   */
  admit(group: BackendGroup, request: GroupRequest): Backend | HoldfastError | null {
    return group.admit(request, Date.now());
  }

  /** A complete answer from `backend`: passive health (a 5xx counts against it when the group says so). */
  answered(backend: Backend, status: number): void {
    backend.recordResponse(Date.now(), status);
  }

  /** A send to `backend` failed: count it (metrics, passive health) and decide by the retry policy. */
  failed(group: BackendGroup, request: SentRequest, backend: Backend, err: unknown, facts: SendFacts): SendOutcome {
    const failure = classifyUpstreamError(backend.name, err, facts.responseStarted);
    this.#metrics.upstreamErrorsTotal.inc({ backend: backend.name, code: failure.error.code });
    if (failure.healthFailure) backend.recordFailure(Date.now(), failure.error.code);
    const retry = mayRetry(failure, {
      method: request.method,
      hasBody: facts.streamedBody,
      bodyUntouched: facts.bodyUntouched,
      responseStarted: facts.clientSawResponse,
      attemptsLeft: group.retries + 1 - request.attempts,
    });
    if (!retry) return { failure, next: null };
    this.#metrics.upstreamRetriesTotal.inc({ backend: backend.name });
    this.#log.debug({ backend: backend.name, code: failure.error.code, method: request.method }, 'retrying');
    if (!failure.notSent) return { failure, next: backend }; // a stale pooled socket: a fresh connection will do
    // A refused connection goes to another server with room; with none, the request fails with this error.
    (request.triedServers ??= new Set()).add(backend);
    return { failure, next: group.retryElsewhere(request, request.triedServers, Date.now()) };
  }

  /** Send a small request to `group` and gather its answer; never rejects. */
  request(group: BackendGroup, request: BufferedRequest): Promise<BufferedResult> {
    return new Promise((resolve) => new BufferedSend(this, group, request, resolve).start());
  }
}

/** Why a buffered send was cut: its answer went past the caller's limit. */
class OversizedAnswer extends Error {}

/** One buffered request through its group, as undici's dispatch handler (the legacy callback form, as ProxyExchange). */
class BufferedSend implements SentRequest, Dispatcher.DispatchHandler {
  readonly req: PickRequest['req'];
  readonly owner: PickRequest['owner'];
  readonly method: string;
  slot: Backend | null = null;
  attempts = 0;
  triedServers: Set<Backend> | null = null;
  readonly #sender: GroupSender;
  readonly #group: BackendGroup;
  readonly #request: BufferedRequest;
  readonly #resolve: (result: BufferedResult) => void;
  #backend: Backend | null = null;
  #abort: ((err?: Error) => void) | null = null;
  #responseStarted = false;
  #status = 0;
  #reason = '';
  #headers: string[] = [];
  #chunks: Buffer[] = [];
  #size = 0;
  #limit = Infinity;
  #oversized = false;
  #settled = false;

  constructor(sender: GroupSender, group: BackendGroup, request: BufferedRequest, resolve: (result: BufferedResult) => void) {
    this.#sender = sender;
    this.#group = group;
    this.#request = request;
    this.#resolve = resolve;
    this.req = request.pickRequest.req;
    this.owner = request.pickRequest.owner;
    this.method = request.method;
  }

  start(): void {
    this.dequeued(this.#sender.admit(this.#group, this));
  }

  dequeued(outcome: Backend | HoldfastError | null): void {
    if (outcome === null) return; // queued: the group calls back
    if (outcome instanceof HoldfastError) return this.#settle({ ok: false, error: outcome, notSent: true, backend: null });
    this.#send(outcome);
  }

  #send(backend: Backend): void {
    this.#backend = backend;
    this.attempts++;
    this.#abort = null;
    this.#responseStarted = false;
    this.#chunks = [];
    this.#size = 0;
    backend.requestCounter.inc();
    const { path, method, headers, body } = this.#request;
    backend.pool.dispatch({ path, method, headers, body, idempotent: isIdempotent(method) }, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
  }

  onResponseStarted(): void {
    this.#responseStarted = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], _resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true;
    const headers: string[] = [];
    for (const raw of rawHeaders) headers.push(raw.toString('latin1'));
    this.#status = statusCode;
    this.#reason = statusText;
    this.#headers = headers;
    this.#limit = this.#request.maxBodyBytes(statusCode, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#size += chunk.length;
    if (this.#size > this.#limit) {
      this.#oversized = true;
      this.#abort?.(new OversizedAnswer());
      return false;
    }
    this.#chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.#answered();
  }

  onError(err: Error): void {
    if (this.#settled) return;
    const backend = this.#backend!;
    // Cut for its size by us: the backend answered, and the caller decides what a too-long answer means.
    if (this.#oversized) return this.#answered();
    const { failure, next } = this.#sender.failed(this.#group, this, backend, err, {
      responseStarted: this.#responseStarted,
      streamedBody: false, // kept whole here: a stale socket may be retried for an idempotent method
      bodyUntouched: true,
      clientSawResponse: false,
    });
    if (next !== null) return this.#send(next);
    this.#settle({ ok: false, error: failure.error, notSent: failure.notSent, backend });
  }

  #answered(): void {
    if (this.#settled) return;
    const backend = this.#backend!;
    this.#sender.answered(backend, this.#status);
    const response: BufferedResponse = {
      status: this.#status,
      reason: this.#reason,
      headers: this.#headers,
      body: Buffer.concat(this.#chunks),
      oversized: this.#oversized,
      backend,
    };
    this.#settle({ ok: true, response });
  }

  #settle(result: BufferedResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#abort = null;
    this.#chunks = [];
    this.#group.finished(this);
    this.#resolve(result);
  }
}
