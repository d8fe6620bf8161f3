import { randomUUID } from 'node:crypto';
import { connect, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from '@nats-io/jetstream';
import { BusUnavailableError } from '../errors.js';
import type { PublishItem } from '../grip/publish-items.js';
import type { Bus, BusDriverDeps, BusSink, BusState, HistoryResult, PublishResult, PublishStatus } from './bus.js';
import { Interest } from './interest.js';
import { decodeItem, encodeItem } from './item-codec.js';
import { encodeChannel, encodeToken, prefixSubject } from './nats-subject.js';
import { ensureHistoryStream } from './nats-stream.js';
import { PrevIdWaits } from './prev-id-waits.js';
import { StreamPrefixMarks } from './stream-prefix-marks.js';

/** Live messages say which node sent them (that node delivered locally already), and their place in the channel's chain. */
const NODE_HEADER = 'Holdfast-Node';
const SEQ_HEADER = 'Holdfast-Seq';
/** On stored and live messages: the stream sequence of the channel's previous message (0: none). */
const PREV_HEADER = 'Holdfast-Prev';
/** A catch-up of wildcard prefixes after an outage reads at most this many stored items (then reports gaps). */
const MAX_PREFIX_CATCH_UP = 100_000;
/** Cached last sequences of channels this node published to; past this the oldest are forgotten (a cache miss costs one read). */
const MAX_CACHED_LAST = 10_000;

/** One stored item with its place in its channel's chain of stream sequences. */
interface Entry {
  item: PublishItem;
  payload: string;
  seq: number;
  /** The channel's previous sequence when this one was stored (0 when it was the first retained). */
  prev: number;
}

interface LastStored {
  seq: number;
  id: string | undefined;
}

/**
 * Where this node's clients are in a held channel's chain. `firm` is false between a first subscription's
 * baseline read and the first live message after it: live messages at or below that baseline were still
 * published after the subscription was active (the server handles one connection's SUB before its later
 * requests), so they are new to these clients and go out; `early` keeps them from going out twice when a
 * channel and a prefix subscription both match.
 */
interface Cursor {
  seq: number;
  firm: boolean;
  early: Set<number>;
}

interface SubscriptionEntry {
  sub: Subscription | null;
  refs: number;
  /** The server has it (a flush after SUB came back): what the subscriptions gauge counts. */
  confirmed: boolean;
}

type StoreResult = { status: 'published'; entry: Entry } | { status: 'duplicate' } | { status: 'moved' };

/**
 * The NATS driver: history in one JetStream stream, live fan-out over core NATS (DESIGN.md, issue 11).
 *
 * Two subjects per channel, `<prefix>.h.<channel>` (stored) and `<prefix>.ch.<channel>` (live), because a
 * message published to a stream subject also reaches core subscribers when JetStream refuses it (a duplicate
 * id, a failed expected-sequence check): live delivery must follow the store's acknowledgement, so the live
 * message is sent only after the ack. Every store names the channel's last stream sequence it expects
 * (Nats-Expected-Last-Subject-Sequence), so the stream gives each channel one chain of sequences even when
 * nodes publish at once; live and stored messages carry their previous sequence, and a receiver that sees a
 * link missing fetches it from the stream before delivering (order holds when two nodes' live publishes
 * race), or reports a gap when the stream no longer has it.
 *
 * What is lost when: core NATS is at-most-once, so a live message lost in flight is found on the channel's
 * next message (or after a reconnect) and fetched from the stream; what the stream dropped (count, age) is a
 * gap. `remoteNodes` is undefined: a core publish has no receiver count.
 *
 * A publish that fails (BusUnavailableError, a 503) is not always a publish that did nothing: a store that
 * timed out may still be written by a stalled server, and the items of a request before the failing one
 * were published. Retrying with the same ids is safe (Nats-Msg-Id de-duplication); items without an id
 * may then go out twice. A prev-id item that waits is reported `queued` before JetStream has judged its id,
 * so a repeated id that waits is dropped silently when it is finally stored.
 */
export class NatsBus implements Bus {
  readonly driver = 'nats';
  readonly #deps: BusDriverDeps;
  readonly #nodeId = randomUUID();
  readonly #stream: string;
  readonly #interest = new Interest();
  readonly #waits: PrevIdWaits;
  /** NATS subscriptions by subject, counted: held channels, prefixes and channels watched for a predecessor share them. */
  readonly #subs = new Map<string, SubscriptionEntry>();
  readonly #cursors = new Map<string, Cursor>();
  readonly #lastStored = new Map<string, LastStored>();
  /** Per-channel task chains: deliveries, catch-ups and releases of one channel happen one after another. */
  readonly #chains = new Map<string, Promise<void>>();
  /** Per-channel turns for stores (see #store). */
  readonly #storing = new Map<string, Promise<void>>();
  readonly #watched = new Set<string>();
  /** Where each wildcard prefix stands in the stream, for its catch-up after an outage. */
  readonly #prefixMarks = new StreamPrefixMarks<Entry>();
  readonly #sink: BusSink;
  #nc: NatsConnection | null = null;
  #js: JetStreamClient | null = null;
  #jsm: JetStreamManager | null = null;
  #state: BusState = 'connecting';

  constructor(deps: BusDriverDeps) {
    this.#deps = deps;
    this.#sink = deps.sink;
    this.#stream = `${deps.prefix}_history`;
    this.#waits = new PrevIdWaits(
      { waitMs: deps.options.sequenceWaitMs, maxPendingPerChannel: deps.options.sequenceMaxPending },
      { expired: (item) => this.#releaseLater(item, 'expired'), idle: (channel) => this.#unwatch(channel) },
    );
    deps.metrics.busUp.set({ driver: 'nats' }, 0);
  }

  get state(): BusState {
    return this.#state;
  }

  async start(): Promise<void> {
    const { url, connectTimeoutMs, requestTimeoutMs, log } = this.#deps;
    const deadline = performance.now() + connectTimeoutMs;
    let nc: NatsConnection | null = null;
    // Retry until connectTimeoutMs: a NATS started next to Holdfast (CI, compose) may not listen yet.
    for (let attempt = 0; nc === null; attempt++) {
      try {
        nc = await connect({
          servers: url.host,
          ...(url.protocol === 'tls:' ? { tls: {} } : {}),
          ...(url.username !== '' ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : {}),
          name: `holdfast ${this.#nodeId}`,
          timeout: Math.max(50, Math.min(connectTimeoutMs, deadline - performance.now())),
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          // A paused server is found by pings: 2 missed at 5 s each, not the client's 2-minute default.
          pingInterval: 5_000,
          maxPingOut: 2,
          // This node delivers its own publishes locally; echoes would only be dropped.
          noEcho: true,
        });
      } catch (err) {
        const left = deadline - performance.now();
        if (left <= 0 || this.#state === 'closed') {
          throw new BusUnavailableError('nats', `cannot connect to ${redact(url)} within ${connectTimeoutMs} ms: ${reason(err)}`, err);
        }
        if (attempt === 0) log.warn({ bus: redact(url), err: reason(err) }, 'nats bus: not reachable yet, retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(250, left)));
      }
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: requestTimeoutMs });
      await ensureHistoryStream(jsm, this.#stream, this.#deps);
      this.#jsm = jsm;
      this.#js = jetstream(nc, { timeout: requestTimeoutMs });
    } catch (err) {
      await nc.close();
      const why = err instanceof Error && /jetstream (is )?not enabled|no responders|503/i.test(err.message)
        ? `JetStream is not enabled there (run nats-server with -js): ${reason(err)}`
        : `cannot set up the history stream ${this.#stream}: ${reason(err)}`;
      throw new BusUnavailableError('nats', `${redact(url)}: ${why}`, err);
    }
    if (this.#state === 'closed') {
      await nc.close();
      return;
    }
    this.#nc = nc;
    for (const [subject, entry] of this.#subs) if (entry.sub === null) this.#activate(subject, entry);
    void this.#watchStatus(nc);
    this.#setState('up');
    log.info({ bus: redact(url), stream: this.#stream, node: this.#nodeId }, 'nats bus: connected');
  }


  async publish(items: readonly PublishItem[]): Promise<PublishResult> {
    this.#assertUp();
    const statuses: PublishStatus[] = [];
    const stored: Entry[] = [];
    let failure: Error | null = null;
    try {
      for (const item of items) statuses.push(await this.#publishOne(item, stored));
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    // Items stored before a failure went out to the other nodes: this node's clients get them too.
    let delivered = 0;
    for (const [channel, entries] of groupByChannel(stored)) {
      if (this.#interest.wants(channel)) delivered += await this.#inOrder(channel, () => this.#accept(channel, entries));
    }
    if (failure !== null) throw failure;
    return { statuses, delivered, remoteNodes: undefined };
  }

  subscribe(channel: string, prefix = false): void {
    if (!this.#interest.add(channel, prefix)) return;
    if (prefix) {
      this.#ref(prefixSubject(`${this.#deps.prefix}.ch`, channel).subject);
      this.#markPrefix(channel);
    } else {
      this.#ref(this.#liveSubject(channel));
      this.#baseline(channel);
    }
  }

  unsubscribe(channel: string, prefix = false): void {
    if (!this.#interest.remove(channel, prefix)) return;
    if (prefix) {
      this.#unref(prefixSubject(`${this.#deps.prefix}.ch`, channel).subject);
      this.#prefixMarks.stop(channel);
      for (const held of this.#cursors.keys()) if (!this.#interest.wants(held)) this.#cursors.delete(held);
    } else {
      this.#unref(this.#liveSubject(channel));
      if (!this.#interest.wants(channel)) this.#cursors.delete(channel);
    }
  }

  async history(channel: string, afterId: string): Promise<HistoryResult> {
    // maxItems 0 keeps no history to replay; the stream still keeps each channel's last item for prev-id.
    if (this.#deps.options.maxItems === 0) return { items: [], found: false };
    this.#assertUp();
    const last = await this.#readLast(channel);
    if (last === null) return { items: [], found: false };
    if (last.id === afterId) return { items: [], found: true };
    // Walk the channel's retained messages (at most maxItems: the stream's per-subject limit) up to the
    // last one read above. One direct get each: batch gets need nats-server 2.11.
    const entries = await this.#fetch(channel, 0, last.seq + 1);
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i]!.item.id === afterId) return { items: entries.slice(i + 1).map((e) => e.item), found: true };
    }
    // Not found: everything retained, for the client that is told of a gap (bus.ts).
    return { items: entries.map((e) => e.item), found: false };
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    this.#waits.stop();
    const nc = this.#nc;
    this.#nc = null;
    if (nc !== null) await nc.close();
  }

  // --- publishing ---------------------------------------------------------------------------------------

  async #publishOne(item: PublishItem, stored: Entry[]): Promise<PublishStatus> {
    const sequenced = !item.noSeq && item.prevId !== undefined && this.#deps.options.sequenceWaitMs > 0;
    let last: LastStored | null = null;
    if (sequenced) {
      last = await this.#readLast(item.channel);
      // As the in-process Sequencer: no known last id (nothing retained, or the last item had no id) lets it through.
      if (last !== null && last.id !== undefined && last.id !== item.prevId) return this.#wait(item as PublishItem & { prevId: string }, stored);
    }
    const result = await this.#store(item, sequenced, last);
    if (result.status === 'moved') return this.#wait(item as PublishItem & { prevId: string }, stored);
    if (result.status === 'duplicate') {
      this.#deps.metrics.drops.inc({ reason: 'duplicate' });
      return 'duplicate';
    }
    await this.#stored(result.entry, stored);
    return 'published';
  }

  /**
   * Stores one item as the channel's next message: expects the channel's last sequence (cached, else read),
   * and on a lost race reads it again and retries until requestTimeoutMs. With `requirePrev`, a last item
   * that is not the item's prev-id gives up (`moved`): the predecessor is no longer last.
   *
   * Stores of one channel take turns on this node: concurrent publish requests would otherwise all expect
   * the same sequence and all but one lose, round after round (measured: 80 concurrent publishes to one
   * channel from two nodes ran past a 2 s timeout). In turn, this node's cached sequence is exact, and only
   * other nodes can make a store retry.
   */
  #store(item: PublishItem, requirePrev: boolean, known: LastStored | null): Promise<StoreResult> {
    const channel = item.channel;
    const previous = this.#storing.get(channel) ?? Promise.resolve();
    const run = previous.then(() => this.#storeNow(item, requirePrev, known));
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#storing.set(channel, tail);
    void tail.then(() => {
      if (this.#storing.get(channel) === tail) this.#storing.delete(channel);
    });
    return run;
  }

  async #storeNow(item: PublishItem, requirePrev: boolean, known: LastStored | null): Promise<StoreResult> {
    const js = this.#js!;
    const subject = this.#historySubject(item.channel);
    const payload = encodeItem(item);
    const dedup = item.id !== undefined && this.#deps.options.dedupWindowMs > 0;
    const msgID = dedup ? `${encodeChannel(item.channel)} ${encodeToken(item.id!)}` : undefined;
    const deadline = performance.now() + this.#deps.requestTimeoutMs;
    // What was read before waiting for the turn may be older than what this node stored meanwhile.
    const cached = this.#lastStored.get(item.channel);
    let last = known !== null && (cached === undefined || cached.seq <= known.seq) ? known : (cached ?? (await this.#readLast(item.channel)));
    if (requirePrev && last !== null && last.id !== undefined && last.id !== item.prevId) return { status: 'moved' };
    for (;;) {
      const expected = last?.seq ?? 0;
      const h = headers();
      h.set(PREV_HEADER, String(expected));
      try {
        const ack = await js.publish(subject, payload, {
          ...(msgID !== undefined ? { msgID } : {}),
          expect: { lastSubjectSequence: expected },
          headers: h,
          timeout: Math.max(1, deadline - performance.now()),
        });
        if (ack.duplicate) return { status: 'duplicate' };
        this.#remember(item.channel, { seq: ack.seq, id: item.id });
        return { status: 'published', entry: { item, payload, seq: ack.seq, prev: expected } };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw this.#unavailable('a publish', err);
        if (performance.now() > deadline) throw this.#unavailable('a publish', new Error('the channel kept moving under contention', { cause: err }));
        last = await this.#readLast(item.channel);
        if (requirePrev && last !== null && last.id !== undefined && last.id !== item.prevId) return { status: 'moved' };
      }
    }
  }

  /** After the store's ack: the live message, then whatever waited on this node for this item. */
  async #stored(entry: Entry, stored: Entry[]): Promise<void> {
    this.#sendLive(entry);
    stored.push(entry);
    let id = entry.item.id;
    while (id !== undefined) {
      const next = this.#waits.take(entry.item.channel, id);
      if (next === undefined) return;
      // Its predecessor is in: it goes out after it, whatever else got in between meanwhile.
      const result = await this.#store(next, false, null);
      if (result.status !== 'published') return;
      this.#sendLive(result.entry);
      stored.push(result.entry);
      id = next.id;
    }
  }

  #sendLive(entry: Entry): void {
    const h = headers();
    h.set(NODE_HEADER, this.#nodeId);
    h.set(SEQ_HEADER, String(entry.seq));
    h.set(PREV_HEADER, String(entry.prev));
    // Closed while the store was in flight: the item is stored; other nodes find it on the channel's next message.
    if (this.#nc === null) return;
    this.#nc.publish(this.#liveSubject(entry.item.channel), entry.payload, { headers: h });
    this.#deps.metrics.busMessages.inc({ direction: 'out' });
  }

  /**
   * The predecessor is not stored yet: wait on this node, watching the channel's live subject so its arrival
   * from any node releases the item. Once the watch is registered, look once more, since the predecessor
   * may have been stored since the first look.
   */
  async #wait(item: PublishItem & { prevId: string }, stored: Entry[]): Promise<PublishStatus> {
    if (this.#waits.add(item, Date.now()) === 'dropped') {
      this.#deps.metrics.drops.inc({ reason: 'sequence' });
      return 'dropped';
    }
    this.#watch(item.channel);
    try {
      this.#assertUp();
      await this.#nc!.flush();
      const last = await this.#readLast(item.channel);
      if ((last === null || last.id === undefined || last.id === item.prevId) && this.#waits.remove(item)) {
        const result = await this.#store(item, true, last);
        if (result.status === 'duplicate') return 'duplicate';
        if (result.status === 'published') {
          await this.#stored(result.entry, stored);
          return 'published';
        }
        // Overtaken again: wait after all (the watch is still on).
        if (this.#waits.add(item, Date.now()) === 'dropped') return 'dropped';
      }
    } catch (err) {
      // The item stays queued: its wait runs out and it goes out then, or is logged as lost if the bus is down.
      this.#warn({ channel: item.channel, err: reason(err) }, 'nats bus: could not re-check a waiting item');
    }
    return 'queued';
  }

  /** A waiting item goes out on its own (its predecessor arrived from another node, or its wait ran out). */
  #releaseLater(item: PublishItem, why: 'predecessor' | 'expired'): void {
    void this.#inOrder(item.channel, async () => {
      const stored: Entry[] = [];
      try {
        this.#assertUp();
        const result = await this.#store(item, false, null);
        if (result.status === 'published') await this.#stored(result.entry, stored);
      } catch (err) {
        this.#deps.metrics.drops.inc({ reason: 'sequence' });
        this.#warn({ channel: item.channel, id: item.id, why, err: reason(err) }, 'nats bus: a waiting item was lost');
        return 0;
      }
      return this.#accept(item.channel, stored);
    });
  }

  // --- receiving ----------------------------------------------------------------------------------------

  #onLive(msg: Msg): void {
    const h = msg.headers;
    if (h === undefined || h.get(NODE_HEADER) === this.#nodeId) return;
    const seq = Number(h.get(SEQ_HEADER));
    const prev = Number(h.get(PREV_HEADER));
    let item: PublishItem;
    const payload = msg.string();
    try {
      if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(prev)) throw new Error('no sequence headers');
      item = decodeItem(payload);
    } catch (err) {
      this.#warn({ err: reason(err) }, 'nats bus: ignored a message that is not a Holdfast item');
      return;
    }
    this.#deps.metrics.busMessages.inc({ direction: 'in' });
    const channel = item.channel;
    this.#remember(channel, { seq, id: item.id });
    this.#prefixMarks.received(channel, seq);
    const entry: Entry = { item, payload, seq, prev };
    if (this.#interest.wants(channel) && (this.#cursors.has(channel) || !this.#prefixMarks.holdBack(channel, entry))) {
      void this.#inOrder(channel, () => this.#accept(channel, [entry]));
    }
    if (item.id !== undefined) {
      const next = this.#waits.take(channel, item.id);
      if (next !== undefined) this.#releaseLater(next, 'predecessor');
    }
  }

  /**
   * Delivers stored entries of one held channel (ascending), in chain order: what this node already passed
   * is skipped, a missing link is fetched from the stream first, and a link the stream no longer has is a gap.
   * Runs inside the channel's chain.
   */
  async #accept(channel: string, entries: readonly Entry[]): Promise<number> {
    if (!this.#interest.wants(channel)) return 0;
    const out: PublishItem[] = [];
    let gap = false;
    let cursor = this.#cursors.get(channel);
    for (const entry of entries) {
      if (cursor === undefined) {
        cursor = { seq: entry.seq, firm: true, early: new Set() };
        out.push(entry.item);
        continue;
      }
      if (!cursor.firm && entry.seq <= cursor.seq) {
        if (!cursor.early.has(entry.seq)) {
          cursor.early.add(entry.seq);
          out.push(entry.item);
        }
        continue;
      }
      if (entry.seq <= cursor.seq) continue;
      if (entry.prev !== cursor.seq) {
        const filled = await this.#fill(channel, cursor.seq, entry.seq);
        gap ||= filled.gap || filled.lastSeq !== entry.prev;
        for (const e of filled.entries) out.push(e.item);
      }
      out.push(entry.item);
      cursor = { seq: entry.seq, firm: true, early: new Set() };
    }
    if (cursor !== undefined && this.#interest.wants(channel)) this.#cursors.set(channel, cursor);
    if (gap) this.#sink.gap(channel);
    return out.length === 0 ? 0 : this.#sink.deliver(out);
  }

  /** The channel's stored entries between two sequences, and whether their chain from `afterSeq` is whole. */
  async #fill(channel: string, afterSeq: number, beforeSeq: number): Promise<{ entries: Entry[]; lastSeq: number; gap: boolean }> {
    let entries: Entry[];
    try {
      entries = await this.#fetch(channel, afterSeq, beforeSeq);
    } catch (err) {
      this.#warn({ channel, err: reason(err) }, 'nats bus: could not fetch missed items; reporting a gap');
      return { entries: [], lastSeq: afterSeq, gap: true };
    }
    let lastSeq = afterSeq;
    let gap = false;
    for (const e of entries) {
      if (e.prev !== lastSeq) gap = true;
      lastSeq = e.seq;
    }
    return { entries, lastSeq, gap };
  }

  /** Catches a held channel up after a reconnect: everything stored after the last sequence delivered. */
  async #catchUp(channel: string): Promise<number> {
    const cursor = this.#cursors.get(channel);
    if (cursor === undefined || !this.#interest.wants(channel)) return 0;
    const filled = await this.#fill(channel, cursor.seq, Number.MAX_SAFE_INTEGER);
    if (filled.gap) this.#sink.gap(channel);
    if (filled.entries.length === 0) return 0;
    this.#cursors.set(channel, { seq: filled.lastSeq, firm: true, early: new Set() });
    return this.#sink.deliver(filled.entries.map((e) => e.item));
  }

  /**
   * After an outage, the channels held only through a wildcard prefix that had no cursor (nothing arrived
   * for them before): every item stored under each prefix after its mark, with the live items held back
   * meanwhile, delivered per channel in chain order. A channel's first missed item whose predecessor came
   * after the mark but is no longer stored is a gap.
   */
  async #catchUpPrefixes(): Promise<void> {
    const marks = this.#prefixMarks.outageMarks();
    const missed = new Map<string, Entry[]>();
    try {
      for (const [prefix, mark] of marks ?? []) {
        if (!this.#interest.holdsPrefix(prefix)) continue;
        const subject = prefixSubject(`${this.#deps.prefix}.h`, prefix).subject;
        const entries = await this.#fetchSubject(subject, mark, Number.MAX_SAFE_INTEGER, MAX_PREFIX_CATCH_UP);
        if (entries.length === MAX_PREFIX_CATCH_UP) this.#warn({ prefix, read: entries.length }, 'nats bus: a wildcard catch-up stopped at its limit; later items are reported as gaps');
        for (const e of entries) {
          const channel = e.item.channel;
          if (!channel.startsWith(prefix) || this.#cursors.has(channel)) continue;
          const list = missed.get(channel);
          if (list === undefined) missed.set(channel, [e]);
          else list.push(e);
        }
      }
    } catch (err) {
      this.#warn({ err: reason(err) }, 'nats bus: could not read what wildcard prefixes missed; reporting gaps');
    } finally {
      for (const [channel, live] of this.#prefixMarks.endOutage()) {
        const list = missed.get(channel);
        if (list === undefined) missed.set(channel, live);
        else list.push(...live);
      }
      for (const [channel, list] of missed) {
        const entries = [...new Map(list.map((e) => [e.seq, e])).values()].sort((a, b) => a.seq - b.seq);
        const since = sinceMark(marks, channel);
        void this.#inOrder(channel, () => {
          if (!this.#cursors.has(channel)) {
            const first = entries[0]!;
            if (first.prev > since) this.#sink.gap(channel);
            this.#cursors.set(channel, { seq: first.prev, firm: true, early: new Set() });
          }
          return this.#accept(channel, entries);
        });
      }
    }
  }

  /** A prefix starts now: its mark is the stream's last sequence (what comes after is new to its clients). */
  #markPrefix(prefix: string): void {
    if (this.#state !== 'up') return;
    this.#jsm!.streams.info(this.#stream).then(
      (info) => {
        if (this.#interest.holdsPrefix(prefix)) this.#prefixMarks.start(prefix, info.state.last_seq);
      },
      (err: unknown) => this.#warn({ prefix, err: reason(err) }, 'nats bus: no mark for a wildcard prefix; an outage before its first item is not caught up'),
    );
  }

  /**
   * The first holder's baseline: the channel's last stored sequence when the subscription became active, so a
   * reconnect can catch up from it even if nothing arrived live before the outage.
   */
  #baseline(channel: string): void {
    if (this.#state !== 'up') return;
    void this.#inOrder(channel, async () => {
      if (this.#cursors.has(channel)) return 0;
      try {
        const last = await this.#readLast(channel);
        if (!this.#cursors.has(channel) && this.#interest.wants(channel)) {
          this.#cursors.set(channel, { seq: last?.seq ?? 0, firm: false, early: new Set() });
        }
      } catch (err) {
        this.#warn({ channel, err: reason(err) }, 'nats bus: no baseline for a new subscription');
      }
      return 0;
    });
  }

  // --- engine reads -------------------------------------------------------------------------------------

  async #readLast(channel: string): Promise<LastStored | null> {
    let msg: StoredMsg | null;
    try {
      msg = await this.#jsm!.direct.getMessage(this.#stream, { last_by_subj: this.#historySubject(channel) });
    } catch (err) {
      throw this.#unavailable('a read', err);
    }
    if (msg === null) return null;
    const last = { seq: msg.seq, id: decodeItem(msg.string()).id };
    this.#remember(channel, last, true);
    return last;
  }

  /**
   * Stored entries of a channel with afterSeq < seq < beforeSeq, oldest first: at most what the stream keeps
   * per channel. That limit is the stream's (another node may have set it), not this node's maxItems, so the
   * walk ends at beforeSeq or the channel's end; the cap only guards against a runaway loop.
   */
  #fetch(channel: string, afterSeq: number, beforeSeq: number): Promise<Entry[]> {
    return this.#fetchSubject(this.#historySubject(channel), afterSeq, beforeSeq, 10 * Math.max(1, this.#deps.options.maxItems) + 1_000);
  }

  /** Stored entries on `subject` (a wildcard covers several channels) with afterSeq < seq < beforeSeq, oldest first, at most `cap`. */
  async #fetchSubject(subject: string, afterSeq: number, beforeSeq: number, cap: number): Promise<Entry[]> {
    const out: Entry[] = [];
    let seq = afterSeq;
    for (let i = 0; i < cap; i++) {
      let msg: StoredMsg | null;
      try {
        msg = await this.#jsm!.direct.getMessage(this.#stream, { seq: seq + 1, next_by_subj: subject });
      } catch (err) {
        throw this.#unavailable('a read', err);
      }
      if (msg === null || msg.seq >= beforeSeq) break;
      const payload = msg.string();
      out.push({ item: decodeItem(payload), payload, seq: msg.seq, prev: Number(msg.header.get(PREV_HEADER) || NaN) });
      seq = msg.seq;
    }
    return out;
  }

  // --- subscriptions ------------------------------------------------------------------------------------

  #ref(subject: string): void {
    const known = this.#subs.get(subject);
    if (known !== undefined) {
      known.refs++;
      return;
    }
    const entry: SubscriptionEntry = { sub: null, refs: 1, confirmed: false };
    this.#subs.set(subject, entry);
    if (this.#nc !== null) this.#activate(subject, entry);
  }

  /**
   * SUB is sent now; the gauge counts it once the server answered a flush sent after it, so
   * holdfast_bus_subscriptions says what the engine really has (and a test can wait for it).
   */
  #activate(subject: string, entry: SubscriptionEntry): void {
    const nc = this.#nc!;
    entry.sub = this.#natsSubscribe(subject);
    nc.flush().then(
      () => {
        if (this.#subs.get(subject) !== entry) return;
        entry.confirmed = true;
        this.#countSubscriptions();
      },
      (err: unknown) => this.#warn({ subject, err: reason(err) }, 'nats bus: a subscription was not confirmed'),
    );
  }

  #countSubscriptions(): void {
    let n = 0;
    for (const entry of this.#subs.values()) if (entry.confirmed) n++;
    this.#deps.metrics.busSubscriptions.set(n);
  }

  #unref(subject: string): void {
    const entry = this.#subs.get(subject);
    if (entry === undefined) return;
    if (--entry.refs > 0) return;
    this.#subs.delete(subject);
    if (entry.sub !== null && this.#nc !== null && !this.#nc.isClosed()) entry.sub.unsubscribe();
    this.#countSubscriptions();
  }

  #natsSubscribe(subject: string): Subscription {
    return this.#nc!.subscribe(subject, { callback: (err, msg) => this.#onSubscriptionMessage(err, msg) });
  }

  #onSubscriptionMessage(err: Error | null, msg: Msg): void {
    if (err !== null) {
      this.#warn({ err: reason(err) }, 'nats bus: subscription error');
      return;
    }
    this.#onLive(msg);
  }

  #watch(channel: string): void {
    if (this.#watched.has(channel)) return;
    this.#watched.add(channel);
    this.#ref(this.#liveSubject(channel));
  }

  #unwatch(channel: string): void {
    if (!this.#watched.delete(channel)) return;
    this.#unref(this.#liveSubject(channel));
  }

  // --- connection state ---------------------------------------------------------------------------------

  async #watchStatus(nc: NatsConnection): Promise<void> {
    const { log, url } = this.#deps;
    for await (const status of nc.status()) {
      if (this.#state === 'closed') return;
      if (status.type === 'disconnect' || status.type === 'staleConnection') {
        if (this.#state === 'up') log.warn({ bus: redact(url), event: status.type }, 'nats bus: connection lost, reconnecting');
        this.#setState('connecting');
        this.#prefixMarks.lost();
      } else if (status.type === 'reconnect') {
        this.#deps.metrics.busReconnects.inc();
        this.#setState('up');
        log.info({ bus: redact(url), channels: this.#cursors.size }, 'nats bus: reconnected; catching up held channels');
        // Subscriptions are renewed by the client; what was stored meanwhile comes from the stream.
        for (const channel of [...this.#cursors.keys()]) void this.#inOrder(channel, () => this.#catchUp(channel));
        void this.#catchUpPrefixes();
        for (const { channel, prefix } of this.#interest.entries()) if (prefix) this.#markPrefix(channel);
      } else if (status.type === 'error') {
        log.warn({ err: reason(status.error) }, 'nats bus: server error');
      }
    }
  }

  /** After close, whatever the client still settles (a flush, a task) is not news, and the log may be gone. */
  #warn(fields: Record<string, unknown>, message: string): void {
    if (this.#state !== 'closed') this.#deps.log.warn(fields, message);
  }

  #setState(state: BusState): void {
    const changed = state !== this.#state;
    this.#state = state;
    this.#deps.metrics.busUp.set({ driver: 'nats' }, state === 'up' ? 1 : 0);
    if (changed) this.#sink.stateChanged?.(state);
  }

  #assertUp(): void {
    // nats.js buffers core publishes while reconnecting; a publish must fail now instead (issue 11).
    if (this.#state !== 'up') throw new BusUnavailableError('nats', this.#state === 'closed' ? 'closed' : `not connected to ${redact(this.#deps.url)}`);
  }

  #unavailable(what: string, err: unknown): BusUnavailableError {
    if (err instanceof BusUnavailableError) return err;
    return new BusUnavailableError('nats', `${what} on ${redact(this.#deps.url)} failed: ${reason(err)}`, err);
  }

  // --- helpers ------------------------------------------------------------------------------------------

  #inOrder(channel: string, task: () => Promise<number>): Promise<number> {
    const previous = this.#chains.get(channel) ?? Promise.resolve();
    const run = previous.then(task);
    const tail = run.then(
      () => undefined,
      (err: unknown) => this.#warn({ channel, err: reason(err) }, 'nats bus: delivery task failed'),
    );
    this.#chains.set(channel, tail);
    void tail.then(() => {
      if (this.#chains.get(channel) === tail) this.#chains.delete(channel);
    });
    return run;
  }

  /** `authoritative`: read from the stream itself, so it replaces a newer-looking cache (a recreated stream). */
  #remember(channel: string, last: LastStored, authoritative = false): void {
    const known = this.#lastStored.get(channel);
    if (!authoritative && known !== undefined && known.seq >= last.seq) return;
    this.#lastStored.delete(channel);
    this.#lastStored.set(channel, last);
    if (this.#lastStored.size > MAX_CACHED_LAST) this.#lastStored.delete(this.#lastStored.keys().next().value!);
  }

  #historySubject(channel: string): string {
    return `${this.#deps.prefix}.h.${encodeChannel(channel)}`;
  }

  #liveSubject(channel: string): string {
    return `${this.#deps.prefix}.ch.${encodeChannel(channel)}`;
  }
}

/** The lowest outage mark of the prefixes `channel` falls under: items after it were missed. */
function sinceMark(marks: ReadonlyMap<string, number> | null, channel: string): number {
  let since = Number.MAX_SAFE_INTEGER;
  for (const [prefix, mark] of marks ?? []) if (channel.startsWith(prefix) && mark < since) since = mark;
  return since;
}

function groupByChannel(entries: readonly Entry[]): Map<string, Entry[]> {
  const out = new Map<string, Entry[]>();
  for (const e of entries) {
    const list = out.get(e.item.channel);
    if (list === undefined) out.set(e.item.channel, [e]);
    else list.push(e);
  }
  for (const list of out.values()) list.sort((a, b) => a.seq - b.seq);
  return out;
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The URL without credentials, for logs and errors. */
function redact(url: URL): string {
  return `${url.protocol}//${url.host}`;
}
