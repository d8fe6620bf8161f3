import type { PublishItem } from '../grip/publish-items.js';
import type { HistoryLimits, HistoryResult } from './bus.js';

interface Entry {
  item: PublishItem;
  atMs: number;
}

/**
 * A bounded per-channel log of published items (count and age), so a client that reconnects with the id of
 * the last item it saw gets what it missed. Items without an id are kept too (they still go to replays after
 * an earlier id) but cannot be a replay's starting point.
 */
export class ChannelHistory {
  readonly #limits: HistoryLimits;
  readonly #byChannel = new Map<string, Entry[]>();
  readonly #lastIds = new Map<string, string>();

  constructor(limits: HistoryLimits) {
    this.#limits = limits;
  }

  append(item: PublishItem, nowMs: number): void {
    if (item.id !== undefined) this.#lastIds.set(item.channel, item.id);
    else this.#lastIds.delete(item.channel);
    if (this.#limits.maxItems === 0) return;
    let entries = this.#byChannel.get(item.channel);
    if (entries === undefined) {
      entries = [];
      this.#byChannel.set(item.channel, entries);
    }
    entries.push({ item, atMs: nowMs });
    this.#trim(entries, nowMs);
  }

  after(channel: string, afterId: string, nowMs: number): HistoryResult {
    const entries = this.#byChannel.get(channel);
    if (entries === undefined) return { items: [], found: false };
    this.#trim(entries, nowMs);
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i]!.item.id === afterId) return { items: entries.slice(i + 1).map((e) => e.item), found: true };
    }
    return { items: [], found: false };
  }

  lastId(channel: string): string | undefined {
    return this.#lastIds.get(channel);
  }

  /** Drops expired entries everywhere; called from a shared timer so idle channels do not linger. */
  sweep(nowMs: number): void {
    for (const [channel, entries] of this.#byChannel) {
      this.#trim(entries, nowMs);
      if (entries.length === 0) this.#byChannel.delete(channel);
    }
  }

  #trim(entries: Entry[], nowMs: number): void {
    let drop = Math.max(0, entries.length - this.#limits.maxItems);
    while (drop < entries.length && nowMs - entries[drop]!.atMs > this.#limits.maxAgeMs) drop++;
    if (drop > 0) entries.splice(0, drop);
  }
}
