import type { PublishItem } from '../grip/publish-items.js';
import type { BusOptions, HistoryResult, PublishStatus } from './bus.js';
import { ChannelHistory } from './channel-history.js';
import { Sequencer } from './sequencer.js';

export interface ChannelLogSink {
  /** An item that waited for its predecessor and goes out now without it (the sequencer's timer), recorded. */
  released(item: PublishItem): void;
  /** An item dropped, with the reason for the metrics. */
  drop(item: PublishItem, reason: 'duplicate' | 'sequence'): void;
}

/**
 * What a bus that keeps its state in process memory owns: prev-id order and id de-duplication (Sequencer)
 * and the per-channel history replay reads. The memory bus wraps it for one process; the cluster hub in the
 * primary wraps it for every worker of the machine, so neither copies the other's rules.
 */
export class ChannelLog {
  readonly #history: ChannelHistory;
  readonly #sequencer: Sequencer;
  readonly #sweepTimer: NodeJS.Timeout;
  /** Items the sequencer emits while `add` runs: that call's batch. */
  #batch: PublishItem[] | null = null;

  constructor(options: BusOptions, sink: ChannelLogSink) {
    this.#history = new ChannelHistory(options);
    this.#sequencer = new Sequencer(
      { waitMs: options.sequenceWaitMs, maxPendingPerChannel: options.sequenceMaxPending, dedupWindowMs: options.dedupWindowMs },
      {
        lastId: (channel) => this.#history.lastId(channel),
        emit: (item) => {
          this.#history.append(item, Date.now());
          if (this.#batch !== null) this.#batch.push(item);
          else sink.released(item);
        },
        drop: (item, reason) => sink.drop(item, reason),
      },
    );
    this.#sweepTimer = setInterval(sweep, Math.min(60_000, Math.max(1_000, options.maxAgeMs)), this.#history, this.#sequencer);
    this.#sweepTimer.unref();
  }

  /**
   * Sequences one publish request's items. `ready`: what goes out now, recorded, in order (these items and
   * any that waited on them), for the caller to deliver as one batch.
   */
  add(items: readonly PublishItem[], nowMs: number): { statuses: PublishStatus[]; ready: PublishItem[] } {
    const ready: PublishItem[] = [];
    this.#batch = ready;
    try {
      return { statuses: items.map((item) => this.#sequencer.add(item, nowMs)), ready };
    } finally {
      this.#batch = null;
    }
  }

  history(channel: string, afterId: string, nowMs: number): HistoryResult {
    return this.#history.after(channel, afterId, nowMs);
  }

  lastId(channel: string): string | undefined {
    return this.#history.lastId(channel);
  }

  /** Ids remembered for de-duplication (the sweep's effect, for tests). */
  get dedupIdCount(): number {
    return this.#sequencer.seenCount;
  }

  close(): void {
    this.#sequencer.stop();
    clearInterval(this.#sweepTimer);
  }
}

/** Expired history and dedup ids go on a timer, so a process that went idle does not keep them. */
function sweep(history: ChannelHistory, sequencer: Sequencer): void {
  const nowMs = Date.now();
  history.sweep(nowMs);
  sequencer.sweep(nowMs);
}
