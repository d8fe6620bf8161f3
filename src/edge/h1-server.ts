import { Server as NetServer, type Socket } from 'node:net';
import type { Llhttp, NativeParser } from '../http/llhttp.js';
import { SweepTimer } from '../util/sweep-timer.js';
import { H1Wire, type WireHost } from './h1-wire.js';

export interface H1ServerOptions {
  llhttp: Llhttp;
  /** Idle keep-alive connections close after this (0: never). */
  keepAliveIdleMs: number;
  /** The `Keep-Alive: timeout=` clients are told, in ms (Node's keepAliveTimeout); 0 advertises nothing. */
  advertisedKeepAliveMs: number;
  /** A request head must be complete this long after its first byte (or the connection's start). */
  requestHeadMs: number;
  maxHeaderBytes: number;
}

/** Parsers kept for reuse: making one is a native allocation and an async resource (Node keeps 1,000 too). */
const PARSER_POOL_SIZE = 1_000;

/**
 * The edge's HTTP/1 engine: a `net.Server` whose connections are parsed by llhttp (h1-wire.ts) and which
 * emits what Node's http.Server emits (`request`, `checkContinue`, `checkExpectation`, `upgrade`, `connect`,
 * `clientError`), so the edge above it is the same for both. What it saves per request is Node's
 * IncomingMessage, ServerResponse and their streams (bench/RESULTS.md, the profile by layer). The head
 * deadline and the keep-alive idle limit are one sweep over the parsing connections, as Node's
 * connectionsCheckingInterval is for heads, so a client that sends one byte a second is cut when the
 * deadline passes, not when it pauses, and no request re-arms a timer.
 */
export class H1Server extends NetServer implements WireHost {
  readonly llhttp: Llhttp;
  readonly maxHeaderBytes: number;
  maxHeadersCount = 2_000;
  readonly keepAliveIdleMs: number;
  readonly keepAliveLine: string;
  readonly #requestHeadMs: number;
  readonly #wires = new Set<H1Wire>();
  /** The connections with a parser, whose deadlines the sweep checks. */
  readonly #watched = new Set<H1Wire>();
  readonly #sweep: SweepTimer;
  readonly #parsers: NativeParser[] = [];
  readonly #freed: NativeParser[] = [];

  constructor(options: H1ServerOptions) {
    // allowHalfOpen: a client's FIN ends its requests, not its answers (RFC 9112 §9.6; h1-wire.ts).
    super({ allowHalfOpen: true, noDelay: true });
    this.llhttp = options.llhttp;
    this.maxHeaderBytes = options.maxHeaderBytes;
    this.keepAliveIdleMs = options.keepAliveIdleMs;
    const advertised = Math.floor(options.advertisedKeepAliveMs / 1000);
    this.keepAliveLine = options.advertisedKeepAliveMs > 0 ? `Keep-Alive: timeout=${advertised}\r\n` : '';
    this.#requestHeadMs = options.requestHeadMs;
    this.#sweep = new SweepTimer(sweepIntervalMs(options.requestHeadMs, options.keepAliveIdleMs), (nowMs) => this.#check(nowMs));
    this.on('connection', (socket: Socket) => this.#wires.add(new H1Wire(socket, this)));
    this.on('close', () => this.#sweep.stop());
  }

  allocParser(): NativeParser {
    const parser = this.#parsers.pop() ?? new this.llhttp.Parser();
    parser.initialize(this.llhttp.REQUEST, {}, this.maxHeaderBytes, 0);
    return parser;
  }

  /**
   * Back to the pool once the current callback stack has unwound: a parser is often let go of from inside
   * its own callback (an upgrade), and the connection that reuses it may be set up in that same stack.
   */
  freeParser(parser: NativeParser): void {
    parser.free();
    this.#freed.push(parser);
    if (this.#freed.length === 1) setImmediate(poolFreedParsers, this);
  }

  /** For poolFreedParsers. */
  poolFreed(): void {
    for (const parser of this.#freed.splice(0)) {
      if (this.#parsers.length < PARSER_POOL_SIZE) this.#parsers.push(parser);
      else parser.close();
    }
  }

  watch(wire: H1Wire): void {
    this.#watched.add(wire);
    this.#sweep.start();
  }

  unwatch(wire: H1Wire): void {
    this.#watched.delete(wire);
    if (this.#watched.size === 0) this.#sweep.stop();
  }

  wireClosed(wire: H1Wire): void {
    this.#wires.delete(wire);
    this.unwatch(wire);
  }

  /** Open connections the engine serves or served (an upgraded one leaves it). */
  get connectionCount(): number {
    return this.#wires.size;
  }

  /** Open connections that still hold a request parser (held streams and upgrades do not). */
  get parsingConnections(): number {
    let n = 0;
    for (const wire of this.#wires) if (wire.parsing) n++;
    return n;
  }

  /** Node's http.Server.closeAllConnections: every connection, now. */
  closeAllConnections(): void {
    for (const wire of this.#wires) wire.socket.destroy();
  }

  /** The head deadline (timeouts.requestHeadMs) and the keep-alive idle limit, for every parsing connection. */
  #check(nowMs: number): void {
    const headMs = this.#requestHeadMs;
    const idleMs = this.keepAliveIdleMs;
    for (const wire of this.#watched) {
      if (wire.idleSinceMs > 0) {
        if (idleMs > 0 && nowMs - wire.idleSinceMs >= idleMs) wire.socket.destroy();
        continue;
      }
      if (wire.headSinceMs === 0 || headMs <= 0) continue;
      // Not read because we stopped reading (a pipeline waiting for its answers, a body its backend is slow
      // to take): the client is not the slow one. Its clock starts again when reading does.
      if (!wire.reading) wire.headSinceMs = nowMs;
      else if (nowMs - wire.headSinceMs >= headMs) {
        wire.headSinceMs = 0;
        const err = new Error('request head timeout') as Error & { code: string };
        err.code = 'ERR_HTTP_REQUEST_TIMEOUT';
        this.emit('clientError', err, wire.socket);
      }
    }
  }
}

/**
 * How often the sweep runs: often enough that a deadline is met within an eighth of itself (a keep-alive
 * close is due at keepAliveIdleMs, not a second later), at most once a second and at least every 50 ms.
 */
function sweepIntervalMs(requestHeadMs: number, keepAliveIdleMs: number): number {
  const limits = [requestHeadMs, keepAliveIdleMs].filter((ms) => ms > 0);
  if (limits.length === 0) return 1_000;
  return Math.max(50, Math.min(1_000, Math.floor(Math.min(...limits) / 8)));
}

function poolFreedParsers(server: H1Server): void {
  server.poolFreed();
}
