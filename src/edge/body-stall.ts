import type { ProxyExchange } from '../proxy/exchange.js';
import { SweepTimer } from '../util/sweep-timer.js';

interface Watched {
  bytesRead: number;
  lastProgressMs: number;
  /** Whether the last sweep found us ready for more body (see waitingOnClient). */
  waiting: boolean;
}

/**
 * One shared timer that finds request bodies which stopped arriving. Progress is the client socket's
 * bytesRead moving, so no per-request listener or timer is needed; a second's resolution is plenty for a
 * limit measured in tens of seconds.
 */
export class BodyStallWatch {
  readonly #stallMs: number;
  readonly #onStall: (exchange: ProxyExchange) => void;
  readonly #watched = new Map<ProxyExchange, Watched>();
  readonly #sweep: SweepTimer;

  constructor(stallMs: number, onStall: (exchange: ProxyExchange) => void) {
    this.#stallMs = stallMs;
    this.#onStall = onStall;
    this.#sweep = new SweepTimer(Math.min(1_000, stallMs), (nowMs) => this.check(nowMs));
  }

  add(exchange: ProxyExchange): void {
    this.#watched.set(exchange, { bytesRead: bodyProgress(exchange), lastProgressMs: Date.now(), waiting: true });
    this.#sweep.start();
  }

  delete(exchange: ProxyExchange): void {
    this.#watched.delete(exchange);
  }

  check(nowMs: number): void {
    for (const [exchange, state] of this.#watched) {
      if (exchange.req.complete || exchange.res.writableEnded) {
        this.#watched.delete(exchange);
        continue;
      }
      const bytesRead = bodyProgress(exchange);
      const waiting = waitingOnClient(exchange);
      // The clock runs only across sweeps that all found us waiting on the client: a sweep that sees the
      // wait begin restarts it, so the client always gets the full stall time from then.
      if (bytesRead !== state.bytesRead || !waiting || !state.waiting) {
        state.bytesRead = bytesRead;
        state.lastProgressMs = nowMs;
        state.waiting = waiting;
      } else if (nowMs - state.lastProgressMs >= this.#stallMs) {
        this.#watched.delete(exchange);
        this.#onStall(exchange);
      }
    }
    if (this.#watched.size === 0) this.#sweep.stop();
  }

  stop(): void {
    this.#sweep.stop();
    this.#watched.clear();
  }
}

/**
 * What moves while the body arrives: the client socket's bytesRead, or on HTTP/2 the stream's own count
 * (the connection's moves with every sibling stream, and would hide a stalled upload among them).
 */
function bodyProgress(exchange: ProxyExchange): number {
  return (exchange.req as { bodyBytesRead?: number }).bodyBytesRead ?? exchange.req.socket.bytesRead;
}

/**
 * A silent body is the client's fault only while we are ready for more of it. Not yet: the exchange has not
 * started (queued behind a pipelined request), its client is rightly waiting for the backend's 100 Continue,
 * or bytes it sent sit unread in our buffer (a slow backend's backpressure has paused the client socket).
 * Either way the clock restarts; a backend that never reads or never answers is for the upstream timeouts.
 */
function waitingOnClient(exchange: ProxyExchange): boolean {
  return exchange.bodyInvited && exchange.req.readableLength === 0;
}
