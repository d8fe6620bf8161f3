import type { PublishItem } from '../grip/publish-items.js';

export interface PrevIdWaitsOptions {
  /** How long an item waits for its predecessor before it goes out anyway. */
  waitMs: number;
  /** Items that may wait per channel; more are dropped. */
  maxPendingPerChannel: number;
}

export interface PrevIdWaitsSink {
  /** An item waited `waitMs` without its predecessor: it goes out now, unchecked. */
  expired(item: PublishItem): void;
  /** The channel's last waiting item left: the driver may stop watching the channel. */
  idle(channel: string): void;
}

interface Pending {
  item: PublishItem;
  atMs: number;
}

/**
 * Items waiting for their prev-id on a networked bus: the same bounds as the in-process Sequencer
 * (sequencer.ts, after Pushpin's src/handler/sequencer.cpp: one waiter per predecessor, a cap per channel,
 * a wait that runs out), but the predecessor's arrival is learnt from the engine asynchronously, so the
 * driver asks `take(channel, id)` whenever it sees an id stored, instead of the sequencer looking itself.
 */
export class PrevIdWaits {
  readonly #options: PrevIdWaitsOptions;
  readonly #sink: PrevIdWaitsSink;
  /** channel -> (prev-id -> item waiting for it) */
  readonly #pending = new Map<string, Map<string, Pending>>();
  #timer: NodeJS.Timeout | null = null;

  constructor(options: PrevIdWaitsOptions, sink: PrevIdWaitsSink) {
    this.#options = options;
    this.#sink = sink;
  }

  /** `queued`, or `dropped` when the channel already has an item waiting on the same id or is at its cap. */
  add(item: PublishItem & { prevId: string }, nowMs: number): 'queued' | 'dropped' {
    let waiting = this.#pending.get(item.channel);
    if (waiting === undefined) {
      waiting = new Map();
      this.#pending.set(item.channel, waiting);
    }
    if (waiting.has(item.prevId) || waiting.size >= this.#options.maxPendingPerChannel) {
      if (waiting.size === 0) this.#pending.delete(item.channel);
      return 'dropped';
    }
    waiting.set(item.prevId, { item, atMs: nowMs });
    this.#timer ??= setInterval(expireWaits, Math.max(50, Math.min(1_000, this.#options.waitMs / 4)), this).unref();
    return 'queued';
  }

  /** The item waiting for `id` on `channel`, removed from the waits. */
  take(channel: string, id: string): PublishItem | undefined {
    const waiting = this.#pending.get(channel);
    const pending = waiting?.get(id);
    if (waiting === undefined || pending === undefined) return undefined;
    waiting.delete(id);
    if (waiting.size === 0) this.#closeChannel(channel);
    return pending.item;
  }

  /** Removes one waiting item (the driver found its predecessor itself, or publishes it another way). */
  remove(item: PublishItem & { prevId: string }): boolean {
    const waiting = this.#pending.get(item.channel);
    if (waiting?.get(item.prevId)?.item !== item) return false;
    waiting.delete(item.prevId);
    if (waiting.size === 0) this.#closeChannel(item.channel);
    return true;
  }

  has(channel: string): boolean {
    return this.#pending.has(channel);
  }

  /** Items that waited too long go out now (called by the timer; public for tests on a fake clock). */
  expire(nowMs: number): void {
    const due: PublishItem[] = [];
    for (const [channel, waiting] of this.#pending) {
      for (const [prevId, pending] of waiting) {
        if (nowMs - pending.atMs < this.#options.waitMs) continue;
        waiting.delete(prevId);
        due.push(pending.item);
      }
      if (waiting.size === 0) this.#closeChannel(channel);
    }
    for (const item of due) this.#sink.expired(item);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#pending.clear();
  }

  #closeChannel(channel: string): void {
    this.#pending.delete(channel);
    if (this.#pending.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    this.#sink.idle(channel);
  }
}

function expireWaits(waits: PrevIdWaits): void {
  waits.expire(Date.now());
}
