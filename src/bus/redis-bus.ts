import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { BusUnavailableError } from '../errors.js';
import type { PublishItem } from '../grip/publish-items.js';
import type { Bus, BusDriverDeps, BusSink, BusState, HistoryResult, PublishResult, PublishStatus } from './bus.js';
import { Interest } from './interest.js';
import { decodeItem, encodeItem } from './item-codec.js';
import { PendingItems, type PendingItem } from './pending-items.js';
import { missedSince, PrefixMarks } from './prefix-marks.js';
import {
  compareEntryIds,
  entryFields,
  entryTick,
  PUBLISH_SCRIPT,
  redisNames,
  type PublishScriptReply,
  type RedisNames,
  type StreamEntry,
} from './redis-scripts.js';

/** What this node knows of one exact channel while it holds or watches it (and only then). */
interface ChannelState {
  /**
   * The last stream entry this node received for the channel over Pub/Sub (its own included): Pub/Sub
   * order is stream order, so anything at or before it is a repeat (the same PUBLISH matched both the
   * channel and a wildcard pattern) and a catch-up after a reconnect reads the stream after it.
   */
  lastReceived: string | undefined;
  /** The stream's last entry when the subscription began: where a catch-up starts if nothing came since. */
  baseline: string | undefined;
  /** Live messages held back while a catch-up after a reconnect reads the stream, so order holds. */
  buffer: Received[] | null;
  /**
   * The stream entry up to which this node has delivered the channel (items received, and its own items
   * delivered directly). Its own next item whose predecessor is past this waits in `held` until that
   * predecessor, published on another node, arrives: so this node's clients, too, see stream order.
   */
  deliveredTo: string | undefined;
  /** This node's own items waiting for an earlier item of another node, oldest first. */
  held: HeldLocal[];
}

interface HeldLocal {
  /** The stream entry before it: it goes once `deliveredTo` reaches this. */
  after: string;
  entryId: string;
  item: PublishItem;
  resolve: (delivered: number) => void;
  /** Bounds the wait (requestTimeoutMs): a predecessor that never arrives (a lost connection) holds nothing up. */
  timer: NodeJS.Timeout;
}

interface Received {
  node: string;
  entryId: string;
  encoded: string;
}

type ScriptRedis = Redis & {
  holdfastPublish(stream: string, dedup: string, ...args: (string | number)[]): Promise<PublishScriptReply>;
};

interface RunOptions {
  /** Already recorded for de-dup (a retry of an item that waited). */
  skipDedup: boolean;
  /** Its wait ran out (or waiting is off): no prev-id check. */
  force: boolean;
}

/**
 * The Redis driver: several Holdfast processes or machines share channels through one Redis.
 *
 * - Live items travel over Pub/Sub, and a node subscribes only to the channels (SUBSCRIBE) and wildcard
 *   prefixes (PSUBSCRIBE) its clients hold, so bus traffic per node does not grow with the node count.
 * - Order, de-dup and history live in Redis: one Lua script per item (redis-scripts.ts) checks and records
 *   them and PUBLISHes, so every node receives a channel's items in stream order.
 * - The publishing node delivers to its own holders directly (`delivered` is exact when the publish
 *   answers) and skips its own items when Pub/Sub brings them back. If another node's item came just
 *   before its own in the stream and has not reached it yet, its own waits for that one (bounded by
 *   `requestTimeoutMs`), so every node's clients see stream order, the order replay reads.
 * - Two connections: commands (no offline queue and a command timeout, so a down or paused Redis fails a
 *   publish within `requestTimeoutMs` as 503 instead of queueing it) and the subscriber, whose
 *   subscriptions this driver renews itself after a reconnect so it can then read what it missed.
 *
 * Not for Redis Cluster (the Pub/Sub and script keys assume one server or a primary with replicas).
 */
