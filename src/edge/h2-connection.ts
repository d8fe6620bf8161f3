import type { ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { HoldfastError } from '../errors.js';
import type { ExchangeOwner, ProxyExchange } from '../proxy/exchange.js';
import type { EdgeContext } from './connection.js';
import type { TrackedConnection } from './registry.js';

/**
 * One HTTP/2 client connection: one place in the connection limits however many streams it carries (as
 * nginx and HAProxy count), and the owner of every exchange on it. Streams are independent (RFC 9113 §5):
 * nothing waits for another stream's backend exchange, and a response ends its stream, never the
 * connection; the connection ends with GOAWAY (idle, drain, a refused connection) or when the client leaves.
 */
export class H2Connection implements TrackedConnection, ExchangeOwner {
  /** The TLS (or h2c) socket itself, not the session's guarded view of it: the registry may destroy it. */
  readonly socket: Socket;
  readonly session: ServerHttp2Session;
  readonly clientAddress: string;
  readonly edge: EdgeContext;
  /** Streams whose responses are not finished. */
  pendingResponses = 0;
  requestsSeen = 0;
  bytesReadAtIdle = 0;
  idleSinceMs = 0;
  /** GOAWAY sent: no new stream is accepted. */
  closing = false;
  /** Set when a limit refused this connection: its streams get this answer, then GOAWAY. */
  refusal: HoldfastError | null = null;
  lastExchange: ProxyExchange | null = null;
  readonly leavesByFin = false;

  constructor(socket: Socket, session: ServerHttp2Session, edge: EdgeContext) {
    this.socket = socket;
    this.session = session;
    this.clientAddress = socket.remoteAddress ?? 'unknown';
    this.edge = edge;
  }

  get draining(): boolean {
    return this.edge.draining;
  }

  onUpstreamDone(_exchange: ProxyExchange): void {}

  /** A client's FIN on an HTTP/2 connection is not a half-close after one request: nothing to announce. */
  answersLast(_exchange: ProxyExchange): boolean {
    return false;
  }

  /** The stream ends with its response (Node resets what is left of an unread upload); the connection stays. */
  closeAfterResponse(): void {}

  /** A stream's response finished or was reset. Returns true when no stream is left. */
  onResponseClosed(): boolean {
    this.pendingResponses--;
    return this.pendingResponses === 0;
  }

  /** GOAWAY (NO_ERROR): no new streams; the connection closes once the open ones finish. */
  goAway(): void {
    this.closing = true;
    if (!this.session.closed && !this.session.destroyed) this.session.close();
  }
}
