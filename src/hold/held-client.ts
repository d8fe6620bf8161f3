import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { resetConnection, type SendStallSubject, type SendStallWatch, type SendTarget } from '../http/send-stall.js';
import type { ChannelSubscription, Instruct } from '../grip/instruct.js';
import type { PublishItem } from '../grip/publish-items.js';
import { passesFilters, type FilterSubject } from './filters.js';
import type { WheelEntry } from '../util/timer-wheel.js';

export type Transport = 'sse' | 'stream' | 'response' | 'ws';

/** The push gateway's counters, as a held client reports to them (HoldCounters). */
export interface HoldCounting {
  countDelivery(client: HeldClient): void;
  countDrop(reason: string): void;
}

/** Next/gone links and long-poll hints, as a held client asks for them (LinkFollower). */
export interface LinkFollowing {
  /** Fetch the next link (recovery or idle), with `Grip-Last` for the client's channels. */
  fetchNext(client: HeldClient, reason: 'idle' | 'recover' | 'hint'): void;
  /** Long-poll hint: ask the backend again for the original request. */
  refetch(client: HeldClient): void;
}

/** What a held client needs from the registry that holds it (HoldRegistry). */
export interface HoldHost {
  readonly maxQueuedBytes: number;
  readonly draining: boolean;
  /** Cuts held clients whose sent data stops draining (the kernel part of a slow consumer). */
  readonly sendStall: SendStallWatch;
  readonly counters: HoldCounting;
  readonly links: LinkFollowing;
  reschedule(client: HeldClient): void;
  /** The client is gone or finished: unsubscribe, stop its timers, send its gone link if it has one. */
  release(client: HeldClient, clientGone: boolean): void;
  /** A link's answer named new channels: the client's subscriptions become those. */
  resubscribe(client: HeldClient, instruct: Instruct): void;
}

/** Where a held client came from, to resolve and sign its links. */
export interface HoldOrigin {
  /** The filtered header list sent upstream for the original request. */
  upstreamHeaders: string[];
  /** The client's target: what routes match on. */
  target: string;
  /** The target the backend saw (after a route's prefix strip/replace): what relative links resolve against. */
  upstreamTarget: string;
  method: string;
}

/** What a hold starts from: the proxied request whose answer was taken over (proxy/response-takeover.ts). */
export interface HoldRequest extends HoldOrigin {
  readonly res: ServerResponse;
  /** Last-Event-ID from the header or `lastEventId` query parameter, for SSE replay. */
  readonly lastEventId: string | undefined;
}

const kHeld = Symbol('holdfast.held');

/**
 * What a hold writes to, as far as the base class is concerned: an HTTP response for the HTTP transports,
 * the TCP connection under a terminated WebSocket for GRIP over WebSocket.
 */
export interface HeldOutput {
  on(event: 'close', listener: () => void): unknown;
  readonly writableLength: number;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  destroy(): unknown;
}

/**
 * A client the push gateway holds: its subscriptions, metadata, links and one deadline on the shared
 * timer wheel. Transports (stream/SSE, long-poll, WebSocket) decide what an item looks like on the wire.
 */
export abstract class HeldClient<O extends HeldOutput = HeldOutput> implements WheelEntry, FilterSubject, SendStallSubject {
  wheelDueMs = 0;
  wheelSlot: Set<WheelEntry> | null = null;
  abstract readonly transport: Transport;
  readonly host: HoldHost;
  readonly res: O;
  readonly origin: HoldOrigin;
  channels: ChannelSubscription[];
  meta: Record<string, string>;
  nextLink: Instruct['nextLink'];
  goneLink: string | null;
  nextLinkDueMs = Infinity;
  closed = false;
  /** Items that arrive while a replay is in progress wait here, so order holds and nothing doubles. */
  replayBuffer: PublishItem[] | null = null;
  /** Set while a next-link fetch is in flight. */
  fetching = false;
  /** Corked for a batch of items from one publish request (HoldFanOut.deliver). */
  corked = false;

