import type { ProxyExchange } from '../proxy/exchange.js';

interface Watched {
  bytesRead: number;
  lastProgressMs: number;
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
  #timer: NodeJS.Timeout | null = null;

  constructor(stallMs: number, onStall: (exchange: ProxyExchange) => void) {
    this.#stallMs = stallMs;
    this.#onStall = onStall;
  }

  add(exchange: ProxyExchange): void {
    this.#watched.set(exchange, { bytesRead: exchange.req.socket.bytesRead, lastProgressMs: Date.now() });
    this.#timer ??= setInterval(sweep, Math.min(1_000, this.#stallMs), this).unref();
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
      const bytesRead = exchange.req.socket.bytesRead;
      if (bytesRead !== state.bytesRead) {
        state.bytesRead = bytesRead;
        state.lastProgressMs = nowMs;
      } else if (nowMs - state.lastProgressMs >= this.#stallMs) {
        this.#watched.delete(exchange);
        this.#onStall(exchange);
      }
    }
    if (this.#watched.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#watched.clear();
  }
}

function sweep(watch: BodyStallWatch): void {
  watch.check(Date.now());
}
