import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { E, HoldfastError } from '../errors.js';
import { sendErrorResponse } from '../http/error-response.js';
import { resetConnection, responseSendTarget, type SendStallSubject, type SendStallWatch } from '../http/send-stall.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { ResponseEncoder } from './compression.js';
import { GatheredBody } from './gathered-body.js';
import { withoutCookie } from './cookies.js';
import type { BackendGroup } from './group.js';
import type { GroupSender, SentRequest } from './group-sender.js';
import { GRIP_FEATURES } from '../grip/features.js';
import type { GripSigner } from '../grip/sig.js';
import { isGripResponse } from '../grip/instruct.js';
import { clientProto, clientResponseHeaders, declaredContentLength, rawHeaderValue, upstreamRequestHeaders, writableReason } from '../http/headers.js';
import type { CheckedRequest } from '../http/request-checks.js';
import { interimStatus } from './unasked-continue.js';
import type { ResponseTakeover, TakenResponse, TakeoverRequest } from './response-takeover.js';
import type { UnpooledHandler } from './unpooled-request.js';
import type { Backend } from './upstream.js';

/** The client connection an exchange belongs to. */
export interface ExchangeOwner {
  /** Shutting down: responses carry `Connection: close`. */
  readonly draining: boolean;
  readonly clientAddress: string;
  /** The backend side of this exchange is over (pipeline scheduling may start the next one). */
  onUpstreamDone(exchange: ProxyExchange): void;
  /** The client half-closed after this request: its answer is the connection's last, and says so. */
  answersLast(exchange: ProxyExchange): boolean;
  /** This exchange's response ends the connection (it carries `Connection: close`): nothing more is forwarded. */
  closeAfterResponse(): void;
  /**
   * A client's FIN is the only sign that it left a request waiting in a queue (HTTP/1). On HTTP/2 a client
   * leaves a stream with RST_STREAM, which closes its response (onClientClose) like a connection close does.
   */
  readonly leavesByFin: boolean;
}

/**
 * What an exchange uses of the backend side (the Forwarder implements it): defined here so the forwarder
 * imports the exchange and not the other way round.
 */
export interface ExchangeHost {
  /** Admission, health and retries: the same path link fetches and WebSocket-over-HTTP POSTs take. */
  readonly sender: GroupSender;
  /** Signs every backend request (Grip-Sig). */
  readonly signer: GripSigner;
  /** The push gateway (hold/), given the answers that carry GRIP instructions. */
  readonly takeover: ResponseTakeover;
  /** Cuts client connections that stop reading what they are sent (proxied responses here). */
  readonly sendStall: SendStallWatch;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Route the exchange and place it in its group (Forwarder.admit). */
  admit(exchange: ProxyExchange): Backend | HoldfastError | null;
}

/** A client hung up while we were still talking to the backend. */
class ClientGoneError extends HoldfastError {
  constructor() {
    super(E.CLIENT_GONE, 'the client closed the connection');
  }
}

/**
 * One client request on its way through a backend, including retries. It is undici's dispatch handler
 * directly: the legacy callback form (`onHeaders`/`onData`) is used on purpose, because undici passes it
 * through unwrapped (no controller object per request) and hands us raw header buffers we filter in one pass.
 * The two requests undici cannot send (`OPTIONS *`, `Expect: 100-continue`) drive the same handler through
 * node:http instead (unpooled-request.ts).
 */