export class RedisBus implements Bus {
  readonly driver = 'redis';
  readonly #deps: BusDriverDeps;
  readonly #names: RedisNames;
  /**
   * Tags this node's messages so it can skip its own when Pub/Sub brings them back; also its connections'
   * names in `CLIENT LIST` (`holdfast-<id>` and `holdfast-<id>-sub`), so an operator can tell nodes apart.
   */
  readonly nodeId = randomUUID().slice(0, 12);
  /** The URL without credentials, for logs and errors. */
  readonly #where: string;
  readonly #cmd: ScriptRedis;
  readonly #sub: Redis;
  readonly #interest = new Interest();
  /** Exact channels this node's clients hold (from Interest's first/last edges). */
  readonly #held = new Set<string>();
  /** Wildcard prefixes held -> their PSUBSCRIBE pattern. */
  readonly #prefixes = new Map<string, string>();
  /** Where each prefix's live items stand, for its catch-up after a reconnect. */
  readonly #prefixMarks = new PrefixMarks();
  /** Exact channels subscribed in Redis (held, or watched while an item waits on them) and their state. */
  readonly #channels = new Map<string, ChannelState>();
  readonly #pending: PendingItems;
  readonly #sink: BusSink;
  #state: BusState = 'connecting';
  #everUp = false;
  #warnedStart = false;
  /** Bumped on every loss of a connection, so a renewal that was under way when it happened stands down. */
  #generation = 0;
  #lastError: Error | null = null;
  /** Redis's clock minus ours (ms), measured on each connect: publish deadlines are in Redis time. */
  #clockOffsetMs = 0;
  #onUp: (() => void) | null = null;
  #resyncTimer: NodeJS.Timeout | null = null;
  /** Retries of waiting items run one at a time, in the order they were triggered. */
  #retries: Promise<void> = Promise.resolve();

  constructor(deps: BusDriverDeps) {
    this.#deps = deps;
    this.#sink = deps.sink;
    this.#names = redisNames(deps.prefix);
    this.#where = `redis://${deps.url.host}${deps.url.pathname.length > 1 ? deps.url.pathname : ''}`;
    const base: RedisOptions = {
      lazyConnect: true,
      connectTimeout: deps.connectTimeoutMs,
      // Keep trying for as long as the node runs (state says connecting meanwhile); at most a second apart.
      retryStrategy: (times) => Math.min(100 * times, 1_000),
      // Nothing waits for a connection and nothing is re-sent after one: a publish that did not complete
      // was answered 503, and re-running it later would make that answer false.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
    };
    this.#cmd = new Redis(deps.url.toString(), { ...base, commandTimeout: deps.requestTimeoutMs, connectionName: `holdfast-${this.nodeId}` }) as ScriptRedis;
    this.#cmd.defineCommand('holdfastPublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT });
    this.#sub = new Redis(deps.url.toString(), { ...base, autoResubscribe: false, connectionName: `holdfast-${this.nodeId}-sub` });
    for (const conn of [this.#cmd, this.#sub]) {
      conn.on('error', (err: Error) => {
        this.#lastError = err;
        // Start-up retries until connectTimeoutMs: say so once, so a slow start is not a silent one.
        if (!this.#everUp && !this.#warnedStart && this.#state === 'connecting' && this.#onUp !== null) {
          this.#warnedStart = true;
          this.#deps.log.warn({ bus: this.#where, reason: errorReason(err), retryingForMs: this.#deps.connectTimeoutMs }, 'bus not reachable yet; retrying');
        }
      });
      conn.on('close', () => this.#down());
      conn.on('ready', () => this.#maybeUp());
    }
    this.#sub.on('message', (name: string, payload: string) => this.#onMessage(name, payload, undefined));
    this.#sub.on('pmessage', (pattern: string, name: string, payload: string) => this.#onMessage(name, payload, pattern));
    this.#pending = new PendingItems(
      { waitMs: deps.options.sequenceWaitMs, maxPerChannel: deps.options.sequenceMaxPending },
      (pending) => this.#enqueueRetry(pending, true),
    );
  }

  get state(): BusState {
    return this.#state;
  }

  start(): Promise<void> {
    this.#deps.metrics.busUp.set({ driver: 'redis' }, 0);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onUp = null;
        const why = this.#lastError === null ? 'no answer' : errorReason(this.#lastError);
        reject(new BusUnavailableError('redis', `cannot reach ${this.#where} within ${this.#deps.connectTimeoutMs} ms (${why})`, this.#lastError ?? undefined));
      }, this.#deps.connectTimeoutMs);
      this.#onUp = () => {
        clearTimeout(timer);
        resolve();
      };
      // A failed first attempt is not the end: ioredis retries until the timer above gives up.
      this.#cmd.connect().catch((err: unknown) => this.#noteError(err));
      this.#sub.connect().catch((err: unknown) => this.#noteError(err));
    });
  }


