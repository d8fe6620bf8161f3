import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HoldfastError } from '../errors.js';
import type { ExchangeOwner, ProxyExchange } from '../proxy/exchange.js';
import { rawErrorResponse } from '../http/error-response.js';
import { startReadingHandle, stopReadingHandle } from '../http/socket-handle.js';
import { endWithLinger, lingerOnClose } from '../http/linger.js';
import type { TrackedConnection } from './registry.js';

/** What a connection asks of the edge it belongs to. */
export interface EdgeContext {
  readonly draining: boolean;
  readonly maxPipelinedInFlight: number;
  /** How long a connection we are closing may linger to deliver its last answer. */
  readonly lingerMs: number;
}

export const kConnection = Symbol('holdfast.connection');

/**
 * Pipelined requests parsed ahead of their answers. Node parses every request in a read as it arrives, and
 * each costs ~2 KB until answered: a client that pipelines without reading grew the process by 386 MiB in 8 s
 * (bench/pipeline-flood.mjs). nginx and HAProxy read a pipeline one request at a time. Past PAUSE_DEPTH the
 * connection is not read until its answers are back down to RESUME_DEPTH. Node's parser finishes the read in
 * progress first, so one read (64 KiB, at most ~3,600 minimal requests) can still land: that is the bound,
 * a few megabytes per connection, where there was none.
 */
export const PIPELINE_PAUSE_DEPTH = 64;
const PIPELINE_RESUME_DEPTH = 32;

/** Node's HTTP server marks a connection it paused because answers backed up (parserOnIncoming). */
type NodeServerSocket = Socket & { _paused?: boolean };

/**
 * One client TCP connection: its place in the limits, and the order in which its pipelined requests may go
 * to backends. Node already writes pipelined responses back in request order; what it does not do is hold
 * back an unsafe request. RFC 9112 §9.3.2: safe requests may run in parallel, but a non-idempotent one waits
 * until everything before it finished, and everything after it waits for it.
 */
export class ClientConnection implements TrackedConnection, ExchangeOwner {
  readonly socket: Socket;
  readonly clientAddress: string;
  readonly edge: EdgeContext;
  pendingResponses = 0;
  requestsSeen = 0;
  bytesReadAtIdle = 0;
  idleSinceMs = 0;
  closing = false;
  /** Set when a limit refused this connection: its first request gets this answer. */
  refusal: HoldfastError | null = null;
  admitted = false;
  /** The newest request forwarded on this connection: a parse error while its body is unread belongs to it. */
  lastExchange: ProxyExchange | null = null;
  /** A parse error that must wait until the responses before it are written. */
  deferredError: HoldfastError | null = null;
  /**
   * The connection closes after its answer and lingers meanwhile: whatever else the client sends (the rest of
   * a body, and the parse errors Node reports for it) is dropped until the linger ends, never answered with a
   * reset that would cost the client its answer.
   */
  lingering = false;
  readonly leavesByFin = true;
  #errorSent = false;
  #readingPaused = false;
  #inFlight = 0;
  #unsafeInFlight = false;
  readonly #waiting: ProxyExchange[] = [];

  constructor(socket: Socket, edge: EdgeContext) {
    this.socket = socket;
    this.clientAddress = socket.remoteAddress ?? 'unknown';
    this.edge = edge;
  }

  get draining(): boolean {
    return this.edge.draining;
  }

  /** The client half-closed (FIN): it sends nothing more, and the connection closes after its last answer. */
  get clientEnded(): boolean {
    return this.socket.readableEnded;
  }

  answersLast(exchange: ProxyExchange): boolean {
    return this.clientEnded && this.lastExchange === exchange;
  }

  submit(exchange: ProxyExchange): void {
    if (this.#waiting.length === 0 && this.#mayStart(exchange)) this.#start(exchange);
    else this.#waiting.push(exchange);
  }

  onUpstreamDone(exchange: ProxyExchange): void {
    this.#inFlight--;
    if (exchange.unsafe) this.#unsafeInFlight = false;
    while (this.#waiting.length > 0 && this.#mayStart(this.#waiting[0]!)) this.#start(this.#waiting.shift()!);
  }

  /**
   * The response in progress closes the connection while the client may still be sending a body nobody will
   * read (a backend answered an upload early): linger after it (linger.ts) so the client reads the answer.
   */
  closeAfterResponse(): void {
    this.closing = true;
    this.lingering = true;
    lingerOnClose(this.socket, this.edge.lingerMs);
  }

  /**
   * Stop reading the client until its pipeline is answered down to RESUME_DEPTH. At the handle, not with
   * socket.pause(): Node's server resumes a paused socket on every answer it writes while its own write buffer
   * is low (updateOutgoingData -> socketOnDrain), which undid the pause at once. Called for every request past
   * PAUSE_DEPTH, since Node may restart reading when its own write-side pause ends.
   */
  pauseReading(): void {
    this.#readingPaused = true;
    stopReadingHandle(this.socket);
  }

  #resumeReading(): void {
    this.#readingPaused = false;
    const socket = this.socket as NodeServerSocket;
    // Paused by Node's server for backed-up writes too (its `_paused` mark): it resumes reading itself.
    if (socket.destroyed || socket._paused === true) return;
    startReadingHandle(socket);
  }

  /** A response finished or was abandoned. Returns true when the connection has nothing outstanding. */
  onResponseClosed(_res: ServerResponse): boolean {
    this.pendingResponses--;
    if (this.#readingPaused && this.pendingResponses <= PIPELINE_RESUME_DEPTH) this.#resumeReading();
    if (this.pendingResponses > 0) return false;
    if (this.deferredError !== null) this.sendRawErrorAndClose(this.deferredError);
    return true;
  }

  /**
   * Answer with bytes of our own and close: for errors found by Node's parser, where no ServerResponse
   * exists. Waits for responses already in progress so an error never costs the answers before it.
   */
  failWithRawError(error: HoldfastError): void {
    if (this.#errorSent) return;
    this.closing = true;
    if (this.pendingResponses > 0) {
      this.deferredError ??= error;
      return;
    }
    this.sendRawErrorAndClose(error);
  }

  sendRawErrorAndClose(error: HoldfastError): void {
    if (this.#errorSent) return;
    this.#errorSent = true;
    this.closing = true;
    const socket = this.socket;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    // Linger briefly so the client reads the answer before the close (an immediate close with unread
    // input would send RST and lose it), as nginx's lingering_close does.
    endWithLinger(socket, this.edge.lingerMs, rawErrorResponse(error));
  }

  #mayStart(exchange: ProxyExchange): boolean {
    if (this.#unsafeInFlight) return false;
    if (exchange.unsafe) return this.#inFlight === 0;
    return this.#inFlight < this.edge.maxPipelinedInFlight;
  }

  #start(exchange: ProxyExchange): void {
    this.#inFlight++;
    if (exchange.unsafe) this.#unsafeInFlight = true;
    exchange.start();
  }
}
