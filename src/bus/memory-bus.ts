import type { PublishItem } from '../grip/publish-items.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusOptions, BusSink, HistoryResult, PublishResult } from './bus.js';
import { ChannelLog } from './channel-log.js';
import { Interest } from './interest.js';

/**
 * The embedded default: one process is the whole gateway, delivery is a function call. Order,
 * de-duplication and history are the ChannelLog's, which the cluster hub (src/cluster/bus-hub.ts) shares.
 */
export class MemoryBus implements Bus {
  readonly driver = 'memory';
  readonly #log: ChannelLog;
  readonly #interest = new Interest();
  readonly #metrics: Metrics | null;
  readonly #sink: BusSink;
  #closed = false;

  constructor(options: BusOptions, sink: BusSink, metrics: Metrics | null = null) {
    this.#sink = sink;
    this.#metrics = metrics;
    this.#log = new ChannelLog(options, {
      released: (item) => {
        if (this.#interest.wants(item.channel)) void this.#sink.deliver([item]);
      },
      drop: (_item, reason) => this.#metrics?.drops.inc({ reason }),
    });
  }

  get state(): 'up' | 'closed' {
    return this.#closed ? 'closed' : 'up';
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  async publish(items: readonly PublishItem[]): Promise<PublishResult> {
    const { statuses, ready } = this.#log.add(items, Date.now());
    const batch = ready.filter((item) => this.#interest.wants(item.channel));
    const delivered = batch.length === 0 ? 0 : await this.#sink.deliver(batch);
    return { statuses, delivered, remoteNodes: undefined };
  }

  subscribe(channel: string, prefix = false): void {
    this.#interest.add(channel, prefix);
  }

  unsubscribe(channel: string, prefix = false): void {
    this.#interest.remove(channel, prefix);
  }

  history(channel: string, afterId: string): Promise<HistoryResult> {
    return Promise.resolve(this.#log.history(channel, afterId, Date.now()));
  }

  /** The id of the channel's last published item, for prev-id sequencing. */
  lastId(channel: string): string | undefined {
    return this.#log.lastId(channel);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#log.close();
    return Promise.resolve();
  }

}
