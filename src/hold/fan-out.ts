import type { BusSink } from '../bus/bus.js';
import type { PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { ChannelIndex } from './channel-index.js';
import type { GapEvent } from './gap-event.js';
import type { HeldClient } from './held-client.js';
import { SlicedDeliveries } from './sliced-deliveries.js';
import { StreamHold } from './stream-hold.js';

/**
 * The bus sink: published items to every local holder of their channels, one write per client. Who
 * receives is decided at once (a snapshot of the channels' holders, see ChannelIndex.snapshot); the writes
 * go out in slices of `push.deliverSliceSize` clients per turn of the event loop, so a broadcast to 20k
 * sockets no longer keeps the control listener, timers and other clients waiting for its whole length.
 * Deliveries run one after another in call order, so no client sees a later publish before an earlier one.
 */
export class HoldFanOut implements BusSink {
  readonly #index: ChannelIndex<HeldClient>;
  readonly #gapEvent: GapEvent;
  readonly #deliveries: SlicedDeliveries<HeldClient>;

  constructor(index: ChannelIndex<HeldClient>, gapEvent: GapEvent, deliverSliceSize: number, log: Logger) {
    this.#index = index;
    this.#gapEvent = gapEvent;
    this.#deliveries = new SlicedDeliveries(deliverSliceSize, log);
  }

  deliver(items: readonly PublishItem[]): Promise<number> {
    const clients = this.#index.snapshot(items.map((item) => item.channel));
    // One item: corking would only add work. Several: one write per client for all of them.
    const visit = items.length === 1 ? receiveOne.bind(null, items[0]!) : receiveBatch.bind(null, items);
    return this.#deliveries.run(clients, visit);
  }

  /** The bus lost items of `channel` it cannot replay: its SSE clients get the gap event (in turn with deliveries). */
  gap(channel: string): void {
    void this.#deliveries.run(this.#index.snapshot([channel]), (client) => {
      if (client instanceof StreamHold && client.transport === 'sse' && !client.closed) this.#gapEvent.send(client, channel, '');
      return 0;
    });
  }
}

function receiveOne(item: PublishItem, client: HeldClient): number {
  return client.receive(item);
}

/** The items of one publish request to one client, corked so they leave in one write. */
function receiveBatch(items: readonly PublishItem[], client: HeldClient): number {
  const socket = client.corkTarget();
  const cork = socket !== null && !socket.destroyed && !client.corked;
  if (cork) {
    client.corked = true;
    socket.cork();
  }
  let delivered = 0;
  try {
    for (const item of items) delivered += client.receive(item);
  } finally {
    if (cork) {
      client.corked = false;
      socket.uncork();
      // Uncorking writes what the socket takes at once; what is left is this client's real queue.
      client.checkSlowConsumer();
    }
  }
  return delivered;
}
