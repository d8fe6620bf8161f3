import type { PublishStatus } from './bus.js';
import type { PublishItem } from '../grip/publish-items.js';
import { PendingItems } from './pending-items.js';

export interface SequencerOptions {
  /** How long an item waits for its predecessor before it goes out anyway. */
  waitMs: number;
  /** Items that may wait per channel; more are dropped. */
  maxPendingPerChannel: number;
  /** A repeated id within this window is dropped. */
  dedupWindowMs: number;
}

export interface SequencerSink {
  /** The channel's last published id, as the bus knows it. */
  lastId(channel: string): string | undefined;
  /** An item ready to publish, in order. */
  emit(item: PublishItem): void;
  /** An item dropped, with the reason for the metrics. */
  drop(item: PublishItem, reason: 'duplicate' | 'sequence'): void;
}

/**
 * Publish ordering as Pushpin does it (src/handler/sequencer.cpp): an item whose prev-id is not its
 * channel's last id waits for its predecessor, then everything that waited on it follows in order; one that
 * waits too long goes out anyway. A repeated id within the dedup window is dropped, so a publisher's retry
 * never reaches clients twice.
 */
export class Sequencer {
  readonly #options: SequencerOptions;
  readonly #sink: SequencerSink;
  readonly #pending: PendingItems;
  /** `channel\0id` -> expiry, insertion ordered so expiry is a walk from the front. */
  readonly #seen = new Map<string, number>();

  constructor(options: SequencerOptions, sink: SequencerSink) {
    this.#options = options;
    this.#sink = sink;
    this.#pending = new PendingItems({ waitMs: options.waitMs, maxPerChannel: options.maxPendingPerChannel }, (p) => this.#send(p.item));
  }

  /** `published` when emitted now (with whatever waited on it), `queued` when it waits for its predecessor. */
  add(item: PublishItem, nowMs: number): PublishStatus {
    if (item.id !== undefined && this.#options.dedupWindowMs > 0) {
      this.#expireSeen(nowMs);
      const key = `${item.channel}\0${item.id}`;
      if (this.#seen.has(key)) {
        this.#sink.drop(item, 'duplicate');
        return 'duplicate';
      }
      this.#seen.set(key, nowMs + this.#options.dedupWindowMs);
    }
    if (item.noSeq || item.prevId === undefined) {
      this.#send(item);
      return 'published';
    }
    const lastId = this.#sink.lastId(item.channel);
    if (lastId === undefined || lastId === item.prevId || this.#options.waitMs === 0) {
      this.#send(item);
      return 'published';
    }
    if (!this.#pending.add(item, item.prevId, nowMs)) {
      this.#sink.drop(item, 'sequence');
      return 'dropped';
    }
    return 'queued';
  }

  /** Items that waited too long go out now (called by the timer). */
  expire(nowMs: number): void {
    this.#pending.expire(nowMs);
  }

  /**
   * Forgets ids whose dedup window has passed. `add` does it too, but only when another item with an id
   * comes: without this, an idle process keeps a whole window of ids until the next publish (bench/soak:
   * 3.1 MiB of heap after a load that published ~52,000 ids).
   */
  sweep(nowMs: number): void {
    this.#expireSeen(nowMs);
  }

  /** Ids remembered for de-duplication: what the sweep must bring back to zero once the window passed. */
  get seenCount(): number {
    return this.#seen.size;
  }

  stop(): void {
    this.#pending.stop();
  }

  #send(item: PublishItem): void {
    this.#sink.emit(item);
    // Everything that waited on it follows, in chain order.
    for (let id = item.id; id !== undefined; ) {
      const next = this.#pending.take(item.channel, id);
      if (next === undefined) break;
      this.#sink.emit(next.item);
      id = next.item.id;
    }
  }

  #expireSeen(nowMs: number): void {
    for (const [key, expiresAt] of this.#seen) {
      if (expiresAt > nowMs) break;
      this.#seen.delete(key);
    }
  }
}
