import { BusUnavailableError } from '../errors.js';
import type { PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusSink, BusState, HistoryResult, PublishResult } from './bus.js';
import { parseHubToWorker, type HubEngine, type HubToWorker, type IpcPort } from './cluster-messages.js';
import { Interest } from './interest.js';
import { decodeItem, encodeItem } from './item-codec.js';

export interface ClusterBusDeps {
  /** The worker's IPC channel to the primary (`process` in a cluster worker). */
  port: IpcPort;
  /** How long start-up waits for the primary's hub to answer. */
  connectTimeoutMs: number;
  /** How long a publish or a history read may wait for the primary (it includes the other workers' deliveries). */
  requestTimeoutMs: number;
  /** Where items for this worker's channels go (the hold side's fan-out). */
  sink: BusSink;
  metrics: Metrics;
  log: Logger;
}

interface Pending {
  resolve(message: HubToWorker): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * The bus of a cluster worker: the node's one bus lives in the primary (cluster-hub.ts): the memory bus, or
 * the node's one Redis or NATS client. This side forwards publishes and history reads, tells the hub which
 * channels this worker's clients hold (first holder and last holder only), follows the engine's state (a
 * worker is not ready while the engine reconnects), and hands the hub's deliveries and gaps to the hold
 * manager, answering how many clients they reached so a publish's `delivered` counts every worker.
 */
export class ClusterBus implements Bus {
  readonly driver = 'cluster';
  readonly #deps: ClusterBusDeps;
  readonly #interest = new Interest();
  readonly #pending = new Map<number, Pending>();
  readonly #sink: BusSink;
  #state: BusState = 'connecting';
  #nextId = 1;
  #welcomed: (() => void) | null = null;
  /** Known from the hub's welcome. With `memory` the IPC hops are this node's bus messages; else the primary counts the engine's. */
  #engine: HubEngine | null = null;
  readonly #onMessage = (message: unknown) => this.#receive(message);

