import { createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { HoldfastConfig } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { RateLimitedLog } from '../observe/rate-limited-log.js';
import type { EdgeContext } from './connection.js';
import { H2Request, H2Response } from '../http/h2-compat.js';
import { H2Connection } from './h2-connection.js';

/** What the HTTP/2 front asks of the edge: the same admission and request path as HTTP/1. */
export interface H2Host extends EdgeContext {
  /** Count a new connection against the connection limits; a refused one gets `refusal` set. */
  admitH2(conn: H2Connection): void;
  /** The connection closed: out of the limits. */
  h2Closed(conn: H2Connection): void;
  /** One stream's request, served as an HTTP/1 request is (edge checks, forwarder, holds). */
  serveH2(req: H2Request, res: H2Response, conn: H2Connection, expectsContinue: boolean): void;
}

export interface H2FrontDeps {
  config: HoldfastConfig;
  host: H2Host;
  metrics: Metrics;
  log: Logger;
}

const kH2Connection = Symbol('holdfast.h2Connection');
type TaggedSession = ServerHttp2Session & { [kH2Connection]?: H2Connection };

/**
 * HTTP/2 for clients (RFC 9113) through node:http2, on connections another listener accepted: the TLS
 * listener hands over those whose ALPN chose `h2`, the plain listener (with `edge.h2c`) those that open with
 * the HTTP/2 preface. One listener each, so SNI, certificate reloads, limits and drain stay where they are.
 * Advertised in SETTINGS: limits.maxConcurrentStreams (nghttp2 refuses streams past it) and RFC 8441's
 * extended CONNECT, for WebSockets over a stream. Idle connections (no stream for keepAliveIdleMs) and
 * drained ones are closed with GOAWAY, which lets open streams finish.
 */
export class H2Front {
  readonly server: Http2Server<typeof IncomingMessage, typeof ServerResponse, typeof H2Request, typeof H2Response>;
  readonly #deps: H2FrontDeps;
  readonly #connections = new Set<H2Connection>();
  /** The socket being handed to node:http2: its `session` event comes synchronously within `serve`. */
  #handingOver: Socket | null = null;
  readonly #sessionErrors: RateLimitedLog;

  constructor(deps: H2FrontDeps) {
    this.#deps = deps;
    const { limits } = deps.config;
    this.#sessionErrors = new RateLimitedLog(deps.log, 'info', 'HTTP/2 connections failed');
    this.server = createServer({
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        enableConnectProtocol: true,
        maxHeaderListSize: limits.maxHeaderBytes,
      },
      // Pseudo-header fields count too; one more than the limit lets checkH2Request answer 431 itself.
      maxHeaderListPairs: limits.maxHeaderFields + 8,
      Http2ServerRequest: H2Request,
      Http2ServerResponse: H2Response,
    });
    this.server.on('session', (session: ServerHttp2Session) => this.#onSession(session));
    this.server.on('request', (req: H2Request, res: H2Response) => this.#onRequest(req, res, false));
    this.server.on('checkContinue', (req: H2Request, res: H2Response) => this.#onRequest(req, res, true));
    // Without a listener Node answers every CONNECT 405 itself, past our accounting and without an error code.
    this.server.on('connect', (req: H2Request, res: H2Response) => this.#onRequest(req, res, false));
  }

  /** Serve a connection whose first bytes are HTTP/2's (ALPN `h2`, or the h2c preface: h2c-preface.ts). */
  serve(socket: Socket): void {
    this.#handingOver = socket;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.#handingOver = null;
    }
  }

  get size(): number {
    return this.#connections.size;
  }

  /** GOAWAY on every connection: streams in progress finish, no new ones start. */
  drain(): void {
    for (const conn of this.#connections) conn.goAway();
  }

  close(): void {
    this.#sessionErrors.flush();
  }

  #onSession(session: TaggedSession): void {
    const socket = this.#handingOver;
    if (socket === null) {
      session.destroy();
      return;
    }
    const conn = new H2Connection(socket, session, this.#deps.host);
    session[kH2Connection] = conn;
    this.#connections.add(conn);
    this.#deps.metrics.h2ConnectionsOpen.inc();
    session.on('close', () => this.#onSessionClose(conn));
    session.on('error', (err: NodeJS.ErrnoException) => this.#sessionErrors.note(err.code ?? 'ERR_HTTP2', { code: err.code, reason: err.message }));
    // Node's session timer restarts on every frame in or out; at the deadline a connection with no stream
    // open is idle and closed (a held stream may be silent for longer: it keeps its connection).
    session.setTimeout(this.#deps.config.timeouts.keepAliveIdleMs, () => {
      if (conn.pendingResponses === 0) conn.goAway();
    });
    this.#deps.host.admitH2(conn);
  }

  #onSessionClose(conn: H2Connection): void {
    if (!this.#connections.delete(conn)) return;
    this.#deps.metrics.h2ConnectionsOpen.dec();
    this.#deps.host.h2Closed(conn);
  }

  #onRequest(req: H2Request, res: H2Response, expectsContinue: boolean): void {
    const conn = (req.stream.session as TaggedSession | undefined)?.[kH2Connection];
    if (conn === undefined) {
      res.destroy();
      return;
    }
    this.#deps.host.serveH2(req, res, conn, expectsContinue);
  }
}
