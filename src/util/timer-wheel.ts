/** An object the wheel can hold: it keeps its own due time and slot, so scheduling allocates nothing. */
export interface WheelEntry {
  wheelDueMs: number;
  wheelSlot: Set<WheelEntry> | null;
}

const SLOT_COUNT = 512;

/**
 * One shared timer for every held connection's deadlines (keep-alives, long-poll timeouts, next-link
 * idles) instead of a Node timer each: a hashed wheel of `tickMs` slots. An entry fires on the first tick at
 * or after its due time; entries due more than a wheel's turn ahead stay in their slot and are skipped
 * until their turn comes.
 */
export class TimerWheel<T extends WheelEntry> {
  readonly #tickMs: number;
  readonly #onDue: (entry: T) => void;
  readonly #slots: Set<T>[] = Array.from({ length: SLOT_COUNT }, () => new Set<T>());
  #size = 0;
  #lastTick: number;
  #timer: NodeJS.Timeout | null = null;

  constructor(tickMs: number, onDue: (entry: T) => void) {
    this.#tickMs = tickMs;
    this.#onDue = onDue;
    this.#lastTick = Math.floor(Date.now() / tickMs);
  }

  get size(): number {
    return this.#size;
  }

  schedule(entry: T, dueMs: number): void {
    this.cancel(entry);
    if (this.#timer === null) {
      this.#lastTick = Math.floor(Date.now() / this.#tickMs);
      this.#timer = setInterval(advanceWheel, this.#tickMs, this);
      this.#timer.unref();
    }
    // Never into a slot already passed, or it would wait a whole turn.
    const tick = Math.max(Math.ceil(dueMs / this.#tickMs), this.#lastTick + 1);
    const slot = this.#slots[tick % SLOT_COUNT]!;
    entry.wheelDueMs = dueMs;
    entry.wheelSlot = slot;
    slot.add(entry);
    this.#size++;
  }

  cancel(entry: T): void {
    if (entry.wheelSlot === null) return;
    entry.wheelSlot.delete(entry);
    entry.wheelSlot = null;
    this.#size--;
    if (this.#size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Fire everything due up to now. Called by the interval; public for tests and shutdown. */
  advance(nowMs: number): void {
    const current = Math.floor(nowMs / this.#tickMs);
    const from = Math.max(this.#lastTick + 1, current - SLOT_COUNT + 1);
    for (let tick = from; tick <= current; tick++) {
      const slot = this.#slots[tick % SLOT_COUNT]!;
      for (const entry of slot) {
        if (entry.wheelDueMs > nowMs) continue;
        slot.delete(entry);
        entry.wheelSlot = null;
        this.#size--;
        this.#onDue(entry);
      }
    }
    this.#lastTick = current;
    if (this.#size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

function advanceWheel(wheel: { advance(nowMs: number): void }): void {
  wheel.advance(Date.now());
}