export class ProxyExchange implements Dispatcher.DispatchHandler, TakeoverRequest, SentRequest, UnpooledHandler, SendStallSubject {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly owner: ExchangeOwner;
  readonly forwarder: ExchangeHost;
  readonly target: string;
  readonly method: string;
  /** RFC 9112 §9.3.2: pipelined requests may run in parallel only while they are safe. */
  readonly unsafe: boolean;
  readonly hasBody: boolean;
  readonly startedAtMs: number;
  backend: Backend | null = null;
  /** Set when routed (at start): the group, the target after prefix rewriting, the slot held on a server. */
  group: BackendGroup | null = null;
  upstreamTarget: string;
  slot: Backend | null = null;
  attempts = 0;
  /** Servers a connect failure already ruled out for this request (GroupSender.failed). */
  triedServers: Set<Backend> | null = null;
  /** Set when Holdfast answered with its own error. */
  errorCode: string | undefined;
  #headers: string[] | null = null;
  /** Set when the backend answered with GRIP instructions: the push gateway takes the response over. */
  #grip: TakenResponse | null = null;
  #gripFailed = false;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #responseStarted = false;
  #upstreamDone = false;
  #clientGone = false;
  /** The backend answered our forwarded `Expect: 100-continue` with 100, and the client was told. */
  #continued = false;
  #status = 0;
  /** Set when the plain response is compressed on its way out. */
  #body: ResponseEncoder | null = null;
  /** Set while queued in an overloaded group: the client's FIN takes the request out (see below). */
  #queuedFinWatch: (() => void) | null = null;
  /** A 204 or 304 went to the client whole at its head: what undici reports after that is not the client's concern. */
  #answeredAtHead = false;

