import type { Metrics } from '../observe/metrics.js';
import type { HeldClient, HoldCounting, Transport } from './held-client.js';

const TRANSPORTS: readonly Transport[] = ['sse', 'stream', 'response', 'ws'];

/** The push gateway's delivery and drop counters, as held clients and replays report to them. */
export class HoldCounters implements HoldCounting {
  readonly #metrics: Metrics;
  /** Deliveries per transport since the last flush to the counter (a record, not a Map: no hashing per delivery). */
  readonly #deliveryTally: Record<Transport, number> = { sse: 0, stream: 0, response: 0, ws: 0 };
  #tallyFlushQueued = false;

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  countDelivery(client: HeldClient): void {
    // Once per subscriber per message: tallied here and added to the counter once per publish (a bound
    // prom-client child still hashes its labels on every inc).
    this.#deliveryTally[client.transport]++;
    if (!this.#tallyFlushQueued) {
      this.#tallyFlushQueued = true;
      queueMicrotask(() => this.#flushDeliveryTally());
    }
  }

  countDrop(reason: string): void {
    this.#metrics.drops.inc({ reason });
  }

  #flushDeliveryTally(): void {
    this.#tallyFlushQueued = false;
    const tally = this.#deliveryTally;
    for (const transport of TRANSPORTS) {
      if (tally[transport] === 0) continue;
      this.#metrics.deliveries.inc({ transport }, tally[transport]);
      tally[transport] = 0;
    }
  }
}
