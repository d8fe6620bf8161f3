import type { PublishItem } from '../grip/publish-items.js';
import { type Bus, type BusItemHandler, type HistoryLimits, type HistoryResult } from './bus.js';
import { ChannelHistory } from './channel-history.js';

/** The embedded default: one process is the whole gateway, delivery is a function call. */
export class MemoryBus implements Bus {
  readonly driver = 'memory';
  readonly #history: ChannelHistory;
  readonly #channels = new Map<string, number>();
  readonly #prefixes = new Map<string, number>();
  #handler: BusItemHandler = () => 0;
  readonly #sweepTimer: NodeJS.Timeout;

  constructor(limits: HistoryLimits) {
    this.#history = new ChannelHistory(limits);
    this.#sweepTimer = setInterval(sweepHistory, Math.min(60_000, Math.max(1_000, limits.maxAgeMs)), this.#history);
    this.#sweepTimer.unref();
  }

  setHandler(handler: BusItemHandler): void {
    this.#handler = handler;
  }

  publish(item: PublishItem): Promise<number> {
    this.#history.append(item, Date.now());
    return Promise.resolve(this.#wanted(item.channel) ? this.#handler(item) : 0);
  }

  subscribe(channel: string, prefix = false): void {
    const map = prefix ? this.#prefixes : this.#channels;
    map.set(channel, (map.get(channel) ?? 0) + 1);
  }

  unsubscribe(channel: string, prefix = false): void {
    const map = prefix ? this.#prefixes : this.#channels;
    const n = (map.get(channel) ?? 0) - 1;
    if (n <= 0) map.delete(channel);
    else map.set(channel, n);
  }

  history(channel: string, afterId: string): Promise<HistoryResult> {
    return Promise.resolve(this.#history.after(channel, afterId, Date.now()));
  }

  lastId(channel: string): string | undefined {
    return this.#history.lastId(channel);
  }

  close(): Promise<void> {
    clearInterval(this.#sweepTimer);
    return Promise.resolve();
  }

  #wanted(channel: string): boolean {
    if (this.#channels.has(channel)) return true;
    for (const prefix of this.#prefixes.keys()) if (channel.startsWith(prefix)) return true;
    return false;
  }
}

function sweepHistory(history: ChannelHistory): void {
  history.sweep(Date.now());
}
