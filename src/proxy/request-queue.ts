/** One waiting request, and when it started waiting. */
interface Waiting<T> {
  readonly item: T;
  readonly enqueuedAtMs: number;
}

export interface QueueOwner<T> {
  /** `item` waited `timeoutMs` without a server: answer it (503) and forget it. */
  onQueueTimeout(item: T, waitedMs: number): void;
}

/**
 * A bounded FIFO of requests waiting for a free backend server (HAProxy's backend queue with `timeout
 * queue`). Every entry waits the same time, so deadlines come in order and one timer, armed for the oldest
 * entry, is enough. Nothing piles up: past `maxLength` the caller answers 503 at once.
 */
export class RequestQueue<T> {
  readonly maxLength: number;
  readonly timeoutMs: number;
  readonly #owner: QueueOwner<T>;
  #entries: Waiting<T>[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(maxLength: number, timeoutMs: number, owner: QueueOwner<T>) {
    this.maxLength = maxLength;
    this.timeoutMs = timeoutMs;
    this.#owner = owner;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** False when full. */
  push(item: T, nowMs: number): boolean {
    if (this.#entries.length >= this.maxLength) return false;
    this.#entries.push({ item, enqueuedAtMs: nowMs });
    if (this.#timer === null) this.#arm(nowMs);
    return true;
  }

  /** Removes `item` (its client left); returns how long it waited, or -1 when it was not queued. */
  remove(item: T, nowMs: number): number {
    const i = this.#entries.findIndex((e) => e.item === item);
    if (i < 0) return -1;
    const [entry] = this.#entries.splice(i, 1);
    if (this.#entries.length === 0) this.#disarm();
    return nowMs - entry!.enqueuedAtMs;
  }

  /**
   * Offers the waiting items in order to `place`, which returns true when it found the item a server; placed
   * items leave the queue. Stops at the first item `place` refuses when `stopAtFirstRefusal` (no server is
   * free for anyone), else goes on (a later item may want another server).
   */
  drain(nowMs: number, place: (item: T, waitedMs: number) => boolean, stopAtFirstRefusal: boolean): void {
    if (this.#entries.length === 0) return;
    const kept: Waiting<T>[] = [];
    let stopped = false;
    for (const entry of this.#entries) {
      if (!stopped && place(entry.item, nowMs - entry.enqueuedAtMs)) continue;
      kept.push(entry);
      if (stopAtFirstRefusal) stopped = true;
    }
    this.#entries = kept;
    if (kept.length === 0) this.#disarm();
  }

  /** Times out the entries whose deadline passed and re-arms for the oldest one left. */
  expire(nowMs: number): void {
    this.#timer = null;
    while (this.#entries.length > 0 && nowMs - this.#entries[0]!.enqueuedAtMs >= this.timeoutMs) {
      const entry = this.#entries.shift()!;
      this.#owner.onQueueTimeout(entry.item, nowMs - entry.enqueuedAtMs);
    }
    if (this.#entries.length > 0) this.#arm(nowMs);
  }

  /** Empties the queue without answering anyone (the caller is tearing everything down). */
  clear(): T[] {
    const items = this.#entries.map((e) => e.item);
    this.#entries = [];
    this.#disarm();
    return items;
  }

  #arm(nowMs: number): void {
    const oldest = this.#entries[0]!;
    const delayMs = Math.max(0, oldest.enqueuedAtMs + this.timeoutMs - nowMs);
    this.#timer = setTimeout(queueOnTimer, delayMs, this);
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

function queueOnTimer(queue: RequestQueue<unknown>): void {
  queue.expire(Date.now());
}
