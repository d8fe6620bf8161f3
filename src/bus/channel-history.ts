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
  /**
   * The last id per channel, for prev-id sequencing: kept apart from the entries because it must outlive a
   * `maxItems: 0` history, and expired by the same age bound, or every channel ever published to with an id
   * would stay here for good (300,000 channels kept 20.7 MB: issue 15).
   */
  readonly #lastIds = new Map<string, { id: string; atMs: number }>();

  constructor(limits: HistoryLimits) {
    this.#limits = limits;
  }

  append(item: PublishItem, nowMs: number): void {
    if (item.id !== undefined) {
      // Re-inserted so the map stays in publish order and the sweep can stop at the first fresh entry.
      this.#lastIds.delete(item.channel);
      this.#lastIds.set(item.channel, { id: item.id, atMs: nowMs });
    } else this.#lastIds.delete(item.channel);
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
    return { items: entries.map((e) => e.item), found: false };
  }

  lastId(channel: string): string | undefined {
    return this.#lastIds.get(channel)?.id;
  }

  /** Channels with anything kept (entries or a last id): what the sweep must bring back to zero. */
  get channelCount(): number {
    const channels = new Set(this.#byChannel.keys());
    for (const channel of this.#lastIds.keys()) channels.add(channel);
    return channels.size;
  }

  /** Drops expired entries everywhere; called from a shared timer so idle channels do not linger. */
  sweep(nowMs: number): void {
    for (const [channel, entries] of this.#byChannel) {
      this.#trim(entries, nowMs);
      if (entries.length === 0) this.#byChannel.delete(channel);
    }
    for (const [channel, last] of this.#lastIds) {
      if (nowMs - last.atMs <= this.#limits.maxAgeMs) break;
      this.#lastIds.delete(channel);
    }
  }

  #trim(entries: Entry[], nowMs: number): void {
    let drop = Math.max(0, entries.length - this.#limits.maxItems);
    while (drop < entries.length && nowMs - entries[drop]!.atMs > this.#limits.maxAgeMs) drop++;
    if (drop > 0) entries.splice(0, drop);
  }
}
