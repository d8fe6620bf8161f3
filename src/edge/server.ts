import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { HoldfastConfig } from '../config/schema.js';
import { ClientRequestError, E, HoldfastError } from '../errors.js';
import { AccessLog } from '../observe/access-log.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { RateLimitedLog } from '../observe/rate-limited-log.js';
import { kExchange, type ProxyExchange } from '../proxy/exchange.js';
import type { Forwarder } from '../proxy/forwarder.js';
import { BodyStallWatch } from './body-stall.js';
import { deadlineCheckIntervalMs } from '../http/deadline-check.js';
import { ClientConnection, kConnection, PIPELINE_PAUSE_DEPTH, type EdgeContext } from './connection.js';
import { rawErrorResponse, sendErrorResponse } from '../http/error-response.js';
import { ConnectionRegistry } from './registry.js';
import { checkH2Request, checkRequest } from '../http/request-checks.js';
import { isWebSocketUpgrade, replayAsPlainRequest, type UpgradeRouter } from '../ws/upgrade-router.js';
import { listenOn } from '../http/listen-on.js';
import { acceptH2WebSocket } from '../ws/h2-websocket.js';
import { H2Front, type H2Host } from './h2-front.js';
import type { H2Connection } from './h2-connection.js';
import type { H2Request, H2Response } from '../http/h2-compat.js';
import { routeByPreface, type PrefaceRoutes } from './h2c-preface.js';
import { llhttp, llhttpMissing } from '../http/llhttp.js';
import { H1Server } from './h1-server.js';

type EdgeSocket = Socket & { [kConnection]?: ClientConnection };
/** A client connection of either protocol: both count against the same limits. */
type EdgeConnection = ClientConnection | H2Connection;
type EdgeResponse = ServerResponse & { [kExchange]?: ProxyExchange; [kConnection]?: EdgeConnection };

export interface EdgeDeps {
  config: HoldfastConfig;
  forwarder: Forwarder;
  metrics: Metrics;
  log: Logger;
  /** WebSocket upgrades (src/ws); without it every upgrade request is served as plain HTTP. */
  upgrades?: UpgradeRouter;
  /** The client connection cap in force: limits.maxConnections, lowered to fit the open-files limit (fd-budget.ts). */
  maxConnections: number;
  /** Which HTTP/1 server to run: the llhttp engine (the default, when Node has what it needs) or Node's own. */
  http1Engine?: 'llhttp' | 'node-http';
}

/**
 * The client side: Node's HTTP/1 server (llhttp) plus what a gateway needs on top of it: the checks llhttp
 * does not make, connection limits with idle reclaim, pipeline ordering for unsafe methods, a slowloris
 * timer that fires on time, answers for parse errors that never cost earlier responses, graceful drain.
 */
export class Edge implements EdgeContext, H2Host {
  /** The HTTP/1 server: Holdfast's llhttp engine (h1-server.ts), or Node's when that cannot run here. */
  readonly server: H1Server | Server;
  readonly engine: 'llhttp' | 'node-http';
  /** HTTP/2 connections (ALPN h2 from the TLS listener, h2c from the plain one): h2-front.ts. */
  readonly h2: H2Front;
  readonly registry: ConnectionRegistry<EdgeConnection>;
  readonly maxPipelinedInFlight: number;
  readonly lingerMs = 2_000;
  draining = false;
  readonly #deps: EdgeDeps;
  readonly #bodyStall: BodyStallWatch;
  readonly #accessLog: AccessLog;
  /** Counters bound to their label once, not looked up per response. */
  readonly #responseClasses: { inc(): void }[];
  readonly #maxRequestsPerConnection: number;
  readonly #keepAliveIdleMs: number;
  readonly #maxHeaderFields: number;
  /** At a limit refusals come in floods: one line a second per error code, with the count. */
  readonly #refusals: RateLimitedLog;
  /** Other listeners whose connections this edge serves (TLS): closed and waited for on drain. */
  readonly #otherListeners: NetServer[] = [];
  /** With `h2c`: the plain listener, which routes each connection by its first bytes (h2c-preface.ts). */
  readonly #plain: NetServer | null;