  /**
   * The client sent `Expect: 100-continue` with a body. The expectation goes to the backend (as HAProxy does)
   * and its 100 back to the client, so a backend can refuse the upload (413, 401) before a byte is sent.
   */
  readonly expectsContinue: boolean;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    owner: ExchangeOwner,
    forwarder: ExchangeHost,
    request: CheckedRequest,
    expectsContinue: boolean,
  ) {
    this.req = req;
    this.res = res;
    this.owner = owner;
    this.forwarder = forwarder;
    this.target = request.target;
    this.upstreamTarget = request.target;
    this.hasBody = request.hasBody;
    // Without a body there is nothing to wait for: the backend's final answer is all the client needs.
    this.expectsContinue = expectsContinue && request.hasBody;
    this.method = req.method ?? 'GET';
    this.unsafe = !SAFE_METHODS.has(this.method);
    this.startedAtMs = Date.now();
  }

  /** Pick a backend and send. Called by the edge when pipeline order allows. */
  start(): void {
    if (this.#clientGone) return this.#finishUpstream();
    this.dequeued(this.forwarder.admit(this));
  }

  /** The group placed this request (at once, or later from its queue): send it, or answer the error. */
  dequeued(outcome: Backend | HoldfastError | null): void {
    if (outcome === null) return this.#leaveQueueOnClientFin(); // queued: the group calls back
    if (this.#queuedFinWatch !== null) {
      this.req.socket.removeListener('end', this.#queuedFinWatch);
      this.#queuedFinWatch = null;
    }
    if (outcome instanceof HoldfastError) return this.#fail(outcome);
    // The client is gone but its response's close event has not run yet: an HTTP/2 connection that closes
    // destroys all its streams first, and freeing the first one's slot dequeues a sibling (its stream and
    // session already torn down). Sending it would forward a request nobody waits for. The slot goes back
    // once this drain of the queue is over (finishing here would re-enter it).
    if (this.res.destroyed) {
      this.#clientGone = true;
      queueMicrotask(() => this.#finishUpstream());
      return;
    }
    this.#send(outcome);
  }

  /**
   * The edge answers a client that half-closes after its request (httpAllowHalfOpen), but a FIN cannot be told
   * from a client that left, and under overload a queue of abandoned requests delays everyone behind them.
   * So a request not yet sent anywhere is dropped on the FIN (HAProxy's abortonclose, for the queue only);
   * once sent, the backend's answer is still delivered.
   */
  #leaveQueueOnClientFin(): void {
    if (!this.owner.leavesByFin) return;
    const socket = this.req.socket;
    const leave = (): void => {
      this.#queuedFinWatch = null;
      this.res.destroy(); // the response's close takes it out of the queue (onClientClose)
    };
    if (socket.readableEnded) return leave();
    this.#queuedFinWatch = leave;
    socket.once('end', leave);
  }

  #send(backend: Backend): void {
    this.backend = backend;
    this.attempts++;
    this.#headers ??= this.#buildUpstreamHeaders();
    backend.requestCounter.inc();
    if (this.expectsContinue || this.upstreamTarget === '*') {
      backend.dispatchUnpooled(
        {
          path: this.upstreamTarget,
          method: this.method,
          headers: this.#headers,
          body: this.hasBody ? this.req : null,
          expectContinue: this.expectsContinue,
        },
        this,
      );
      return;
    }
    const options: Dispatcher.DispatchOptions = {
      path: this.upstreamTarget,
      method: this.method,
      headers: this.#headers,
      body: this.hasBody ? this.req : null,
      idempotent: !this.unsafe,
    };
    // undici closes the backend connection after every HEAD (its guard against servers that send a body with
    // one) unless told otherwise; nginx and HAProxy keep it, and a pool that reconnects per HEAD (monitors,
    // link checkers) is no pool. A body after a HEAD answer still fails that one connection only.
    if (this.method === 'HEAD') options.reset = false;
    backend.pool.dispatch(options, this);
  }

  /**
   * The client has been asked for its body: the request went to a backend and, if it expected 100-continue,
   * the backend's 100 was passed on. Until then a silent client is right to wait.
   */
  get bodyInvited(): boolean {
    return this.attempts > 0 && (!this.expectsContinue || this.#continued);
  }

  /** The header list sent upstream (for GRIP links, which repeat the original request's headers). */
  get upstreamHeaders(): string[] {
    return (this.#headers ??= this.#buildUpstreamHeaders());
  }

  /** SSE replay point: the Last-Event-ID header, or the `lastEventId` query parameter browsers cannot set as a header. */
  get lastEventId(): string | undefined {
    const header = rawHeaderValue(this.req.rawHeaders, 'last-event-id');
    if (header !== undefined) return header;
    const q = this.target.indexOf('?');
    if (q < 0) return undefined;
    const params = new URLSearchParams(this.target.slice(q + 1));
    return params.get('lastEventId') ?? params.get('last-event-id') ?? undefined;
  }

  /** The backend's GRIP instruction was unusable: answer 502 (nothing held) and stop reading it. */
  failGrip(error: HoldfastError): void {
    this.#gripFailed = true;
    this.#grip = null;
    this.#fail(error);
    this.#abort?.(error);
  }

  #buildUpstreamHeaders(): string[] {
    const headers = upstreamRequestHeaders(this.req.rawHeaders, {
      clientAddress: this.owner.clientAddress,
      httpVersion: this.req.httpVersion,
      proto: clientProto(this.req.socket),
    });
    headers.push('grip-sig', this.forwarder.signer.token(), 'grip-feature', GRIP_FEATURES);
    // Sticky `indirect`: the backend never sees Holdfast's cookie.
    const sticky = this.group?.sticky;
    return sticky == null ? headers : withoutCookie(headers, sticky.cookie);
  }

  /** The client went away: stop the backend exchange and free its connection. */
  onClientClose(): void {
    if (this.#upstreamDone) return;
    this.#clientGone = true;
    if (this.slot === null && this.group !== null) return this.#finishUpstream(); // still queued
    this.#abort?.(new ClientGoneError());
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#clientGone) abort(new ClientGoneError());
  }

  onResponseStarted(): void {
    this.#responseStarted = true;
  }

  /** The backend wants the body (unpooled path only): tell the client, once, unless its answer began. */
  onContinue(): void {
    if (this.#continued || this.#clientGone || this.res.headersSent) return;
    this.#continued = true;
    this.res.writeContinue();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, backendReason: string): boolean {
    if (statusCode < 200) {
      this.#relayInterim(interimStatus(statusCode), rawHeaders);
      return true;
    }
    this.#resume = resume;
    const statusText = writableReason(backendReason);
    const headers = clientResponseHeaders(rawHeaders);
    if (isGripResponse(headers)) {
      this.#grip = this.forwarder.takeover.readResponse(this, statusCode, statusText, headers);
      return true;
    }
    this.#status = statusCode;
    // Sticky cookie and compression: the plain path only (a GRIP answer is the push gateway's).
    if (this.group !== null && this.backend !== null) this.#body = this.group.prepareResponse(this, this.backend, statusCode, headers);
    // The backend answered before the whole upload arrived (a 413 or 401 right after the head, or a final
    // status instead of 100). The answer goes to the client as it is, and the connection closes after it:
    // the rest of the body cannot be framed away cheaply, so nginx and HAProxy close too. The backend
    // connection is not reused: undici drops a socket whose request was still being written, and the
    // unpooled path's connections serve one request. Once the answer is complete the body stops going up
    // and the client socket is no longer read (undici destroys the body stream; the unpooled path unpipes it).
    const early = this.#uploadUnfinished;
    if (early) this.owner.closeAfterResponse();
    if (this.owner.draining || early || this.owner.answersLast(this)) headers.push('connection', 'close');
    if (statusCode === 204 || statusCode === 304) return this.#answerWithoutContent(statusCode, statusText, headers);
    if (this.#body === null && this.method !== 'HEAD' && GatheredBody.fits(declaredContentLength(headers))) {
      this.#body = new GatheredBody(this.res, statusCode, statusText, headers);
      return true;
    }
    try {
      if (statusText) this.res.writeHead(statusCode, statusText, headers);
      else this.res.writeHead(statusCode, headers);
      // A compressed stream's first bytes wait for its first event: the head goes now (DESIGN.md: SSE).
      if (this.#body?.streaming === true) this.res.flushHeaders();
    } catch (err) {
      // A header Node refuses to emit (invalid characters) means the backend's answer is unusable.
      this.#abort?.(err as Error);
      return false;
    }
    return true;
  }

  /**
   * RFC 9110 §15.2: a proxy forwards interim answers, except to an HTTP/1.0 client (which cannot parse them);
   * the final answer follows as usual. Node writes the three registered ones (100 Continue, including one the
   * client did not ask for, which it must be able to parse; 102 Processing; 103 Early Hints); any other 1xx is
   * dropped. 101 never comes here: undici refuses an upgrade it did not ask for (a 502). A client that sent
   * `Expect: 100-continue` goes the unpooled way, where node:http reports 100 through onContinue and keeps
   * other 1xx to itself.
   */
  #relayInterim(status: number, rawHeaders: Buffer[]): void {
    const req = this.req;
    if (this.#clientGone || this.res.headersSent || this.res.destroyed || (req.httpVersionMajor === 1 && req.httpVersionMinor === 0)) return;
    if (status === 100) this.res.writeContinue();
    else if (status === 102) this.res.writeProcessing();
    else if (status === 103) {
      const hints: Record<string, string[]> = {};
      const headers = clientResponseHeaders(rawHeaders);
      for (let i = 0; i < headers.length; i += 2) (hints[headers[i]!.toLowerCase()] ??= []).push(headers[i + 1]!);
      try {
        this.res.writeEarlyHints(hints);
      } catch {
        // A Link value Node's check refuses: hints are optional, the final answer is what counts.
      }
    }
  }

  /**
   * RFC 9110 §6.4.1: a 204 or 304 has no content whatever its fields say, so the client's answer is complete
   * with its head. undici does not know that: a 304 carrying the Content-Length of the representation (which
   * RFC 9110 §8.6 allows) or a 204 with a stray one fails its length check after the head and loses the
   * backend connection; the client must not pay for that with a 502, and the backend is not unhealthy.
   */
  #answerWithoutContent(statusCode: number, statusText: string, headers: string[]): boolean {
    this.#answeredAtHead = true;
    try {
      if (statusText) this.res.writeHead(statusCode, statusText, headers);
      else this.res.writeHead(statusCode, headers);
    } catch (err) {
      this.#answeredAtHead = false;
      this.#abort?.(err as Error);
      return false;
    }
    this.res.end();
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#answeredAtHead) return true; // a body after a 204 or 304 is not part of it (undici drops the socket)
    if (this.#gripFailed) return true;
    if (this.#body !== null) return this.#body.write(chunk) || this.#watchSend();
    if (this.#grip !== null ? this.#grip.onData(chunk) : this.res.write(chunk)) return true;
    // Backpressure: undici stops reading the backend socket until the client drains.
    this.res.once('drain', resOnDrain);
    return this.#watchSend();
  }

  /**
   * The client is not taking the body as fast as the backend sends it: undici is paused (so its body timeout
   * does not run) and this request holds a backend connection and a concurrency slot for as long as the
   * client keeps its connection open. nginx's send_timeout: cut it when it stops reading altogether.
   */
  #watchSend(): false {
    this.forwarder.sendStall.noteWrite(responseSendTarget(this.res), this);
    return false;
  }

  /** The client read nothing of its response for timeouts.sendStallMs. */
  onSendStall(): string {
    this.forwarder.metrics.clientErrorsTotal.inc({ code: E.SEND_TIMEOUT.code });
    // The socket (or HTTP/2 stream), not the response: the stuck bytes may be the tail of an answer already finished.
    resetConnection(responseSendTarget(this.res), this.res);
    return 'response';
  }

  onComplete(_trailers: string[] | null): void {
    this.forwarder.sender.answered(this.backend!, this.#status);
    if (this.#gripFailed || this.#answeredAtHead) return this.#finishUpstream();
    if (this.#grip !== null) {
      // The push gateway owns the client response from here; the backend connection goes back to the pool.
      const grip = this.#grip;
      this.#grip = null;
      this.#finishUpstream();
      grip.onComplete();
      return;
    }
    if (this.#body !== null) this.#body.end();
    else this.res.end();
    // A whole answer under the stream's high-water mark can sit in Node's queue with nothing paused.
    this.forwarder.sendStall.noteWrite(responseSendTarget(this.res), this);
    this.#finishUpstream();
  }

  onError(err: Error): void {
    const backend = this.backend;
    if (this.#answeredAtHead) {
      if (backend !== null) this.forwarder.sender.answered(backend, this.#status);
      return this.#finishUpstream();
    }
    if (this.#gripFailed || this.#clientGone || err instanceof ClientGoneError || backend === null) {
      return this.#finishUpstream();
    }
    this.#grip?.onError();
    // `!complete`: undici destroys the body stream (our `req`) once it has written it, so `destroyed` alone
    // also holds for a fully sent body, and a backend failing after the upload would be blamed on the client.
    if (
      this.hasBody &&
      !this.req.complete &&
      (this.req.destroyed || (this.req.errored !== null && this.req.errored !== undefined))
    ) {
      // The client broke its own upload; the backend is not to blame.
      this.#clientGone = true;
      this.res.destroy();
      return this.#finishUpstream();
    }
    const { failure, next } = this.forwarder.sender.failed(this.group!, this, backend, err, {
      responseStarted: this.#responseStarted,
      streamedBody: this.hasBody,
      bodyUntouched: !this.hasBody || !this.req.readableDidRead,
      clientSawResponse: this.res.headersSent,
    });
    if (next !== null) {
      this.#abort = null;
      this.#responseStarted = false;
      return this.#send(next);
    }
    this.#fail(failure.error);
  }

  /** Resume reading the backend once the client caught up. */
  resumeUpstream(): void {
    this.#resume?.();
  }

  #fail(error: HoldfastError): void {
    this.errorCode = error.code;
    this.forwarder.log.warn(
      { code: error.code, backend: this.backend?.name, method: this.method, target: this.target },
      error.message,
    );
    // Once the body went to a backend, a failure mid-upload leaves its rest unread for good (the transport
    // stopped reading it, so Node cannot discard it either): close, as after an early answer, or the
    // connection would hang waiting for a request that never ends.
    const close = this.attempts > 0 && this.#uploadUnfinished;
    if (close) this.owner.closeAfterResponse();
    sendErrorResponse(this.res, error, { close });
    this.#finishUpstream();
  }

  /** The request has a body and the client has not sent all of it yet. */
  get #uploadUnfinished(): boolean {
    return this.hasBody && !this.req.complete;
  }

  #finishUpstream(): void {
    if (this.#upstreamDone) return;
    this.#upstreamDone = true;
    // A held client keeps its exchange for its whole life: let go of undici's request, the reader and the
    // header list (rebuilt from req.rawHeaders, with a fresh Grip-Sig, if a GRIP link ever needs it).
    this.#abort = null;
    this.#resume = null;
    this.#headers = null;
    this.group?.finished(this);
    this.owner.onUpstreamDone(this);
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export const kExchange = Symbol('holdfast.exchange');

function resOnDrain(this: ServerResponse & { [kExchange]?: ProxyExchange }): void {
  this[kExchange]?.resumeUpstream();
}
