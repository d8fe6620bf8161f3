import type { PublishItem } from '../grip/publish-items.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusOptions, BusSink, HistoryResult, PublishResult, PublishStatus } from './bus.js';
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
  #sink: BusSink = { deliver: () => Promise.resolve(0), gap: () => undefined };
  /** Items the sequencer emits while a publish call runs: delivered as that call's batch. */
  #batch: PublishItem[] | null = null;
  #closed = false;

  constructor(options: BusOptions, metrics: Metrics | null = null) {
    this.#metrics = metrics;
    this.#log = new ChannelLog(options, {
      emit: (item) => this.#emit(item),
      drop: (_item, reason) => this.#metrics?.drops.inc({ reason }),
    });
  }

  get state(): 'up' | 'closed' {
    return this.#closed ? 'closed' : 'up';
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  setSink(sink: BusSink): void {
    this.#sink = sink;
  }

  async publish(items: readonly PublishItem[]): Promise<PublishResult> {
    const batch: PublishItem[] = [];
    this.#batch = batch;
    let statuses: PublishStatus[];
    try {
      statuses = this.#log.add(items, Date.now());
    } finally {
      this.#batch = null;
    }
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

  #emit(item: PublishItem): void {
    if (!this.#interest.wants(item.channel)) return;
    // Inside a publish call the item joins that call's batch; a waiting item released by the sequencer's
    // timer goes out on its own.
    if (this.#batch !== null) this.#batch.push(item);
    else void this.#sink.deliver([item]);
  }
}