  constructor(deps: EdgeDeps) {
    this.#deps = deps;
    const { limits, timeouts } = deps.config;
    this.maxPipelinedInFlight = limits.maxPipelinedInFlight;
    this.#accessLog = new AccessLog(deps.config.log, deps.log);
    this.#responseClasses = ['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => deps.metrics.responsesTotal.labels({ class: c }));
    this.#maxRequestsPerConnection = limits.maxRequestsPerConnection;
    this.registry = new ConnectionRegistry({ maxConnections: deps.maxConnections, maxConnectionsPerClient: limits.maxConnectionsPerClient });
    this.#bodyStall = new BodyStallWatch(timeouts.requestBodyStallMs, (exchange) => this.#onBodyStall(exchange));
    this.#keepAliveIdleMs = timeouts.keepAliveIdleMs;
    this.#maxHeaderFields = limits.maxHeaderFields;
    this.#refusals = new RateLimitedLog(deps.log, 'warn', 'connections refused at a limit (answered 503)');
    if (llhttp !== null && deps.http1Engine !== 'node-http') {
      this.engine = 'llhttp';
      this.server = new H1Server({
        llhttp,
        keepAliveIdleMs: timeouts.keepAliveIdleMs,
        advertisedKeepAliveMs: advertisedKeepAliveMs(timeouts.keepAliveIdleMs),
        requestHeadMs: timeouts.requestHeadMs,
        maxHeaderBytes: limits.maxHeaderBytes,
      });
    } else {
      // Asked for, or the self-check in http/llhttp.ts found a part of Node's parser binding missing: Node's
      // own server serves HTTP/1 instead, slower but the same from the outside. Say so, with what is missing.
      this.engine = 'node-http';
      if (llhttp === null) deps.log.warn({ missing: llhttpMissing() }, "Node's llhttp binding lacks parts the HTTP/1 engine uses; serving HTTP/1 with node:http instead");
      else deps.log.info('HTTP/1 served by node:http (HOLDFAST_HTTP1_ENGINE=node-http)');
      this.server = nodeHttpServer(deps.config);
    }
    // Node keeps the first maxHeadersCount fields and silently drops the rest (so does the llhttp engine);
    // one over the limit lets checkRequest see that the limit was passed and answer 431 instead of forwarding
    // a truncated head.
    this.server.maxHeadersCount = limits.maxHeaderFields + 1;
    this.server.on('connection', (socket: Socket) => this.#onConnection(socket));
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res, false));
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res, true));
    // Any other expectation: without this listener Node answers a bare 417 itself, past our accounting (the
    // connection looked idle, so reclaimable, while it was being answered) and without an error code.
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
      this.#onRequest(req, res, false, EXPECTATION_FAILED),
    );
    this.server.on('clientError', (err: Error, socket: Socket) => this.#onClientError(err, socket));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      socket.end(
        rawErrorResponse(new ClientRequestError(E.METHOD_NOT_SUPPORTED, 'CONNECT tunnels are not offered')),
      );
    });
    this.h2 = new H2Front({ config: deps.config, host: this, metrics: deps.metrics, log: deps.log });
    if (deps.config.h2c) {
      const routes: PrefaceRoutes = { h2: (socket) => this.h2.serve(socket), http1: (socket) => this.server.emit('connection', socket) };
      this.#plain = createNetServer({ noDelay: true }, (socket: Socket) => routeByPreface(socket, timeouts.requestHeadMs, routes));
      this.serveAlso(this.#plain);
    } else this.#plain = null;
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.#plain ?? this.server, 'clients', host, port);
  }

  /**
   * Serves the connections of another listener (the TLS one hands over each connection after its
   * handshake, `adopt`), and closes it with this one on drain.
   */
  serveAlso(listener: NetServer): void {
    this.#otherListeners.push(listener);
  }

  /**
   * A connection accepted by another listener: from here on it is served like one accepted here, over
   * HTTP/2 when its TLS handshake chose `h2` (ALPN), else over HTTP/1.1.
   */
  adopt(socket: Socket): void {
    if ((socket as Socket & { alpnProtocol?: string | false | null }).alpnProtocol === 'h2') this.h2.serve(socket);
    else this.server.emit('connection', socket);
  }

  /**
   * Stop accepting, let in-flight requests finish (their responses say `Connection: close`), close idle
   * connections at once, and cut whatever is left when the deadline passes.
   */
  /** Resolves to the number of requests still unanswered at the deadline, whose connections were cut. */
  async drain(deadlineMs: number): Promise<number> {
    this.draining = true;
    const closed = Promise.all(
      [this.server, ...this.#otherListeners].map((listener) => new Promise<void>((resolve) => listener.close(() => resolve()))),
    );
    for (const conn of this.registry.connections()) {
      if (conn.pendingResponses === 0) conn.socket.destroy();
    }
    // HTTP/2: GOAWAY, so clients open no new streams here; those in progress finish.
    this.h2.drain();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(resolve, deadlineMs, 'deadline');
    });
    const outcome = await Promise.race([closed, deadline]);
    clearTimeout(timer);
    let cut = 0;
    if (outcome === 'deadline') {
      // Say what is being cut: an operator (and the exit code) must know a drain was not clean.
      const samples: { client: string; method: string | undefined; target: string | undefined }[] = [];
      for (const conn of this.registry.connections()) {
        if (conn.pendingResponses === 0) continue;
        cut += conn.pendingResponses;
        const req = conn.lastExchange?.req;
        if (samples.length < 10) samples.push({ client: conn.clientAddress, method: req?.method, target: req?.url });
      }
      this.#deps.metrics.drainCutRequests.inc(cut);
      this.#deps.log.warn({ open: this.registry.size, cutRequests: cut, samples }, 'drain deadline passed, closing remaining connections');
      this.server.closeAllConnections();
      // Node's list misses connections it no longer parses (held streams, see stream-takeover.ts).
      for (const conn of this.registry.connections()) conn.socket.destroy();
      await closed;
    }
    this.#bodyStall.stop();
    this.#refusals.flush();
    this.h2.close();
    return cut;
  }

  #onConnection(rawSocket: Socket): void {
    const socket = rawSocket as EdgeSocket;
    // A connection handed back after a non-WebSocket upgrade (replayAsPlainRequest) is already counted.
    if (socket[kConnection] !== undefined) return;
    const conn = new ClientConnection(socket, this);
    socket[kConnection] = conn;
    const { metrics } = this.#deps;
    metrics.clientConnectionsTotal.inc();
    metrics.clientConnectionsOpen.inc();
    socket.on('close', socketOnClose); // `on`: close comes once, and once() costs a wrapper per connection
    this.#admit(conn);
  }

  admitH2(conn: H2Connection): void {
    const { metrics } = this.#deps;
    metrics.clientConnectionsTotal.inc();
    metrics.clientConnectionsOpen.inc();
    this.#admit(conn);
  }

  h2Closed(conn: H2Connection): void {
    this.registry.remove(conn);
    this.onSocketClosed();
  }

  #admit(conn: EdgeConnection): void {
    const { metrics } = this.#deps;
    const result = this.registry.admit(conn);
    if (result.admitted) {
      if (conn instanceof ClientConnection) conn.admitted = true;
      if (result.reclaimed !== null) metrics.clientConnectionsReclaimed.inc();
    } else {
      conn.refusal = result.error;
      metrics.clientConnectionsRejected.inc({ limit: result.limit, code: result.error.code });
      this.#refusals.note(result.error.code, { code: result.error.code, limit: result.limit, lastClient: conn.clientAddress });
    }
  }

  #onRequest(req: IncomingMessage, rawRes: ServerResponse, expectsContinue: boolean, refusal?: ClientRequestError): void {
    const res = rawRes as EdgeResponse;
    const conn = (req.socket as EdgeSocket)[kConnection]!;
    const { metrics, forwarder } = this.#deps;
    metrics.requestsTotal.inc();
    conn.requestsSeen++;
    if (conn.closing) {
      // After an answer that closes the connection, later pipelined requests are never forwarded, and not
      // owed an answer either: counted as owed, they kept an error waiting for the answers before it (which
      // it must not overtake) forever. Reading more of them is pointless.
      conn.pauseReading();
      return;
    }
    conn.pendingResponses++;
    this.registry.markBusy(conn);
    res[kConnection] = conn;
    res.on('close', responseOnClose); // `on`: close comes once, and once() costs a wrapper per response
    if (conn.pendingResponses >= PIPELINE_PAUSE_DEPTH) conn.pauseReading();
    if (conn.refusal !== null) {
      conn.closing = true;
      return sendErrorResponse(res, conn.refusal, { close: true });
    }
    const checked = refusal ?? checkRequest(req, this.#maxHeaderFields);
    if (checked instanceof HoldfastError) {
      metrics.clientErrorsTotal.inc({ code: checked.code });
      conn.closing = true;
      return sendErrorResponse(res, checked, { close: true });
    }
    if (this.#maxRequestsPerConnection > 0 && conn.requestsSeen >= this.#maxRequestsPerConnection) {
      // The last request this connection may carry. Node's maxRequestsPerSocket writes `Connection: close`
      // on this response but (Node 20 _http_outgoing.js, maxRequestsOnConnectionReached) never marks it
      // `_last`, so the socket stayed open until keepAliveTimeout; and it counts HTTP/1.1 requests only.
      res.shouldKeepAlive = false;
      conn.closing = true;
    }
    const exchange = forwarder.createExchange(req, res, conn, checked, expectsContinue);
    conn.lastExchange = exchange;
    if (checked.hasBody) this.#bodyStall.add(exchange);
    conn.submit(exchange);
  }

  /**
   * One HTTP/2 stream's request: the same accounting, checks and exchange as an HTTP/1 request, without
   * what belongs to HTTP/1 connections (pipeline order, Connection: close): a refused or malformed request
   * is answered on its own stream and the connection carries on; a refused connection is sent GOAWAY.
   */
  serveH2(req: H2Request, rawRes: H2Response, conn: H2Connection, expectsContinue: boolean): void {
    const res = rawRes as unknown as EdgeResponse;
    const { metrics, forwarder } = this.#deps;
    metrics.requestsTotal.inc();
    metrics.h2StreamsOpen.inc();
    conn.requestsSeen++;
    conn.pendingResponses++;
    this.registry.markBusy(conn);
    res[kConnection] = conn;
    res.on('close', responseOnClose);
    if (conn.refusal !== null) {
      sendErrorResponse(res, conn.refusal);
      conn.goAway();
      return;
    }
    const checked = checkH2Request(req, this.#maxHeaderFields);
    if (checked instanceof HoldfastError) {
      metrics.clientErrorsTotal.inc({ code: checked.code });
      return sendErrorResponse(res, checked);
    }
    if (req.method === 'CONNECT') {
      // A WebSocket (RFC 8441): the stream is its connection, the same router as HTTP/1.1 upgrades.
      const upgrades = this.#deps.upgrades;
      if (upgrades === undefined) return sendErrorResponse(res, new ClientRequestError(E.METHOD_NOT_SUPPORTED, 'WebSockets are not offered'));
      return acceptH2WebSocket(upgrades, req, checked.target, conn.clientAddress);
    }
    // nginx's http2_max_requests: the connection's last stream is served, and GOAWAY stops new ones.
    if (this.#maxRequestsPerConnection > 0 && conn.requestsSeen >= this.#maxRequestsPerConnection) conn.goAway();
    const exchange = forwarder.createExchange(req as unknown as IncomingMessage, res, conn, checked, expectsContinue);
    conn.lastExchange = exchange;
    if (checked.hasBody) this.#bodyStall.add(exchange);
    exchange.start();
  }

  /**
   * An upgrade request. Node has detached its parser: from here the socket belongs to a WebSocket tunnel or
   * session and never carries another HTTP request. Same checks and limits as a request first.
   */
  #onUpgrade(req: IncomingMessage, rawSocket: Socket, head: Buffer): void {
    const socket = rawSocket as EdgeSocket;
    const conn = socket[kConnection];
    const upgrades = this.#deps.upgrades;
    if (conn === undefined || upgrades === undefined || !isWebSocketUpgrade(req)) {
      replayAsPlainRequest(this.server, req, socket, head);
      return;
    }
    const { metrics } = this.#deps;
    metrics.requestsTotal.inc();
    conn.requestsSeen++;
    // Busy for good: never idle, never reclaimed, and left alone by drain (the router drains it).
    conn.pendingResponses++;
    conn.closing = true;
    this.registry.markBusy(conn);
    const checked = conn.refusal ?? checkRequest(req, this.#maxHeaderFields);
    if (checked instanceof HoldfastError) {
      metrics.clientErrorsTotal.inc({ code: checked.code });
      socket.on('error', destroySocket);
      conn.sendRawErrorAndClose(checked);
      return;
    }
    upgrades.handle(req, socket, head, checked.target, conn.clientAddress);
  }

  #onClientError(err: Error & { code?: string }, rawSocket: Socket): void {
    const socket = rawSocket as EdgeSocket;
    const conn = socket[kConnection];
    const code = err.code ?? '';
    // Node's parser reports each further chunk of a body we already refused; the linger timer closes.
    if (conn?.lingering === true && code !== 'ECONNRESET') return;
    if (conn === undefined || code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // Bytes after a `Connection: close` request: never parsed, never forwarded; the responses before it finish
    // and Node closes the connection after the last one.
    if (code === 'HPE_CLOSED_CONNECTION') {
      conn.closing = true;
      if (conn.pendingResponses === 0) socket.destroy();
      return;
    }
    if (conn.closing && conn.pendingResponses === 0 && conn.deferredError === null) {
      socket.destroy();
      return;
    }
    const error = clientErrorFromParser(code, this.#deps.config.limits.maxHeaderBytes, err as ParserError);
    this.#deps.metrics.clientErrorsTotal.inc({ code: error.code });
    this.#deps.log.info({ client: conn.clientAddress, code: error.code, parser: code }, error.message);
    const broken = conn.lastExchange;
    if (broken !== null && !broken.req.complete && !broken.res.writableEnded) {
      // The error is inside this request's body (a bad chunk, say). Node leaves that request open, so it
      // would wait for body bytes that never come: stop its backend exchange and make the error its answer
      // (queued behind earlier pipelined responses like any other).
      // The client may still be sending that body: linger after the answer so it reads it, not a reset.
      conn.closeAfterResponse();
      broken.onClientClose();
      sendErrorResponse(broken.res, error, { close: true });
      return;
    }
    conn.failWithRawError(error);
  }

  #onBodyStall(exchange: ProxyExchange): void {
    const conn = (exchange.req.socket as EdgeSocket)[kConnection];
    const error = new ClientRequestError(
      E.BODY_TIMEOUT,
      `the request body made no progress for timeouts.requestBodyStallMs (${this.#deps.config.timeouts.requestBodyStallMs} ms)`,
    );
    this.#deps.metrics.clientErrorsTotal.inc({ code: error.code });
    exchange.onClientClose();
    conn?.closeAfterResponse();
    sendErrorResponse(exchange.res, error, { close: true });
  }

  onSocketClosed(): void {
    this.#deps.metrics.clientConnectionsOpen.dec();
  }

  /** Called when a response closed: idle accounting, access log, drain. */
  responseClosed(res: EdgeResponse, conn: EdgeConnection): void {
    const exchange = res[kExchange];
    exchange?.onClientClose();
    // Do not keep a finished exchange (and its req/res) alive on an idle keep-alive connection.
    if (exchange !== undefined && conn.lastExchange === exchange) conn.lastExchange = null;
    if (exchange !== undefined) this.#bodyStall.delete(exchange);
    const { metrics } = this.#deps;
    const status = res.statusCode;
    this.#responseClasses[Math.min(4, Math.max(0, Math.floor(status / 100) - 1))]!.inc();
    if (exchange !== undefined) {
      const seconds = (Date.now() - exchange.startedAtMs) / 1000;
      metrics.requestDuration.observe(seconds);
      if (this.#accessLog.enabled) {
        this.#accessLog.write({
          client: conn.clientAddress,
          method: exchange.method,
          target: exchange.target,
          status: res.writableFinished ? status : 0,
          ms: Math.round(seconds * 1000),
          backend: exchange.backend?.name,
          attempts: exchange.attempts,
          code: exchange.errorCode,
        });
      }
    }
    if (conn instanceof ClientConnection) this.#http1ResponseClosed(res, conn);
    else this.#h2StreamClosed(conn);
  }

  #h2StreamClosed(conn: H2Connection): void {
    this.#deps.metrics.h2StreamsOpen.dec();
    const idle = conn.onResponseClosed();
    if (!idle || conn.closing) return;
    if (this.draining) conn.goAway();
    else this.registry.markIdle(conn, Date.now());
  }

  #http1ResponseClosed(res: EdgeResponse, conn: ClientConnection): void {
    const idle = conn.onResponseClosed(res);
    if (!idle || conn.closing) return;
    if (this.draining) conn.socket.destroy();
    else {
      this.registry.markIdle(conn, Date.now());
      // Node has just armed its own idle timer (resOnFinish, before this close event) at advertised + 1 s;
      // below that second nothing it can advertise gives keepAliveIdleMs, so re-arm it. Node clears the
      // timer itself when the next request arrives (keepAliveTimeoutSet).
      if (this.engine === 'node-http' && this.#keepAliveIdleMs <= NODE_KEEP_ALIVE_BUFFER_MS) conn.socket.setTimeout(this.#keepAliveIdleMs);
    }
  }
}