  async publish(items: readonly PublishItem[]): Promise<PublishResult> {
    if (this.#state !== 'up') throw this.#unavailable(this.#state === 'closed' ? 'closed' : 'reconnecting');
    const force = this.#deps.options.sequenceWaitMs === 0;
    // Sent together, so they pipeline on the one connection and Redis runs them in order.
    const replies = await Promise.allSettled(items.map((item) => this.#run(item, { skipDedup: false, force })));
    const statuses: PublishStatus[] = [];
    const local: PublishItem[] = [];
    const heldBack: Promise<number>[] = [];
    const released: string[] = [];
    let remoteNodes = 0;
    let failure: unknown = null;
    const now = Date.now();
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const reply = replies[i]!;
      if (reply.status === 'rejected') {
        failure ??= reply.reason;
        statuses.push('dropped');
        continue;
      }
      const [kind] = reply.value;
      if (kind === 'published') {
        statuses.push('published');
        remoteNodes = Math.max(remoteNodes, reply.value[2] - this.#ownSubscriptions(item.channel));
        if (this.#interest.wants(item.channel)) {
          const held = this.#holdBackIfBehind(item, reply.value[3], reply.value[1]);
          if (held === null) local.push(item);
          else heldBack.push(held);
        }
        if (item.id !== undefined) released.push(item.channel, item.id);
      } else if (kind === 'duplicate') {
        statuses.push('duplicate');
        this.#deps.metrics.drops.inc({ reason: 'duplicate' });
      } else if (kind === 'wait') {
        statuses.push(this.#wait(item, now));
      } else {
        failure ??= new Error('the request was past its deadline when Redis ran it');
        statuses.push('dropped');
      }
    }
    // Items that did go out were delivered everywhere else: deliver them here too, even when another item
    // of the request failed and the publisher gets a 503.
    let delivered = local.length === 0 ? 0 : await this.#sink.deliver(local);
    for (const n of await Promise.all(heldBack)) delivered += n;
    for (let i = 0; i < released.length; i += 2) this.#release(released[i]!, released[i + 1]!);
    if (failure !== null) throw this.#unavailable(errorReason(failure), failure);
    return { statuses, delivered, remoteNodes };
  }

  subscribe(channel: string, prefix = false): void {
    if (!this.#interest.add(channel, prefix)) return;
    if (prefix) {
      const pattern = this.#names.pattern(channel);
      this.#prefixes.set(channel, pattern);
      this.#prefixMarks.start(channel, Date.now() + this.#clockOffsetMs);
      if (this.#sub.status === 'ready') this.#sub.psubscribe(pattern).catch((err: unknown) => this.#subscribeFailed(err));
    } else {
      this.#held.add(channel);
      this.#want(channel);
    }
    this.#updateGauge();
  }

  unsubscribe(channel: string, prefix = false): void {
    if (!this.#interest.remove(channel, prefix)) return;
    if (prefix) {
      const pattern = this.#prefixes.get(channel);
      this.#prefixes.delete(channel);
      this.#prefixMarks.stop(channel);
      if (pattern !== undefined && this.#sub.status === 'ready') this.#sub.punsubscribe(pattern).catch((err: unknown) => this.#subscribeFailed(err));
    } else {
      this.#held.delete(channel);
      this.#unwant(channel);
    }
    this.#updateGauge();
  }

  async history(channel: string, afterId: string): Promise<HistoryResult> {
    // The stream keeps its last entry for sequencing even when no history is wanted: none is kept.
    if (this.#deps.options.maxItems === 0) return { items: [], found: false };
    if (this.#state !== 'up') throw this.#unavailable('reconnecting');
    let entries: StreamEntry[];
    try {
      // The age bound is applied here too: the stream is trimmed by age only when something is published.
      const minId = Date.now() + this.#clockOffsetMs - this.#deps.options.maxAgeMs;
      entries = await this.#cmd.xrange(this.#names.history(channel), String(Math.max(0, minId)), '+');
    } catch (err) {
      throw this.#unavailable(errorReason(err), err);
    }
    let after = -1;
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entryFields(entries[i]![1]).id === afterId) {
        after = i;
        break;
      }
    }
    // Not found: everything retained, for the client that is told of a gap (bus.ts).
    const items: PublishItem[] = [];
    for (const [, fields] of entries.slice(after + 1)) {
      const item = this.#decode(fields);
      if (item !== null) items.push(item);
    }
    return { items, found: after >= 0 };
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#generation++;
    this.#pending.stop();
    if (this.#resyncTimer !== null) clearTimeout(this.#resyncTimer);
    this.#deps.metrics.busUp.set({ driver: 'redis' }, 0);
    for (const channel of this.#channels.keys()) this.flushHeld(channel);
    this.#sub.disconnect();
    this.#cmd.disconnect();
    await this.#retries;
  }

  // --- publishing -------------------------------------------------------------------------------------

  async #run(item: PublishItem, options: RunOptions): Promise<PublishScriptReply> {
    // Deadline in Redis's clock: past it the script refuses, because the node has answered 503 by then.
    // A tenth early, so the clock estimate's error and the reply's trip err towards refusing: a refusal
    // the node would still have accepted is a 503 the publisher retries; the other way is a false 503.
    const deadline = Date.now() + this.#clockOffsetMs + Math.floor(this.#deps.requestTimeoutMs * 0.9);
    const { options: o } = this.#deps;
    const reply = await this.#cmd.holdfastPublish(
      this.#names.history(item.channel),
      this.#names.dedup(item.channel),
      this.#names.channel(item.channel),
      this.nodeId,
      item.id ?? '',
      item.noSeq ? '' : (item.prevId ?? ''),
      encodeItem(item),
      o.dedupWindowMs,
      Math.max(1, o.maxItems),
      o.maxAgeMs,
      deadline,
      options.skipDedup ? '1' : '0',
      options.force ? '1' : '0',
    );
    if (reply[0] === 'published') this.#deps.metrics.busMessages.inc({ direction: 'out' });
    return reply;
  }

  /** The script said the item's predecessor is not the channel's last item: it waits here. */
  #wait(item: PublishItem, nowMs: number): PublishStatus {
    if (!this.#pending.add(item, item.prevId!, nowMs)) {
      this.#deps.metrics.drops.inc({ reason: 'sequence' });
      return 'dropped';
    }
    this.#want(item.channel);
    return 'queued';
  }

  /** `id` became `channel`'s last item: whatever waited on it goes now. */
  #release(channel: string, id: string): void {
    const next = this.#pending.take(channel, id);
    if (next !== undefined) this.#enqueueRetry(next, false);
  }

  #enqueueRetry(pending: PendingItem, expired: boolean): void {
    this.#retries = this.#retries.then(() => this.#retry(pending, expired));
  }

  /** Publishes an item that waited, now that its predecessor came (or its wait ran out). */
  async #retry(pending: PendingItem, expired: boolean): Promise<void> {
    const { item } = pending;
    if (this.#state === 'closed') return;
    let reply: PublishScriptReply;
    try {
      reply = await this.#run(item, { skipDedup: true, force: expired });
      if (reply[0] === 'late') throw new Error('Redis ran the retry past its deadline');
    } catch (err) {
      // close() disconnected under it: nothing more to do.
      if ((this.#state as BusState) === 'closed') return;
      if (!expired && this.#pending.restore(pending)) return;
      // Its wait is over and Redis cannot take it: it is lost, as a publish refused with 503 would be.
      this.#deps.log.warn({ channel: item.channel, id: item.id, err: errorReason(err) }, 'a waiting item could not be published');
      this.#deps.metrics.drops.inc({ reason: 'sequence' });
      this.#unwant(item.channel);
      return;
    }
    if (reply[0] === 'wait' && !this.#pending.restore(pending)) {
      // Another item took its place in the queue meanwhile: it goes now, as if its wait ran out.
      this.#enqueueRetry(pending, true);
      return;
    }
    if (reply[0] === 'published') {
      if (this.#interest.wants(item.channel)) await this.#sink.deliver([item]);
      if (item.id !== undefined) this.#release(item.channel, item.id);
    }
    this.#unwant(item.channel);
  }

  /**
   * This node's own item, just published as `entryId` after `prevEntry`: null when it can be delivered to
   * local clients now; else (another node's item before it is still on its way here over Pub/Sub) a
   * promise of its deliveries once that item arrived.
   */
  #holdBackIfBehind(item: PublishItem, prevEntry: string, entryId: string): Promise<number> | null {
    const state = this.#channels.get(item.channel);
    if (state === undefined) return null;
    const behind =
      state.held.length > 0 ||
      (prevEntry !== '' && state.deliveredTo !== undefined && compareEntryIds(prevEntry, state.deliveredTo) > 0);
    if (!behind) {
      this.#advance(state, entryId);
      return null;
    }
    return new Promise<number>((resolve) => {
      const timer = setTimeout(flushHeldLocal, this.#deps.requestTimeoutMs, this, item.channel);
      timer.unref();
      state.held.push({ after: prevEntry, entryId, item, resolve, timer });
    });
  }

  /** The channel has been delivered up to `entryId`: this node's own items waiting for that go now. */
  #advance(state: ChannelState, entryId: string): void {
    if (state.deliveredTo === undefined || compareEntryIds(entryId, state.deliveredTo) > 0) state.deliveredTo = entryId;
    while (state.held.length > 0 && compareEntryIds(state.held[0]!.after, state.deliveredTo) <= 0) {
      this.#releaseHeld(state, state.held.shift()!);
    }
  }

  /** Delivers every held item of `channel` now, in order (its wait ran out, or the channel is dropped). */
  flushHeld(channel: string): void {
    const state = this.#channels.get(channel);
    if (state === undefined) return;
    for (const held of state.held.splice(0)) this.#releaseHeld(state, held);
  }

  #releaseHeld(state: ChannelState, held: HeldLocal): void {
    clearTimeout(held.timer);
    if (state.deliveredTo === undefined || compareEntryIds(held.entryId, state.deliveredTo) > 0) state.deliveredTo = held.entryId;
    this.#sink.deliver([held.item]).then(held.resolve, (err: unknown) => {
      this.#deps.log.warn({ err, channel: held.item.channel }, 'delivering a published item failed');
      held.resolve(0);
    });
  }

  /**
   * How many of the PUBLISH's receivers were this node's own subscriptions: Redis counts one per matching
   * subscription, the channel's and each matching pattern's. `remoteNodes` is the rest: subscriptions of
   * other nodes, which is their number unless one holds the channel both exactly and by a wildcard prefix
   * (or by two overlapping prefixes), which counts once per subscription.
   */
  #ownSubscriptions(channel: string): number {
    let n = this.#channels.has(channel) ? 1 : 0;
    for (const prefix of this.#prefixes.keys()) if (channel.startsWith(prefix)) n++;
    return n;
  }

  // --- subscriptions ----------------------------------------------------------------------------------

  /** Subscribes to an exact channel in Redis if it is newly held or watched. */
  #want(channel: string): void {
    if (this.#channels.has(channel)) return;
    this.#channels.set(channel, { lastReceived: undefined, baseline: undefined, buffer: null, deliveredTo: undefined, held: [] });
    this.#updateGauge();
    if (this.#sub.status !== 'ready') return;
    const generation = this.#generation;
    this.#sub.subscribe(this.#names.channel(channel)).then(
      () => {
        if (generation === this.#generation) void this.#subscribed(channel);
      },
      (err: unknown) => this.#subscribeFailed(err),
    );
  }

  /** Unsubscribes from an exact channel that is neither held nor watched any more, dropping its state. */
  #unwant(channel: string): void {
    if (this.#held.has(channel) || this.#pending.has(channel) || !this.#channels.has(channel)) return;
    this.flushHeld(channel);
    this.#channels.delete(channel);
    this.#updateGauge();
    if (this.#sub.status === 'ready') this.#sub.unsubscribe(this.#names.channel(channel)).catch((err: unknown) => this.#subscribeFailed(err));
  }

  /**
   * A SUBSCRIBE took effect. Note where the stream stands (where a catch-up would start), and for an item
   * waiting on the channel, check whether its predecessor came before the subscription could see it.
   */
  async #subscribed(channel: string): Promise<void> {
    let last: StreamEntry | undefined;
    try {
      [last] = (await this.#cmd.xrevrange(this.#names.history(channel), '+', '-', 'COUNT', 1)) as StreamEntry[];
    } catch (err) {
      this.#noteError(err);
      return;
    }
    const state = this.#channels.get(channel);
    if (state === undefined || last === undefined) return;
    state.baseline ??= last[0];
    state.deliveredTo ??= last[0];
    const lastId = entryFields(last[1]).id;
    if (lastId !== '') this.#release(channel, lastId);
  }

  #subscribeFailed(err: unknown): void {
    // The connection went away under the command: the renewal after the reconnect subscribes afresh.
    this.#noteError(err);
  }

  #updateGauge(): void {
    this.#deps.metrics.busSubscriptions.set(this.#channels.size + this.#prefixes.size);
  }

  // --- receiving --------------------------------------------------------------------------------------

  #onMessage(name: string, payload: string, pattern: string | undefined): void {
    if (!name.startsWith(this.#names.channelPrefix)) return;
    const channel = name.slice(this.#names.channelPrefix.length);
    const a = payload.indexOf(' ');
    const b = payload.indexOf(' ', a + 1);
    if (a <= 0 || b <= a) return;
    const received: Received = { node: payload.slice(0, a), entryId: payload.slice(a + 1, b), encoded: payload.slice(b + 1) };
    const state = this.#channels.get(channel);
    if (state === undefined) {
      // Not held exactly: take it from one pattern only (the longest matching prefix), since Redis sends it
      // once per matching pattern. A late message for a channel just unsubscribed is dropped.
      const prefix = this.#canonicalPrefix(channel);
      if (pattern === undefined || prefix === undefined || pattern !== this.#prefixes.get(prefix)) return;
      const tick = entryTick(received.entryId);
      const deliver = () => this.#handle(channel, received);
      if (this.#prefixMarks.buffer(prefix, channel, received.entryId, tick, deliver)) return;
      this.#prefixMarks.received(prefix, channel, received.entryId, tick);
      deliver();
      return;
    }
    if (state.lastReceived !== undefined && compareEntryIds(received.entryId, state.lastReceived) <= 0) return;
    if (state.buffer !== null) {
      state.buffer.push(received);
      return;
    }
    state.lastReceived = received.entryId;
    this.#handle(channel, received);
    this.#advance(state, received.entryId);
  }

  /** The longest held prefix `channel` starts with: the one pattern whose messages (and catch-up) count. */
  #canonicalPrefix(channel: string): string | undefined {
    let best: string | undefined;
    for (const prefix of this.#prefixes.keys()) {
      if (channel.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
    }
    return best;
  }

  /** One item that arrived (live or by catch-up), in stream order. */
  #handle(channel: string, received: Received): void {
    const item = this.#decodeText(received.encoded);
    if (item === null) return;
    if (item.id !== undefined) this.#release(channel, item.id);
    // This node's own items were delivered here when they were published.
    if (received.node === this.nodeId || !this.#interest.wants(channel)) return;
    this.#deps.metrics.busMessages.inc({ direction: 'in' });
    this.#sink.deliver([item]).catch((err: unknown) => this.#deps.log.warn({ err, channel }, 'delivering a bus item failed'));
  }

  #decode(fields: readonly string[]): PublishItem | null {
    return this.#decodeText(entryFields(fields).item);
  }

  #decodeText(text: string): PublishItem | null {
    try {
      return decodeItem(text);
    } catch (err) {
      // Someone else's message under our prefix: skip it rather than stop the channel.
      this.#deps.log.warn({ err: errorReason(err) }, 'skipping a bus message that is not a Holdfast item');
      return null;
    }
  }

  // --- connection state -------------------------------------------------------------------------------

  #down(): void {
    if (this.#state === 'closed') return;
    this.#generation++;
    if (this.#state !== 'up') return;
    this.#state = 'connecting';
    this.#deps.metrics.busUp.set({ driver: 'redis' }, 0);
    this.#sink.stateChanged?.('connecting');
    const why = this.#lastError === null ? 'connection closed' : errorReason(this.#lastError);
    this.#deps.log.warn({ bus: this.#where, reason: why }, 'bus connection lost; publishes are refused until it is back');
  }

  #maybeUp(): void {
    if (this.#state === 'closed' || this.#cmd.status !== 'ready' || this.#sub.status !== 'ready') return;
    const generation = this.#generation;
    this.#renew(generation).catch((err: unknown) => {
      this.#noteError(err);
      if (generation !== this.#generation || this.#state === 'closed') return;
      // Both connections look fine but a command failed (a slow Redis): try the renewal again shortly.
      this.#resyncTimer = setTimeout(() => this.#maybeUp(), 200);
      this.#resyncTimer.unref();
    });
  }

  /**
   * Both connections are (again) ready: learn Redis's clock, renew every subscription, and on a reconnect
   * deliver from each held channel's stream what was published while this node could not hear it.
   */
  async #renew(generation: number): Promise<void> {
    const sentAt = Date.now();
    const [sec, usec] = await this.#cmd.time();
    this.#clockOffsetMs = Number(sec) * 1_000 + Math.floor(Number(usec) / 1_000) - Math.round((sentAt + Date.now()) / 2);
    const reconnect = this.#everUp;
    if (reconnect) {
      for (const state of this.#channels.values()) state.buffer = [];
      for (const prefix of this.#prefixes.keys()) this.#prefixMarks.hold(prefix);
    }
    const exact = [...this.#channels.keys()].map((c) => this.#names.channel(c));
    const patterns = [...this.#prefixes.values()];
    if (exact.length > 0) await this.#sub.subscribe(...exact);
    if (patterns.length > 0) await this.#sub.psubscribe(...patterns);
    if (generation !== this.#generation) return;
    if (reconnect) {
      for (const channel of [...this.#channels.keys()]) await this.#catchUp(channel);
      for (const prefix of [...this.#prefixes.keys()]) await this.#catchUpPrefix(prefix);
    }
    if (generation !== this.#generation) return;
    this.#state = 'up';
    this.#deps.metrics.busUp.set({ driver: 'redis' }, 1);
    this.#sink.stateChanged?.('up');
    if (reconnect) {
      this.#deps.metrics.busReconnects.inc();
      this.#deps.log.info({ bus: this.#where, subscriptions: exact.length + patterns.length }, 'bus connection back; subscriptions renewed');
    } else {
      this.#deps.log.info({ bus: this.#where, node: this.nodeId }, 'bus connected');
    }
    this.#everUp = true;
    this.#onUp?.();
    this.#onUp = null;
  }

  /**
   * Reads `channel`'s stream after the last entry this node saw and delivers what it missed; then the live
   * messages held back meanwhile. If that entry is no longer in the stream but later ones are, some may
   * have been trimmed (or lost with a Redis restart): the channel's clients get a gap. A stream that is
   * gone entirely had nothing published since (an idle stream expires; a restarted Redis refused publishes
   * while it was down), so there is nothing to announce.
   */
  async #catchUp(channel: string): Promise<void> {
    const state = this.#channels.get(channel);
    if (state === undefined) return;
    const mark = state.lastReceived ?? state.baseline;
    try {
      if (mark !== undefined) {
        const entries = (await this.#cmd.xrange(this.#names.history(channel), mark, '+')) as StreamEntry[];
        if (entries.length > 0) {
          const missed = entries[0]![0] === mark ? entries.slice(1) : entries;
          if (missed === entries && this.#held.has(channel)) this.#sink.gap(channel);
          for (const [entryId, fields] of missed) {
            const f = entryFields(fields);
            state.lastReceived = entryId;
            this.#handle(channel, { node: f.node, entryId, encoded: f.item });
            this.#advance(state, entryId);
          }
        }
      }
    } finally {
      const buffered = state.buffer ?? [];
      state.buffer = null;
      for (const received of buffered) {
        if (state.lastReceived !== undefined && compareEntryIds(received.entryId, state.lastReceived) <= 0) continue;
        state.lastReceived = received.entryId;
        this.#handle(channel, received);
        this.#advance(state, received.entryId);
      }
    }
    // An item that waits on this channel may have missed its predecessor while the connection was down;
    // a channel that had no mark yet gets one now.
    if (this.#pending.has(channel) || mark === undefined) await this.#subscribed(channel);
  }

  /**
   * The same for a wildcard prefix: its channels are not known in advance, so every history under the
   * prefix is read from the prefix's mark (PrefixMarks). Channels also held exactly were caught up by
   * their own (that delivery reaches the prefix's clients too), and a channel under a longer held prefix
   * by that one. A missed entry whose `prev` is missed too and gone from history was trimmed: a gap.
   */
  async #catchUpPrefix(prefix: string): Promise<void> {
    const mark = this.#prefixMarks.snapshot(prefix);
    const delivered = new Set<string>();
    try {
      if (mark === undefined) return;
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await this.#cmd.scan(cursor, 'MATCH', this.#names.historyPattern(prefix), 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      // Every missed entry of every channel, then delivered in the engine's order (stream ids are Redis's
      // clock), as they would have arrived live: a client of the prefix sees publish order across channels.
      const missed: { channel: string; entryId: string; node: string; item: string; gapBefore: boolean }[] = [];
      for (const key of keys) {
        const channel = key.slice(this.#names.historyPrefix.length);
        if (this.#channels.has(channel) || this.#canonicalPrefix(channel) !== prefix) continue;
        const entries = (await this.#cmd.xrange(key, String(mark.tick), '+')) as StreamEntry[];
        const read = new Set(entries.map(([entryId]) => entryId));
        let first = true;
        for (const [entryId, fields] of entries) {
          if (!missedSince(mark, channel, entryId, entryTick(entryId))) continue;
          const f = entryFields(fields);
          // The first missed entry's predecessor is missed too but no longer in history: trimmed.
          const gapBefore = first && f.prev !== '' && !read.has(f.prev) && missedSince(mark, channel, f.prev, entryTick(f.prev));
          first = false;
          missed.push({ channel, entryId, node: f.node, item: f.item, gapBefore });
        }
      }
      missed.sort((x, y) => compareEntryIds(x.entryId, y.entryId));
      for (const { channel, entryId, node, item, gapBefore } of missed) {
        if (gapBefore) this.#sink.gap(channel);
        this.#prefixMarks.received(prefix, channel, entryId, entryTick(entryId));
        delivered.add(`${channel} ${entryId}`);
        this.#handle(channel, { node, entryId, encoded: item });
      }
    } finally {
      this.#prefixMarks.release(prefix, delivered);
    }
  }

  #noteError(err: unknown): void {
    if (err instanceof Error) this.#lastError = err;
  }

  #unavailable(reason: string, cause?: unknown): BusUnavailableError {
    return new BusUnavailableError('redis', `${this.#where} ${reason}`, cause);
  }
}

function flushHeldLocal(bus: RedisBus, channel: string): void {
  bus.flushHeld(channel);
}

/** A short reason: the errno code where there is one (ECONNREFUSED), else the message. */
function errorReason(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
