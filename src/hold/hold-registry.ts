import type { Bus } from '../bus/bus.js';
import type { HoldfastConfig } from '../config/schema.js';
import type { ChannelSubscription, Instruct } from '../grip/instruct.js';
import { dropHeldClientOnFin } from '../http/client-fin.js';
import type { SendStallWatch } from '../http/send-stall.js';
import { releaseParserForStream } from '../http/stream-takeover.js';
import type { Metrics } from '../observe/metrics.js';
import { TimerWheel } from '../util/timer-wheel.js';
import type { ChannelIndex } from './channel-index.js';
import type { HeldClient, HoldHost } from './held-client.js';
import type { HoldCounters } from './hold-counters.js';
import type { LinkFollower } from './link-follower.js';
import type { Replay } from './replay.js';
import { ResponseHold } from './response-hold.js';
import { StreamHold } from './stream-hold.js';

const TICK_MS = 250;

export interface HoldRegistryDeps {
  config: HoldfastConfig;
  metrics: Metrics;
  /** Shared with the fan-out, which the bus was built with. */
  index: ChannelIndex<HeldClient>;
  bus: Bus;
  counters: HoldCounters;
  links: LinkFollower;
  replay: Replay;
  sendStall: SendStallWatch;
}

/**
 * Every held client on this node: keeps the channel index and the bus subscriptions in step with them, runs
 * their shared timer wheel, and lets them go (with their gone link) when they end or on drain.
 */
export class HoldRegistry implements HoldHost {
  readonly index: ChannelIndex<HeldClient>;
  readonly wheel: TimerWheel<HeldClient>;
  readonly maxQueuedBytes: number;
  readonly sendStall: SendStallWatch;
  readonly counters: HoldCounters;
  readonly links: LinkFollower;
  draining = false;
  readonly #metrics: Metrics;
  readonly #bus: Bus;
  readonly #replay: Replay;
  readonly #wildcardChannels: boolean;
  readonly #held = new Set<HeldClient>();

  constructor(deps: HoldRegistryDeps) {
    this.index = deps.index;
    this.maxQueuedBytes = deps.config.push.maxQueuedBytesPerConnection;
    this.sendStall = deps.sendStall;
    this.counters = deps.counters;
    this.links = deps.links;
    this.#metrics = deps.metrics;
    this.#bus = deps.bus;
    this.#replay = deps.replay;
    this.#wildcardChannels = deps.config.push.wildcardChannels;
    this.wheel = new TimerWheel<HeldClient>(TICK_MS, (client) => client.onDue(Date.now()));
  }

  get heldCount(): number {
    return this.#held.size;
  }

  /** Subscribe, replay what the client missed, arm timers. */
  activate(client: HeldClient, lastEventId: string | undefined): void {
    if (client.res.destroyed) return;
    // Nothing more will be parsed on a held stream's connection: give the parser back (memory per held
    // stream; on HTTP/2, what the compatibility objects keep for a request and response in progress).
    // First, so the parser's own 'end' listener is gone when the FIN watch below is added: the socket
    // then keeps two 'end' listeners in an exact pair, not a grown list of three (~170 bytes).
    if (client instanceof StreamHold) releaseParserForStream(client.res);
    if (client instanceof StreamHold || client instanceof ResponseHold) {
      dropHeldClientOnFin(client.res.socket);
      if (client.res.destroyed) return;
    }
    this.#held.add(client);
    this.#metrics.heldConnections.inc({ transport: client.transport });
    for (const channel of client.channels) this.#subscribeChannel(client, channel.name);
    this.#updateGauges();
    if (client instanceof StreamHold) client.armTimers(Date.now(), false);
    else this.reschedule(client);
    this.#replay.start(client, lastEventId);
  }

  /** GRIP over WebSocket: a held socket's backend subscribes it to channels one control message at a time. */
  subscribe(client: HeldClient, channel: ChannelSubscription): void {
    if (client.closed || client.channels.some((c) => c.name === channel.name)) return;
    client.channels.push(channel);
    this.#subscribeChannel(client, channel.name);
    this.#updateGauges();
  }

  unsubscribe(client: HeldClient, channel: string): void {
    const at = client.channels.findIndex((c) => c.name === channel);
    if (at < 0 || client.closed) return;
    client.channels.splice(at, 1);
    this.#unsubscribeChannel(client, channel);
    this.#updateGauges();
  }

  resubscribe(client: HeldClient, instruct: Instruct): void {
    if (instruct.channels.length === 0) return;
    for (const c of client.channels) this.#unsubscribeChannel(client, c.name);
    for (const c of instruct.channels) this.#subscribeChannel(client, c.name);
    this.#updateGauges();
  }

  reschedule(client: HeldClient): void {
    const due = client.nextDueMs();
    if (due === Infinity || client.closed) this.wheel.cancel(client);
    else this.wheel.schedule(client, due);
  }

  release(client: HeldClient, clientGone: boolean): void {
    if (client.closed) return;
    client.closed = true;
    this.wheel.cancel(client);
    if (this.#held.delete(client)) this.#metrics.heldConnections.dec({ transport: client.transport });
    for (const channel of client.channels) this.#unsubscribeChannel(client, channel.name);
    this.#updateGauges();
    if (clientGone) this.links.sendGone(client);
  }

  /** Shutdown: streams end, long-polls get their timeout answer now, so clients reconnect elsewhere. */
  drain(): void {
    this.draining = true;
    for (const client of [...this.#held]) {
      if (client instanceof StreamHold) client.end();
      else if (client instanceof ResponseHold) {
        const r = client.timeoutResponse;
        client.respond(r.code, r.reason, r.headers, [], r.body);
      }
    }
    this.wheel.stop();
  }

  #subscribeChannel(client: HeldClient, name: string): void {
    const wildcard = this.#wildcardChannels && name.endsWith('.*');
    const key = wildcard ? name.slice(0, -1) : name;
    if (this.index.add(client, key, wildcard)) this.#bus.subscribe(key, wildcard);
  }

  #unsubscribeChannel(client: HeldClient, name: string): void {
    const wildcard = this.#wildcardChannels && name.endsWith('.*');
    const key = wildcard ? name.slice(0, -1) : name;
    if (this.index.remove(client, key, wildcard)) this.#bus.unsubscribe(key, wildcard);
  }

  #updateGauges(): void {
    this.#metrics.subscriptions.set(this.index.subscriptionCount);
    this.#metrics.channels.set(this.index.channelCount);
  }
}