/** Node's HTTP/1 server, configured as the llhttp engine is: the fallback when that engine cannot run. */
function nodeHttpServer(config: HoldfastConfig): Server {
  const { limits, timeouts } = config;
  const server = createServer({
    keepAliveTimeout: advertisedKeepAliveMs(timeouts.keepAliveIdleMs),
    headersTimeout: timeouts.requestHeadMs,
    // The whole-request timeout would cut long uploads; a stalled body is caught by BodyStallWatch instead.
    requestTimeout: 0,
    connectionsCheckingInterval: deadlineCheckIntervalMs(timeouts.requestHeadMs),
    maxHeaderSize: limits.maxHeaderBytes,
    // We check Host ourselves so the answer carries our error code.
    requireHostHeader: false,
    noDelay: true,
  });
  server.maxRequestsPerSocket = limits.maxRequestsPerConnection;
  // A client may half-close after its last request (HTTP/1.0 tools, `nc -N`, scripts that shutdown(SHUT_WR)):
  // its answers are still owed, and the connection closes after the last one (RFC 9112 §9.6; HAProxy answers,
  // nginx drops it). Node's default aborts every pending request on the FIN and ends the socket. The property
  // is Node's own (http.Server, since 0.x) but undocumented; the llhttp engine behaves so by design.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  return server;
}

