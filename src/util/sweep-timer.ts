/**
 * The one interval behind a watch over many connections (BodyStallWatch, SendStallWatch): it runs only while
 * something is watched, and never keeps the process alive.
 */
export class SweepTimer {
  readonly #intervalMs: number;
  readonly #sweep: (nowMs: number) => void;
  #timer: NodeJS.Timeout | null = null;

  constructor(intervalMs: number, sweep: (nowMs: number) => void) {
    this.#intervalMs = intervalMs;
    this.#sweep = sweep;
  }

  /** Something is watched: make sure the sweep runs. */
  start(): void {
    this.#timer ??= setInterval(runSweep, this.#intervalMs, this.#sweep).unref();
  }

  /** Nothing is watched any more (or shutdown). */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

function runSweep(sweep: (nowMs: number) => void): void {
  sweep(Date.now());
}
