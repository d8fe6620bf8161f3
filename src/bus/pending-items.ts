import type { PublishItem } from '../grip/publish-items.js';

export interface PendingItem {
  item: PublishItem;
  /** The id it waits for (its prev-id). */
  prevId: string;
  /** When it started waiting; a retry that must wait again keeps it, so the wait stays bounded. */
  atMs: number;
}

export interface PendingItemsOptions {
  /** How long an item waits for its predecessor before it goes out anyway. */
  waitMs: number;
  /** Items that may wait per channel; more are dropped. */
  maxPerChannel: number;
}

/**
 * Items waiting for their predecessor, per channel and keyed by the prev-id they wait on, with the timer
 * that lets one go after `waitMs` (Pushpin's sequencer, src/handler/sequencer.cpp). Shared by the
 * in-process Sequencer and the networked drivers, which decide in the engine whether an item must wait but
 * keep the waiting on the node that took the publish.
 */
export class PendingItems {
  readonly #options: PendingItemsOptions;
  readonly #onExpired: (pending: PendingItem) => void;
  /** channel -> (prev-id -> item waiting for it) */
  readonly #byChannel = new Map<string, Map<string, PendingItem>>();
  #timer: NodeJS.Timeout | null = null;

  /** `onExpired` gets each item whose wait ran out, already removed, in the order they were added. */
  constructor(options: PendingItemsOptions, onExpired: (pending: PendingItem) => void) {
    this.#options = options;
    this.#onExpired = onExpired;
  }

  /** False when the channel is at its cap or something already waits on the same prev-id: drop the item. */
  add(item: PublishItem, prevId: string, atMs: number): boolean {
    let waiting = this.#byChannel.get(item.channel);
    if (waiting === undefined) {
      waiting = new Map();
      this.#byChannel.set(item.channel, waiting);
    }
    if (waiting.has(prevId) || waiting.size >= this.#options.maxPerChannel) {
      if (waiting.size === 0) this.#byChannel.delete(item.channel);
      return false;
    }
    waiting.set(prevId, { item, prevId, atMs });
    this.#timer ??= setInterval(expirePending, Math.max(100, Math.min(1_000, this.#options.waitMs)), this).unref();
    return true;
  }

  /**
   * Puts back an item taken for a retry that found it must still wait, keeping its start. False when another
   * item took its place meanwhile: the caller sends it now, as if its wait ran out.
   */
  restore(pending: PendingItem): boolean {
    const waiting = this.#byChannel.get(pending.item.channel);
    if (waiting?.has(pending.prevId) === true) return false;
    if (waiting === undefined) this.#byChannel.set(pending.item.channel, new Map([[pending.prevId, pending]]));
    else waiting.set(pending.prevId, pending);
    this.#timer ??= setInterval(expirePending, Math.max(100, Math.min(1_000, this.#options.waitMs)), this).unref();
    return true;
  }

  /** Removes and returns the item waiting for `prevId` on `channel`, if any. */
  take(channel: string, prevId: string): PendingItem | undefined {
    const waiting = this.#byChannel.get(channel);
    const pending = waiting?.get(prevId);
    if (pending === undefined) return undefined;
    waiting!.delete(prevId);
    if (waiting!.size === 0) this.#byChannel.delete(channel);
    return pending;
  }

  has(channel: string): boolean {
    return this.#byChannel.has(channel);
  }

  /** Hands every item that waited `waitMs` or longer to `onExpired` (called by the timer). */
  expire(nowMs: number): void {
    for (const [channel, waiting] of this.#byChannel) {
      for (const [prevId, pending] of waiting) {
        if (nowMs - pending.atMs < this.#options.waitMs) continue;
        waiting.delete(prevId);
        if (waiting.size === 0) this.#byChannel.delete(channel);
        this.#onExpired(pending);
      }
    }
    if (this.#byChannel.size === 0) this.stop();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

function expirePending(pending: PendingItems): void {
  pending.expire(Date.now());
}