/**
 * Node 20 closes an idle keep-alive connection 1 s after the timeout it advertises in `Keep-Alive:
 * timeout=N` (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER in _http_server.js), so a client that honours the hint
 * closes first and never sends into a closing connection. Advertising a second less puts the close itself
 * at keepAliveIdleMs, as an operator who set it expects, and keeps that margin.
 */
const NODE_KEEP_ALIVE_BUFFER_MS = 1_000;

function advertisedKeepAliveMs(keepAliveIdleMs: number): number {
  // 0 would switch Node's idle timeout off altogether; 1 ms advertises `timeout=0`.
  return Math.max(1, keepAliveIdleMs - NODE_KEEP_ALIVE_BUFFER_MS);
}

function responseOnClose(this: EdgeResponse): void {
  const conn = this[kConnection];
  if (conn !== undefined) (conn.edge as Edge).responseClosed(this, conn);
}

function destroySocket(this: Socket): void {
  this.destroy();
}

function socketOnClose(this: EdgeSocket): void {
  const conn = this[kConnection];
  if (conn === undefined) return;
  const edge = conn.edge as Edge;
  edge.registry.remove(conn);
  edge.onSocketClosed();
}

/** RFC 9110 §10.1.1: an expectation we cannot meet (anything but 100-continue) is answered 417. */
const EXPECTATION_FAILED = new ClientRequestError(
  E.EXPECTATION_FAILED,
  'the only expectation supported is 100-continue',
);

