import type { PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { BusOptions } from './bus.js';
import { ChannelLog } from './channel-log.js';
import { parseWorkerToHub, type IpcPort, type WorkerToHub } from './cluster-messages.js';
import { Interest } from './interest.js';
import { decodeItem, encodeItem } from './item-codec.js';

export interface ClusterHubDeps {
  options: BusOptions;
  /**
   * How long a publish waits for the workers' delivery counts; a worker that has not answered by then
   * counts 0 (and a line is logged). Below the workers' own request timeout, so the publisher still gets
   * its answer.
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

/**
 * The primary's side of `bus: memory` with several workers: one ChannelLog (prev-id order, id
 * de-duplication, history) for the whole machine and one Interest per worker. A publish from any worker is
 * sequenced here, recorded, and forwarded only to the workers holding its channels; their delivery counts
 * are summed into the publishing worker's answer. A worker that goes away takes its interest with it; the
 * history stays, so its clients replay it from whichever worker they reconnect to.
 */
export class ClusterHub {
  readonly #deps: ClusterHubDeps;
  readonly #log: ChannelLog;
  readonly #members = new Map<string, Member>();
  #nextDelivery = 1;

  constructor(deps: ClusterHubDeps) {
    this.#deps = deps;
    this.#log = new ChannelLog(deps.options, {
      // Nobody waits for the count of an item the sequencer's timer released.
      released: (item) => void this.#fanOut([item]),
      drop: () => undefined, // counted by the publishing worker from the statuses it gets back
    });
  }

  /** Serves a worker's bus messages until its channel closes (or `detach`). */
  attach(name: string, port: IpcPort): void {
    const member = new Member(name, port, (message) => this.#receive(member, message));
    this.#members.set(name, member);
    port.onMessage(member.onMessage);
    port.onDisconnect(() => this.detach(name));
  }

  /** Drops a worker's interest and counts its outstanding deliveries as 0. */
  detach(name: string): void {
    const member = this.#members.get(name);
    if (member === undefined) return;
    this.#members.delete(name);
    member.port.offMessage(member.onMessage);
    for (const settle of member.waiting.values()) settle(0);
    member.waiting.clear();
  }

  close(): void {
    for (const name of [...this.#members.keys()]) this.detach(name);
    this.#log.close();
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
      this.#deps.log.error({ err, worker: member.name }, 'bus request from a worker failed');
      if ('id' in message) member.port.send({ hf: 'bus.failed', id: message.id, reason: (err as Error).message });
    });
  }

  async #handle(member: Member, message: WorkerToHub): Promise<void> {
    switch (message.hf) {
      case 'bus.hello':
        member.port.send({ hf: 'bus.welcome' });
        return;
      case 'bus.subscribe':
        member.interest.add(message.channel, message.prefix);
        return;
      case 'bus.unsubscribe':
        member.interest.remove(message.channel, message.prefix);
        return;
      case 'bus.delivered': {
        const settle = member.waiting.get(message.id);
        member.waiting.delete(message.id);
        settle?.(message.count);
        return;
      }
      case 'bus.history': {
        const result = this.#log.history(message.channel, message.afterId, Date.now());
        member.port.send({ hf: 'bus.history-result', id: message.id, items: result.items.map(encodeItem), found: result.found });
        return;
      }
      case 'bus.publish': {
        // A bad item fails the whole request before anything is sequenced: nothing half-published.
        const { statuses, ready } = this.#log.add(message.items.map(decodeItem), Date.now());
        const { delivered, unreported } = ready.length === 0 ? { delivered: 0, unreported: 0 } : await this.#fanOut(ready);
        member.port.send({ hf: 'bus.published', id: message.id, statuses, delivered, unreported });
        return;
      }
    }
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
      if (member.port.send({ hf: 'bus.deliver', id, items })) return;
      member.waiting.get(id)?.(0);
      member.waiting.delete(id);
    });
  }
}