  constructor(host: HoldHost, res: O, origin: HoldOrigin, instruct: Instruct) {
    this.host = host;
    this.res = res;
    this.origin = origin;
    // An exact-size copy: the instruction's list grew by push (capacity 17 for one channel), and a held
    // client keeps its list for hours (~140 bytes of a held connection).
    this.channels = instruct.channels.slice();
    this.meta = instruct.meta;
    this.nextLink = instruct.nextLink;
    this.goneLink = instruct.goneLink;
    (res as O & { [kHeld]?: HeldClient })[kHeld] = this;
    // `on`, not `once`: close comes once, onResponseClose is idempotent, and once() would keep a wrapper per client.
    res.on('close', heldResponseOnClose);
  }

  isSubscribedTo(channel: string): boolean {
    return this.channels.some((c) => c.name === channel);
  }

  subscriptionFor(channel: string): ChannelSubscription | undefined {
    for (const c of this.channels) {
      if (c.name === channel) return c;
      if (c.name.endsWith('.*') && channel.startsWith(c.name.slice(0, -1))) return c;
    }
    return undefined;
  }

  /** An item on one of this client's channels. Returns 1 when it was written. */
  receive(item: PublishItem): number {
    if (this.closed) return 0;
    const sub = this.subscriptionFor(item.channel);
    if (sub === undefined) return 0;
    if (sub.filters.length > 0 && !passesFilters(sub.filters, item, this)) {
      this.host.counters.countDrop('filter');
      return 0;
    }
    if (this.replayBuffer !== null) {
      this.replayBuffer.push(item);
      return 0;
    }
    const delivered = this.deliver(item);
    if (delivered) {
      if (item.id !== undefined && sub.name === item.channel) sub.prevId = item.id;
      this.host.counters.countDelivery(this);
    }
    return delivered ? 1 : 0;
  }

  /** Write the item in this transport's format; false when the item has no format for it. */
  protected abstract deliver(item: PublishItem): boolean;

  /** The wheel says a deadline passed. */
  abstract onDue(nowMs: number): void;

  /** The earliest of this client's deadlines, Infinity for none. */
  abstract nextDueMs(): number;

  /** Content this transport would write for the item; control actions (close, hint) are not content. */
  protected abstract carriesContent(item: PublishItem): boolean;

  /** Deliver an item from history (replay), bypassing the replay buffer. */
  deliverReplayed(item: PublishItem): boolean {
    if (this.closed) return false;
    // History keeps control actions too (`close`, `hint`), but they were meant for the clients connected
    // when they were published: replaying a `close` would end the reconnecting client's new stream at once.
    if (!this.carriesContent(item)) return false;
    const sub = this.subscriptionFor(item.channel);
    if (sub !== undefined && sub.filters.length > 0 && !passesFilters(sub.filters, item, this)) return false;
    const delivered = this.deliver(item);
    if (delivered && item.id !== undefined && sub !== undefined) sub.prevId = item.id;
    return delivered;
  }

  /**
   * Drop a client whose socket cannot keep up, before its queue grows without bound; a queue under the bound
   * that stops draining is cut at the send deadline (SendStallWatch), since the kernel holds far more than
   * the bound for a client that never reads.
   */
  checkSlowConsumer(): boolean {
    if (this.queuedBytes() > this.host.maxQueuedBytes) {
      this.host.counters.countDrop('slow_consumer');
      resetConnection(this.sendTarget(), this.res);
      return true;
    }
    this.host.sendStall.noteWrite(this.sendTarget(), this);
    return false;
  }

  /** Its sent data did not drain for timeouts.sendStallMs: a slow consumer too, counted apart. */
  onSendStall(): string {
    this.host.counters.countDrop('drain_timeout');
    resetConnection(this.sendTarget(), this.res);
    return this.transport;
  }

  /** Where this client's queue is measured and cut: its connection, or its HTTP/2 stream. */
  protected sendTarget(): SendTarget | null {
    return this.corkTarget();
  }

  /** Bytes written to this client that its connection has not taken yet. */
  protected queuedBytes(): number {
    return this.res.writableLength;
  }

  /** The socket a publish batch corks so its items leave in one write; null when there is none yet. */
  abstract corkTarget(): Socket | null;

  /** The client disconnected (or we destroyed it). */
  onResponseClose(): void {
    if (this.closed) return;
    this.host.release(this, !this.res.writableFinished);
  }
}

function heldResponseOnClose(this: HeldOutput & { [kHeld]?: HeldClient }): void {
  this[kHeld]?.onResponseClose();
}