/** What Node attaches to a parser error: the chunk the parser failed in, and how far into it the failure was. */
interface ParserError {
  rawPacket?: unknown;
  bytesParsed?: unknown;
}

/** llhttp error codes to the answer a client gets. */
function clientErrorFromParser(code: string, maxHeaderBytes: number, err: ParserError): ClientRequestError {
  const rawPacket = err.rawPacket;
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      if (requestLineOverflowed(rawPacket, maxHeaderBytes)) {
        // RFC 9112 §3: a target longer than the server will parse MUST get 414 (as nginx answers; HAProxy 400).
        return new ClientRequestError(
          E.URI_TOO_LONG,
          `the request line alone exceeds limits.maxHeaderBytes (${maxHeaderBytes} bytes)`,
        );
      }
      return new ClientRequestError(
        E.HEADERS_TOO_LARGE,
        `the request head exceeds limits.maxHeaderBytes (${maxHeaderBytes} bytes)`,
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ClientRequestError(E.REQUEST_HEAD_TIMEOUT, 'the request head did not arrive within timeouts.requestHeadMs');
    case 'HPE_INVALID_METHOD':
      // RFC 9110 §9.1: a method the server does not recognise is a 501. llhttp knows a fixed list (nginx and
      // HAProxy forward any token); a chunk that does not even start `token SP` is garbage (TLS on the plain
      // port, say) and a 400.
      {
        const line = failedLine(err);
        if (REQUEST_LINE_START.test(line)) {
          return new ClientRequestError(
            E.METHOD_NOT_SUPPORTED,
            `method ${JSON.stringify(line.split(' ', 1)[0]!.slice(0, 32))} is not supported (methods are case-sensitive)`,
          );
        }
      }
      break;
    case 'HPE_INVALID_VERSION':
      // RFC 9110 §15.6.6 and RFC 9112 §2.3: a well-formed version we do not speak (HTTP/3.0; HTTP/1.2, which
      // llhttp refuses although a later 1.x minor should be served as 1.1) is a 505 that says which we do.
      if (WELL_FORMED_VERSION.test(failedLine(err))) {
        return new ClientRequestError(E.VERSION_NOT_SUPPORTED, 'only HTTP/1.0 and HTTP/1.1 are spoken here');
      }
      break;
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new ClientRequestError(E.CHUNK_EXTENSIONS_TOO_LARGE, 'chunk extensions too large');
  }
  return new ClientRequestError(E.MALFORMED_REQUEST, `malformed request (${code || 'parse error'})`);
}

