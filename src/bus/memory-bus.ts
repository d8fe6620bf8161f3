import type { PublishItem } from '../grip/publish-items.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusOptions, BusSink, HistoryResult, PublishResult, PublishStatus } from './bus.js';
import { ChannelHistory } from './channel-history.js';
import { Interest } from './interest.js';
import { Sequencer } from './sequencer.js';

/**
 * The embedded default: one process is the whole gateway, delivery is a function call. It is also the core
 * of the cluster driver's primary, where `wanted` and the sink are the workers' instead of this process's.
 */
export class MemoryBus implements Bus {
  readonly driver = 'memory';
  readonly #history: ChannelHistory;
  readonly #sequencer: Sequencer;
  readonly #interest = new Interest();
  readonly #metrics: Metrics | null;
  #sink: BusSink = { deliver: () => Promise.resolve(0), gap: () => undefined };
  /** Items the sequencer emits while a publish call runs: delivered as that call's batch. */
  #batch: PublishItem[] | null = null;
  #closed = false;
  readonly #sweepTimer: NodeJS.Timeout;

  constructor(options: BusOptions, metrics: Metrics | null = null) {
    this.#metrics = metrics;
    this.#history = new ChannelHistory(options);
    this.#sequencer = new Sequencer(
      { waitMs: options.sequenceWaitMs, maxPendingPerChannel: options.sequenceMaxPending, dedupWindowMs: options.dedupWindowMs },
      {
        lastId: (channel) => this.#history.lastId(channel),
        emit: (item) => this.#emit(item),
        drop: (_item, reason) => this.#metrics?.drops.inc({ reason }),
      },
    );
    this.#sweepTimer = setInterval(sweepHistory, Math.min(60_000, Math.max(1_000, options.maxAgeMs)), this.#history);
    this.#sweepTimer.unref();
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
    const now = Date.now();
    const batch: PublishItem[] = [];
    this.#batch = batch;
    let statuses: PublishStatus[];
    try {
      statuses = items.map((item) => this.#sequencer.add(item, now));
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
    return Promise.resolve(this.#history.after(channel, afterId, Date.now()));
  }

  /** The id of the channel's last published item, for prev-id sequencing. */
  lastId(channel: string): string | undefined {
    return this.#history.lastId(channel);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#sequencer.stop();
    clearInterval(this.#sweepTimer);
    return Promise.resolve();
  }

  #emit(item: PublishItem): void {
    this.#history.append(item, Date.now());
    if (!this.#interest.wants(item.channel)) return;
    // Inside a publish call the item joins that call's batch; a waiting item released by the sequencer's
    // timer goes out on its own.
    if (this.#batch !== null) this.#batch.push(item);
    else void this.#sink.deliver([item]);
  }
}

function sweepHistory(history: ChannelHistory): void {
  history.sweep(Date.now());
}
