import type { PublishStatus } from './bus.js';
import type { PublishItem } from '../grip/publish-items.js';

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

interface Pending {
  item: PublishItem;
  atMs: number;
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
  /** channel -> (prev-id -> item waiting for it) */
  readonly #pending = new Map<string, Map<string, Pending>>();
  /** `channel\0id` -> expiry, insertion ordered so expiry is a walk from the front. */
  readonly #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  constructor(options: SequencerOptions, sink: SequencerSink) {
    this.#options = options;
    this.#sink = sink;
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
    let waiting = this.#pending.get(item.channel);
    if (waiting === undefined) {
      waiting = new Map();
      this.#pending.set(item.channel, waiting);
    }
    if (waiting.has(item.prevId) || waiting.size >= this.#options.maxPendingPerChannel) {
      this.#sink.drop(item, 'sequence');
      return 'dropped';
    }
    waiting.set(item.prevId, { item, atMs: nowMs });
    this.#timer ??= setInterval(expirePending, Math.max(100, Math.min(1_000, this.#options.waitMs)), this).unref();
    return 'queued';
  }

  /** Items that waited too long go out now (called by the timer). */
  expire(nowMs: number): void {
    for (const [, waiting] of this.#pending) {
      for (const [prevId, pending] of waiting) {
        if (nowMs - pending.atMs < this.#options.waitMs) continue;
        waiting.delete(prevId);
        this.#send(pending.item);
      }
    }
    for (const [channel, waiting] of this.#pending) if (waiting.size === 0) this.#pending.delete(channel);
    if (this.#pending.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #send(item: PublishItem): void {
    this.#sink.emit(item);
    const waiting = this.#pending.get(item.channel);
    let id = item.id;
    while (waiting !== undefined && id !== undefined) {
      const next = waiting.get(id);
      if (next === undefined) break;
      waiting.delete(id);
      this.#sink.emit(next.item);
      id = next.item.id;
    }
    if (waiting?.size === 0) this.#pending.delete(item.channel);
  }

  #expireSeen(nowMs: number): void {
    for (const [key, expiresAt] of this.#seen) {
      if (expiresAt > nowMs) break;
      this.#seen.delete(key);
    }
  }
}

function expirePending(sequencer: Sequencer): void {
  sequencer.expire(Date.now());
}