/** `HTTP/` and one digit each side of the dot, at the end of the request line. */
const WELL_FORMED_VERSION = / HTTP\/\d\.\d$/;

/**
 * The line the parser failed in, without its CR: the chunk may hold earlier pipelined requests, so it is
 * found from the failure's offset, not taken from the chunk's start. Empty when Node gave neither.
 */
function failedLine(err: ParserError): string {
  const { rawPacket, bytesParsed } = err;
  if (!Buffer.isBuffer(rawPacket)) return '';
  const at = typeof bytesParsed === 'number' ? Math.min(Math.max(bytesParsed, 0), rawPacket.length) : 0;
  const start = at === 0 ? 0 : rawPacket.lastIndexOf(0x0a, at - 1) + 1;
  let end = rawPacket.indexOf(0x0a, start);
  if (end < 0 || end - start > 8_192) end = Math.min(rawPacket.length, start + 8_192);
  return rawPacket.toString('latin1', start, end).replace(/\r$/, '');
}

function startsRequestLine(rawPacket: unknown): boolean {
  return Buffer.isBuffer(rawPacket) && REQUEST_LINE_START.test(rawPacket.toString('latin1', 0, 64));
}

/** A method token and a space: the chunk begins with a request line. */
const REQUEST_LINE_START = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ ]/;

/**
 * Whether the head overflowed inside its request line (the target, in practice), as opposed to its fields.
 * llhttp only says "header overflow", and Node hands us the chunk it was parsing: when that chunk starts a
 * request line and has no line end within the limit, the line itself was too long. A target that arrived
 * over several reads overflows in a chunk that starts mid-target and is answered 431, still a clear 4xx.
 */
function requestLineOverflowed(rawPacket: unknown, maxHeaderBytes: number): boolean {
  if (!startsRequestLine(rawPacket)) return false;
  const lineEnd = (rawPacket as Buffer).indexOf(0x0a);
  return lineEnd < 0 || lineEnd >= maxHeaderBytes;
}