  constructor(deps: ClusterBusDeps) {
    this.#deps = deps;
    this.#sink = deps.sink;
    deps.port.onMessage(this.#onMessage);
    deps.port.onDisconnect(() => this.#lost('the primary process is gone'));
    deps.metrics.busUp.set({ driver: 'cluster' }, 0);
  }

  get state(): BusState {
    return this.#state;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#welcomed = null;
        reject(new BusUnavailableError('cluster', `the primary's hub did not answer within ${this.#deps.connectTimeoutMs} ms`));
      }, this.#deps.connectTimeoutMs);
      this.#welcomed = () => {
        clearTimeout(timer);
        resolve();
      };
      if (!this.#deps.port.send({ hf: 'bus.hello' })) {
        clearTimeout(timer);
        reject(new BusUnavailableError('cluster', 'no IPC channel to the primary process'));
      }
    });
  }


  async publish(items: readonly PublishItem[]): Promise<PublishResult> {
    const answer = await this.#request({ hf: 'bus.publish', items: items.map(encodeItem) }, 'bus.published');
    if (this.#engine === 'memory') this.#deps.metrics.busMessages.inc({ direction: 'out' }, items.length);
    for (const status of answer.statuses) {
      if (status === 'duplicate') this.#deps.metrics.drops.inc({ reason: 'duplicate' });
      else if (status === 'dropped') this.#deps.metrics.drops.inc({ reason: 'sequence' });
    }
    // Every worker of this machine is this node: `delivered` is their sum; other nodes are the engine's to count.
    return {
      statuses: answer.statuses,
      delivered: answer.delivered,
      remoteNodes: answer.remoteNodes ?? undefined,
      unreportedWorkers: answer.unreported,
    };
  }

  subscribe(channel: string, prefix = false): void {
    if (!this.#interest.add(channel, prefix)) return;
    this.#deps.metrics.busSubscriptions.set(this.#interest.size);
    this.#deps.port.send({ hf: 'bus.subscribe', channel, prefix });
  }

  unsubscribe(channel: string, prefix = false): void {
    if (!this.#interest.remove(channel, prefix)) return;
    this.#deps.metrics.busSubscriptions.set(this.#interest.size);
    this.#deps.port.send({ hf: 'bus.unsubscribe', channel, prefix });
  }

  async history(channel: string, afterId: string): Promise<HistoryResult> {
    const answer = await this.#request({ hf: 'bus.history', channel, afterId }, 'bus.history-result');
    return { items: answer.items.map(decodeItem), found: answer.found };
  }

  close(): Promise<void> {
    this.#deps.port.offMessage(this.#onMessage);
    this.#lost('the bus was closed');
    this.#state = 'closed';
    return Promise.resolve();
  }

  #request<K extends HubToWorker['hf']>(
    message: { hf: 'bus.publish'; items: string[] } | { hf: 'bus.history'; channel: string; afterId: string },
    answer: K,
  ): Promise<Extract<HubToWorker, { hf: K }>> {
    if (this.#state !== 'up') return Promise.reject(new BusUnavailableError('cluster', this.#state === 'connecting' ? `the ${this.#engine ?? 'primary'} bus is reconnecting` : 'it is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new BusUnavailableError('cluster', `the primary did not answer within ${this.#deps.requestTimeoutMs} ms`));
      }, this.#deps.requestTimeoutMs);
      this.#pending.set(id, {
        resolve: (m) => {
          if (m.hf === answer) resolve(m as Extract<HubToWorker, { hf: K }>);
          else reject(new BusUnavailableError('cluster', m.hf === 'bus.failed' ? m.reason : `unexpected answer ${m.hf}`));
        },
        reject,
        timer,
      });
      if (!this.#deps.port.send({ ...message, id })) this.#settle(id, null, new BusUnavailableError('cluster', 'the IPC channel is closed'));
    });
  }

  #settle(id: number, message: HubToWorker | null, err?: Error): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (message !== null) pending.resolve(message);
    else pending.reject(err ?? new BusUnavailableError('cluster', 'no answer'));
  }

  #receive(raw: unknown): void {
    const message = parseHubToWorker(raw);
    if (message === null) {
      // The same channel carries the cluster control's and prom-client's messages; only a malformed bus
      // message is worth a line.
      if (typeof raw === 'object' && raw !== null && String((raw as { hf?: unknown }).hf).startsWith('bus.')) {
        this.#deps.log.warn({ message: raw }, 'malformed bus message from the primary, ignored');
      }
      return;
    }
    switch (message.hf) {
      case 'bus.welcome':
        this.#engine = message.engine;
        this.#follow(message.state);
        this.#welcomed?.();
        this.#welcomed = null;
        return;
      case 'bus.state':
        this.#follow(message.state);
        return;
      case 'bus.gap':
        if (this.#interest.wants(message.channel)) this.#sink.gap(message.channel);
        return;
      case 'bus.deliver':
        this.#deliver(message.id, message.items);
        return;
      default:
        this.#settle(message.id, message);
    }
  }

  #deliver(id: number, encoded: string[]): void {
    let items: PublishItem[];
    try {
      items = encoded.map(decodeItem);
    } catch (err) {
      this.#deps.log.warn({ err: (err as Error).message }, 'undecodable items from the primary, dropped');
      this.#deps.port.send({ hf: 'bus.delivered', id, count: 0 });
      return;
    }
    if (this.#engine === 'memory') this.#deps.metrics.busMessages.inc({ direction: 'in' }, items.length);
    this.#sink.deliver(items).then(
      (count) => this.#deps.port.send({ hf: 'bus.delivered', id, count }),
      (err: unknown) => {
        this.#deps.log.error({ err }, 'delivering items from the primary failed');
        this.#deps.port.send({ hf: 'bus.delivered', id, count: 0 });
      },
    );
  }

  /** The engine's state, as the hub reports it; nothing changes once this bus is closed. */
  #follow(state: 'up' | 'connecting'): void {
    if (this.#state === 'closed' || this.#engine === null) return;
    this.#state = state;
    this.#deps.metrics.busUp.set({ driver: 'cluster' }, state === 'up' ? 1 : 0);
  }

  #lost(reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#deps.metrics.busUp.set({ driver: 'cluster' }, 0);
    for (const id of [...this.#pending.keys()]) this.#settle(id, null, new BusUnavailableError('cluster', reason));
  }
}
