import type { Logger } from './log.js';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug';

interface Window {
  count: number;
  fields: Record<string, unknown>;
  timer: NodeJS.Timeout;
}

/**
 * At most one log line per `intervalMs` per kind, carrying how many events of that kind happened in the
 * window. For events that come in floods when something is wrong (connections refused at a limit: one line
 * each would be thousands of lines a second, costing CPU and disk exactly when the process is busiest).
 * The first event of a kind opens a window; when it ends, one line goes out with the count and the last
 * event's fields; the next event opens the next window. Uses setTimeout, so a test fakes it.
 */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #level: Level;
  readonly #message: string;
  readonly #intervalMs: number;
  readonly #windows = new Map<string, Window>();

  constructor(log: Logger, level: Level, message: string, intervalMs = 1_000) {
    this.#log = log;
    this.#level = level;
    this.#message = message;
    this.#intervalMs = intervalMs;
  }

  /** One event of `kind`; `fields` describe it (the line keeps the last event's). */
  note(kind: string, fields: Record<string, unknown>): void {
    const open = this.#windows.get(kind);
    if (open !== undefined) {
      open.count++;
      open.fields = fields;
      return;
    }
    const timer = setTimeout(() => this.#close(kind), this.#intervalMs);
    // A pending summary must not keep a process alive that is otherwise done; flush() writes it at shutdown.
    timer.unref();
    this.#windows.set(kind, { count: 1, fields, timer });
  }

  /** Writes every open window's line now (shutdown). */
  flush(): void {
    for (const kind of [...this.#windows.keys()]) this.#close(kind);
  }

  #close(kind: string): void {
    const window = this.#windows.get(kind);
    if (window === undefined) return;
    clearTimeout(window.timer);
    this.#windows.delete(kind);
    this.#log[this.#level]({ ...window.fields, kind, count: window.count, windowMs: this.#intervalMs }, this.#message);
  }
}
