/** One waiting request, and when it started waiting; `gone` once it left the queue (placed, timed out, removed). */
interface Waiting<T> {
  readonly item: T;
  readonly enqueuedAtMs: number;
  gone: boolean;
}

export interface QueueOwner<T> {
  /** `item` waited `timeoutMs` without a server: answer it (503) and forget it. */
  onQueueTimeout(item: T, waitedMs: number): void;
}

/** Entries that left are dropped from the array once it holds this many and they are at least half of it. */
const COMPACT_AFTER = 64;

/**
 * A bounded FIFO of requests waiting for a free backend server (HAProxy's backend queue with `timeout
 * queue`). Every entry waits the same time, so deadlines come in order and one timer, armed for the oldest
 * entry, is enough. Nothing piles up: past `maxLength` the caller answers 503 at once.
 *
 * Every finished request asks the queue to forget it, queued or not, and under overload hundreds wait: so
 * `remove` is a map look-up (an entry that leaves the middle stays in the array as a gap, skipped later) and a
 * drain that stops at the first refusal only touches what it places, never copying the waiting rest.
 */
export class RequestQueue<T> {
  readonly maxLength: number;
  readonly timeoutMs: number;
  readonly #owner: QueueOwner<T>;
  /** Oldest first from `#head`; entries before it, and gaps after it, are `gone`. */
  #entries: Waiting<T>[] = [];
  #head = 0;
  readonly #waiting = new Map<T, Waiting<T>>();
  #timer: NodeJS.Timeout | null = null;
  /** Drains and expiries in progress (a placed request may finish, and drain again, inside one): no compaction then. */
  #walking = 0;

  constructor(maxLength: number, timeoutMs: number, owner: QueueOwner<T>) {
    this.maxLength = maxLength;
    this.timeoutMs = timeoutMs;
    this.#owner = owner;
  }

  get length(): number {
    return this.#waiting.size;
  }

  /** False when full. */
  push(item: T, nowMs: number): boolean {
    if (this.#waiting.size >= this.maxLength) return false;
    this.#compact();
    const entry: Waiting<T> = { item, enqueuedAtMs: nowMs, gone: false };
    this.#entries.push(entry);
    this.#waiting.set(item, entry);
    if (this.#timer === null) this.#arm(nowMs);
    return true;
  }

  /** Removes `item` (its client left); returns how long it waited, or -1 when it was not queued. */
  remove(item: T, nowMs: number): number {
    const entry = this.#waiting.get(item);
    if (entry === undefined) return -1;
    this.#leave(entry);
    if (this.#waiting.size === 0) this.#settle();
    return nowMs - entry.enqueuedAtMs;
  }

  /**
   * Offers the waiting items in order to `place`, which returns true when it found the item a server; placed
   * items leave the queue. Stops at the first item `place` refuses when `stopAtFirstRefusal` (no server is
   * free for anyone), else goes on (a later item may want another server).
   */
  drain(nowMs: number, place: (item: T, waitedMs: number) => boolean, stopAtFirstRefusal: boolean): void {
    if (this.#waiting.size === 0) return;
    this.#walking++;
    try {
      for (let i = this.#head; i < this.#entries.length; i++) {
        const entry = this.#entries[i]!;
        if (entry.gone) continue;
        // Out before `place` runs: placing may finish another request and drain again from inside.
        this.#leave(entry);
        if (place(entry.item, nowMs - entry.enqueuedAtMs)) continue;
        entry.gone = false;
        this.#waiting.set(entry.item, entry);
        if (i < this.#head) this.#head = i;
        if (stopAtFirstRefusal) break;
      }
    } finally {
      this.#walking--;
    }
    this.#settle();
  }

  /** Times out the entries whose deadline passed and re-arms for the oldest one left. */
  expire(nowMs: number): void {
    this.#timer = null;
    this.#walking++;
    try {
      for (let entry = this.#oldest(); entry !== undefined && nowMs - entry.enqueuedAtMs >= this.timeoutMs; entry = this.#oldest()) {
        this.#leave(entry);
        this.#owner.onQueueTimeout(entry.item, nowMs - entry.enqueuedAtMs);
      }
    } finally {
      this.#walking--;
    }
    this.#settle();
  }

  /** Empties the queue without answering anyone (the caller is tearing everything down). */
  clear(): T[] {
    const items = [...this.#waiting.keys()];
    this.#waiting.clear();
    this.#entries = [];
    this.#head = 0;
    this.#disarm();
    return items;
  }

  #leave(entry: Waiting<T>): void {
    entry.gone = true;
    this.#waiting.delete(entry.item);
    // Skip the gaps at the front at once, so `#oldest` and the next drain start at a waiting entry.
    while (this.#head < this.#entries.length && this.#entries[this.#head]!.gone) this.#head++;
  }

  #oldest(): Waiting<T> | undefined {
    return this.#waiting.size === 0 ? undefined : this.#entries[this.#head];
  }

  /** After a drain or an expiry: drop what left from the front of the array, and arm or disarm the timer. */
  #settle(): void {
    if (this.#walking > 0) return;
    if (this.#waiting.size === 0) {
      this.#entries = [];
      this.#head = 0;
      this.#disarm();
      return;
    }
    this.#compact();
    if (this.#timer === null) this.#arm(Date.now());
  }

  /** Once most of the array is entries that left (at the front, or gaps), keep only those still waiting. */
  #compact(): void {
    if (this.#walking > 0 || this.#entries.length < COMPACT_AFTER || this.#entries.length < 2 * this.#waiting.size) return;
    this.#entries = this.#entries.filter((e) => !e.gone);
    this.#head = 0;
  }

  #arm(nowMs: number): void {
    const oldest = this.#oldest()!;
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
