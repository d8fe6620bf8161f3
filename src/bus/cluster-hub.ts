import { AsyncLocalStorage } from 'node:async_hooks';
import type { PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { Bus, BusSink, BusState } from './bus.js';
import { parseWorkerToHub, type HubEngine, type HubToWorker, type IpcPort, type WorkerToHub } from './cluster-messages.js';
import { Interest } from './interest.js';
import { decodeItem, encodeItem } from './item-codec.js';

export interface ClusterHubDeps {
  /**
   * Builds the machine's one bus around the hub as its sink (create-bus.ts, loadEngineBus): a MemoryBus for
   * `bus: memory`, else the Redis or NATS driver. Every worker reaches the engine through it, so a node is
   * one client of Redis or NATS however many workers it runs.
   */
  engine: (sink: BusSink) => Bus & { readonly driver: HubEngine };
  /**
   * How long a publish waits for the workers' delivery counts; a worker that has not answered by then
   * is counted as unreported (and a line is logged). Below the workers' own request timeout, so the
   * publisher still gets its answer.
   */
  deliveryTimeoutMs: number;
  log: Logger;
}

/** One attached worker: its channel, its interest, its deliveries awaiting a count. */
class Member {
  readonly interest = new Interest();
  readonly waiting = new Map<number, (count: number) => void>();
  constructor(
    readonly name: string,
    readonly port: IpcPort,
    readonly onMessage: (message: unknown) => void,
  ) {}
}

/** Workers that had not reported their count when the deliveries of one publish were summed. */
interface PublishTally {
  unreported: number;
}

/**
 * The primary's side of the bus when a node runs several workers: it owns the node's one bus (the engine)
 * and relays between it and the workers over IPC. Each worker tells the hub which channels its clients
 * hold; the hub subscribes in the engine on the machine's first holder and unsubscribes after its last, so
 * the engine sees one subscriber per node and a publish costs one bus message per node holding the
 * channel, however many workers hold it there (issue 11; Socket.IO's cluster adapter keeps its state in
 * the primary the same way). What arrives is handed only to the workers holding its channels, and their
 * delivery counts are summed into the publishing worker's answer. Order, de-duplication and history are the
 * engine's, so a worker that goes away takes only its interest: its clients replay from whichever worker
 * they reconnect to.
 */
export class ClusterHub implements BusSink {
  readonly #deps: ClusterHubDeps;
  readonly #engine: Bus & { readonly driver: HubEngine };
  readonly #members = new Map<string, Member>();
  /** Every member's interest counted once per member: the engine subscription follows its first and last. */
  readonly #machine = new Interest();
  /**
   * The publish whose deliveries are being summed. A driver delivers a node's own items from inside its
   * publish (the memory bus at once, Redis and NATS after their write), so the publish's async context
   * is where a worker missing its report is tallied, without widening every driver's sink contract.
   */
  readonly #tally = new AsyncLocalStorage<PublishTally>();
  #nextDelivery = 1;

  constructor(deps: ClusterHubDeps) {
    this.#deps = deps;
    // The hub is the engine's sink: its fields are initialised by now, so the engine may deliver at once.
    this.#engine = deps.engine(this);
  }

  /** Which engine the machine's bus is. */
  get engineDriver(): HubEngine {
    return this.#engine.driver;
  }

  /** Resolves once the engine is first usable; rejects as the engine's start does (workers are not forked then). */
  start(): Promise<void> {
    return this.#engine.start();
  }

  /** Serves a worker's bus messages until its channel closes (or `detach`). */
  attach(name: string, port: IpcPort): void {
    const member = new Member(name, port, (message) => this.#receive(member, message));
    this.#members.set(name, member);
    port.onMessage(member.onMessage);
    port.onDisconnect(() => this.detach(name));
  }

  /** Drops a worker's interest (unsubscribing the engine where it was the last holder) and counts its outstanding deliveries as 0. */
  detach(name: string): void {
    const member = this.#members.get(name);
    if (member === undefined) return;
    this.#members.delete(name);
    member.port.offMessage(member.onMessage);
    for (const { channel, prefix } of [...member.interest.entries()]) this.#release(channel, prefix);
    for (const settle of member.waiting.values()) settle(0);
    member.waiting.clear();
  }

  async close(): Promise<void> {
    for (const name of [...this.#members.keys()]) this.detach(name);
    await this.#engine.close();
  }

  /** BusSink: the engine's items for channels this machine holds, handed to the workers holding them. */
  deliver(items: readonly PublishItem[]): Promise<number> {
    const tally = this.#tally.getStore();
    return this.#fanOut(items).then(({ delivered, unreported }) => {
      if (tally !== undefined) tally.unreported += unreported;
      return delivered;
    });
  }

  /** BusSink: history lost items of `channel` while the engine was unreachable; every worker holding it says so. */
  gap(channel: string): void {
    for (const member of this.#members.values()) {
      if (member.interest.wants(channel)) member.port.send({ hf: 'bus.gap', channel } satisfies HubToWorker);
    }
  }

  /**
   * BusSink: the engine went down or came back. The workers are told, so each one's readiness and its
   * refusal of publishes follow the engine (they would otherwise learn it only from a failed publish).
   */
  stateChanged(state: BusState): void {
    if (state === 'closed') return;
    for (const member of this.#members.values()) member.port.send({ hf: 'bus.state', state } satisfies HubToWorker);
  }

  #receive(member: Member, raw: unknown): void {
    const message = parseWorkerToHub(raw);
    if (message === null) {
      if (typeof raw === 'object' && raw !== null && String((raw as { hf?: unknown }).hf).startsWith('bus.')) {
        this.#deps.log.warn({ worker: member.name, message: raw }, 'malformed bus message from a worker, ignored');
      }
      return;
    }
    this.#handle(member, message).catch((err: unknown) => {
      if (!('id' in message) || message.hf === 'bus.delivered') {
        this.#deps.log.error({ err, worker: member.name }, 'bus request from a worker failed');
        return;
      }
      // The engine's refusal (unreachable, timed out) goes back as the worker's answer: a 503 to the publisher.
      member.port.send({ hf: 'bus.failed', id: message.id, reason: (err as Error).message } satisfies HubToWorker);
    });
  }

  async #handle(member: Member, message: WorkerToHub): Promise<void> {
    switch (message.hf) {
      case 'bus.hello': {
        const state = this.#engine.state;
        member.port.send({ hf: 'bus.welcome', engine: this.#engine.driver, state: state === 'closed' ? 'connecting' : state } satisfies HubToWorker);
        return;
      }
      case 'bus.subscribe':
        if (member.interest.add(message.channel, message.prefix) && this.#machine.add(message.channel, message.prefix)) {
          this.#engine.subscribe(message.channel, message.prefix);
        }
        return;
      case 'bus.unsubscribe':
        if (member.interest.remove(message.channel, message.prefix)) this.#release(message.channel, message.prefix);
        return;
      case 'bus.delivered': {
        const settle = member.waiting.get(message.id);
        member.waiting.delete(message.id);
        settle?.(message.count);
        return;
      }
      case 'bus.history': {
        const result = await this.#engine.history(message.channel, message.afterId);
        member.port.send({ hf: 'bus.history-result', id: message.id, items: result.items.map(encodeItem), found: result.found } satisfies HubToWorker);
        return;
      }
      case 'bus.publish': {
        // A bad item fails the whole request before anything reaches the engine: nothing half-published.
        const items = message.items.map(decodeItem);
        const tally: PublishTally = { unreported: 0 };
        const result = await this.#tally.run(tally, () => this.#engine.publish(items));
        member.port.send({
          hf: 'bus.published',
          id: message.id,
          statuses: result.statuses,
          delivered: result.delivered,
          unreported: tally.unreported,
          remoteNodes: result.remoteNodes ?? null,
        } satisfies HubToWorker);
        return;
      }
    }
  }

  /** One member no longer holds the subscription: the engine drops it after the machine's last holder. */
  #release(channel: string, prefix: boolean): void {
    if (this.#machine.remove(channel, prefix)) this.#engine.unsubscribe(channel, prefix);
  }

  /**
   * Sends each worker the items of the batch it holds, in order, and sums what they delivered. A worker
   * that has not reported within the delivery timeout (a large fan-out on a busy machine) is counted as
   * unreported, never as 0 deliveries: the items are published and reach its clients all the same, so the
   * publish is answered as published with the count known and how many workers it lacks.
   */
  #fanOut(items: readonly PublishItem[]): Promise<{ delivered: number; unreported: number }> {
    const encoded = new Map<PublishItem, string>();
    const counts: Promise<number | null>[] = [];
    for (const member of this.#members.values()) {
      const mine = items.filter((item) => member.interest.wants(item.channel));
      if (mine.length === 0) continue;
      const text = mine.map((item) => {
        let e = encoded.get(item);
        if (e === undefined) encoded.set(item, (e = encodeItem(item)));
        return e;
      });
      counts.push(this.#deliver(member, text));
    }
    return Promise.all(counts).then((reports) => ({
      delivered: reports.reduce<number>((sum, n) => sum + (n ?? 0), 0),
      unreported: reports.filter((n) => n === null).length,
    }));
  }

  /** Resolves to the worker's delivery count, or null when it did not report in time. */
  #deliver(member: Member, items: string[]): Promise<number | null> {
    const id = this.#nextDelivery++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        member.waiting.delete(id);
        this.#deps.log.warn(
          { worker: member.name, timeoutMs: this.#deps.deliveryTimeoutMs },
          'a worker did not report its deliveries in time; the publish is answered without its count',
        );
        resolve(null);
      }, this.#deps.deliveryTimeoutMs);
      member.waiting.set(id, (count) => {
        clearTimeout(timer);
        resolve(count);
      });
      if (member.port.send({ hf: 'bus.deliver', id, items } satisfies HubToWorker)) return;
      member.waiting.get(id)?.(0);
      member.waiting.delete(id);
    });
  }
}
