import type { ServerResponse } from 'node:http';
import type { Bus, BusSink } from '../bus/bus.js';
import type { HoldfastConfig } from '../config/schema.js';
import { dropHeldClientOnFin } from '../http/client-fin.js';
import type { SendStallWatch } from '../http/send-stall.js';
import { releaseParserForStream } from '../http/stream-takeover.js';
import { HoldfastError } from '../errors.js';
import { headerValue, isGripResponse, parseInstruct, type ChannelSubscription, type Instruct, type KeepAlive } from '../grip/instruct.js';
import type { PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { ChannelIndex } from './channel-index.js';
import { GripResponseReader, type GripReaderOwner } from './grip-reader.js';
import type { HeldClient, HoldHost, HoldOrigin, Transport } from './held-client.js';
import type { LinkFetcher, LinkResponse } from './links.js';
import { ResponseHold } from './response-hold.js';
import { SlicedDeliveries } from './sliced-deliveries.js';
import { StreamHold } from './stream-hold.js';
import { TimerWheel } from '../util/timer-wheel.js';

/** Headers a held stream's head never carries: the stream is open-ended, Node frames it. */
const STREAM_DROPPED = new Set(['content-length', 'transfer-encoding']);
const TICK_MS = 250;
const TRANSPORTS: readonly Transport[] = ['sse', 'stream', 'response', 'ws'];

/** What the manager needs of the request a hold starts from (the proxy exchange). */
export interface HoldRequest extends HoldOrigin {
  readonly res: ServerResponse;
  /** Last-Event-ID from the header or `lastEventId` query parameter, for SSE replay. */
  readonly lastEventId: string | undefined;
}

export interface HoldManagerDeps {
  config: HoldfastConfig;
  metrics: Metrics;
  log: Logger;
  bus: Bus;
  links: LinkFetcher;
  sendStall: SendStallWatch;
}

class HoldLimitError extends HoldfastError {
  constructor(message: string) {
    super('HF_ERR_HOLD_LIMIT', 502, message);
  }
}

/**
 * Owns every held client on this node: turns GRIP instructions into holds, keeps the channel index and the
 * bus subscriptions in step with it, delivers published items, replays history, runs the shared timer
 * wheel, and follows next/gone links through the proxy.
 */
export class HoldManager implements HoldHost, BusSink {
  readonly index = new ChannelIndex<HeldClient>();
  readonly wheel: TimerWheel<HeldClient>;
  readonly maxQueuedBytes: number;
  readonly sendStall: SendStallWatch;
  draining = false;
  readonly #deps: HoldManagerDeps;
  readonly #held = new Set<HeldClient>();
  readonly #sseHeartbeat: KeepAlive | null;
  /** Deliveries per transport since the last flush to the counter (a record, not a Map: no hashing per delivery). */
  readonly #deliveryTally: Record<Transport, number> = { sse: 0, stream: 0, response: 0, ws: 0 };
  readonly #deliveries: SlicedDeliveries<HeldClient>;
  #tallyFlushQueued = false;

  constructor(deps: HoldManagerDeps) {
    this.#deps = deps;
    const push = deps.config.push;
    this.maxQueuedBytes = push.maxQueuedBytesPerConnection;
    this.sendStall = deps.sendStall;
    this.#sseHeartbeat =
      push.sseHeartbeatMs > 0 ? { data: Buffer.from(':\n\n'), timeoutSec: push.sseHeartbeatMs / 1000, mode: 'idle' } : null;
    this.wheel = new TimerWheel<HeldClient>(TICK_MS, (client) => client.onDue(Date.now()));
    this.#deliveries = new SlicedDeliveries(push.deliverSliceSize, deps.log);
    deps.bus.setSink(this);
  }

  get heldCount(): number {
    return this.#held.size;
  }

  /** A backend answered with GRIP instructions: read them on behalf of `owner`. */
  readResponse(owner: GripReaderOwner, code: number, reason: string, headers: string[]): GripResponseReader {
    return new GripResponseReader(this, owner, code, reason, headers, this.#deps.config.push.maxResponseHoldBodyBytes);
  }

  /** Validates limits a backend's instruction must respect; throws naming the limit. */
  checkInstruct(instruct: Instruct): void {
    const { maxChannelsPerConnection } = this.#deps.config.push;
    if (instruct.channels.length > maxChannelsPerConnection) {
      throw new HoldLimitError(
        `the backend asked for ${instruct.channels.length} channels, over push.maxChannelsPerConnection (${maxChannelsPerConnection})`,
      );
    }
  }

  /** Opens a stream hold: head out now, initial body streamed by the caller, then `activate`. */
  openStream(request: HoldRequest, instruct: Instruct): StreamHold {
    this.checkInstruct(instruct);
    const contentType = headerValue(instruct.response.headers, 'content-type') ?? '';
    const sse = contentType.split(';')[0]!.trim().toLowerCase() === 'text/event-stream';
    const stream = new StreamHold(this, request.res, request, instruct, sse, this.#sseHeartbeat);
    const headers: string[] = [];
    const source = instruct.response.headers;
    for (let i = 0; i < source.length; i += 2) {
      if (!STREAM_DROPPED.has(source[i]!.toLowerCase())) headers.push(source[i]!, source[i + 1]!);
    }
    if (this.draining) headers.push('connection', 'close');
    if (instruct.response.reason) request.res.writeHead(instruct.response.code, instruct.response.reason, headers);
    else request.res.writeHead(instruct.response.code, headers);
    // A stream must reach the client now, not when the first message comes.
    request.res.flushHeaders();
    return stream;
  }

  /** A complete GRIP response (JSON instruct, long-poll, or a stream whose body was buffered). */
  startFromInstruct(request: HoldRequest, instruct: Instruct): void {
    if (instruct.hold === 'stream') {
      const stream = this.openStream(request, instruct);
      stream.write(instruct.response.body);
      this.activate(stream, request.lastEventId);
      return;
    }
    if (instruct.hold === 'response') {
      this.checkInstruct(instruct);
      const hold = new ResponseHold(this, request.res, request, instruct, Date.now());
      this.activate(hold, undefined);
      return;
    }
    if (instruct.nextLink !== null) {
      // No hold but a next link: a paged stream. The client gets each page as the backend answers it.
      const stream = this.openStream(request, instruct);
      stream.write(instruct.response.body);
      this.activate(stream, undefined);
      this.fetchNext(stream, 'idle');
      return;
    }
    // GRIP headers without a hold: an ordinary answer, minus the instructions.
    relayPlain(request.res, instruct, this.draining);
  }

  /** Subscribe, replay what the client missed, arm timers. */
  activate(client: HeldClient, lastEventId: string | undefined): void {
    if (client.res.destroyed) return;
    if (client instanceof StreamHold || client instanceof ResponseHold) {
      dropHeldClientOnFin(client.res.socket);
      if (client.res.destroyed) return;
    }
    this.#held.add(client);
    this.#deps.metrics.heldConnections.inc({ transport: client.transport });
    for (const channel of client.channels) this.#subscribeChannel(client, channel.name);
    this.#updateGauges();
    if (client instanceof StreamHold) {
      // Nothing more will be parsed on a held stream's connection: give Node's parser back (memory per held stream).
      releaseParserForStream(client.res);
      client.armTimers(Date.now(), false);
    }
    else this.reschedule(client);
    const wantsReplay = client.channels.some((c) => c.prevId !== undefined) || lastEventId !== undefined;
    if (wantsReplay) {
      client.replayBuffer = [];
      this.#replay(client, lastEventId).catch((err: unknown) => {
        this.#deps.log.warn({ err }, 'replay failed');
        this.#flushReplayBuffer(client, new Set());
      });
    }
  }

  /**
   * The bus sink: published items to every local holder of their channels, one write per client. Who
   * receives is decided now (a snapshot of the channels' holders, see ChannelIndex.snapshot); the writes go
   * out in slices of `push.deliverSliceSize` clients per turn of the event loop, so a broadcast to 20k
   * sockets no longer keeps the control listener, timers and other clients waiting for its whole length.
   * Deliveries run one after another in call order, so no client sees a later publish before an earlier one.
   */
  deliver(items: readonly PublishItem[]): Promise<number> {
    const clients = this.index.snapshot(items.map((item) => item.channel));
    // One item: corking would only add work. Several: one write per client for all of them.
    const visit = items.length === 1 ? receiveOne.bind(null, items[0]!) : receiveBatch.bind(null, items);
    return this.#deliveries.run(clients, visit);
  }

  /** The bus lost items of `channel` it cannot replay: its SSE clients get the gap event (in turn with deliveries). */
  gap(channel: string): void {
    void this.#deliveries.run(this.index.snapshot([channel]), (client) => {
      if (client instanceof StreamHold && client.transport === 'sse' && !client.closed) this.#sendGap(client, channel, '');
      return 0;
    });
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

  reschedule(client: HeldClient): void {
    const due = client.nextDueMs();
    if (due === Infinity || client.closed) this.wheel.cancel(client);
    else this.wheel.schedule(client, due);
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

  #flushDeliveryTally(): void {
    this.#tallyFlushQueued = false;
    const tally = this.#deliveryTally;
    for (const transport of TRANSPORTS) {
      if (tally[transport] === 0) continue;
      this.#deps.metrics.deliveries.inc({ transport }, tally[transport]);
      tally[transport] = 0;
    }
  }

  countDrop(reason: string): void {
    this.#deps.metrics.drops.inc({ reason });
  }

  release(client: HeldClient, clientGone: boolean): void {
    if (client.closed) return;
    client.closed = true;
    this.wheel.cancel(client);
    if (this.#held.delete(client)) this.#deps.metrics.heldConnections.dec({ transport: client.transport });
    for (const channel of client.channels) this.#unsubscribeChannel(client, channel.name);
    this.#updateGauges();
    if (clientGone && client.goneLink !== null) {
      const link = client.goneLink;
      this.#deps.links.fetch(link, client.origin, 'POST').catch((err: unknown) => {
        this.#deps.log.warn({ link, err: (err as Error).message }, 'gone link failed');
      });
    }
  }

  fetchNext(client: HeldClient, reason: 'idle' | 'recover' | 'hint'): void {
    if (client.nextLink === null || client.fetching || client.closed) return;
    client.fetching = true;
    const gripLast: string[] = [];
    for (const c of client.channels) {
      if (c.prevId !== undefined) gripLast.push('grip-last', `${c.name}; last-id=${c.prevId}`);
    }
    const link = client.nextLink.url;
    this.#deps.links
      .fetch(link, client.origin, 'GET', gripLast)
      .then((response) => this.#applyLinkResponse(client, response))
      .catch((err: unknown) => {
        this.#deps.log.warn({ link, reason, err: (err as Error).message }, 'next link failed');
        if (client instanceof StreamHold) client.end();
      })
      .finally(() => {
        client.fetching = false;
      });
  }

  refetch(client: HeldClient): void {
    if (client.fetching || client.closed) return;
    client.fetching = true;
    this.#deps.links
      .fetch(client.origin.target, client.origin, 'GET')
      .then((response) => this.#applyLinkResponse(client, response))
      .catch((err: unknown) => {
        this.#deps.log.warn({ target: client.origin.target, err: (err as Error).message }, 'hint refetch failed');
      })
      .finally(() => {
        client.fetching = false;
      });
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

  #applyLinkResponse(client: HeldClient, response: LinkResponse): void {
    if (client.closed) return;
    const grip = isGripResponse(response.headers);
    let instruct: Instruct | null = null;
    if (grip) {
      try {
        instruct = parseInstruct(response.status, response.reason, response.headers, response.body);
        this.checkInstruct(instruct);
      } catch (err) {
        this.#deps.log.warn({ err: (err as Error).message }, 'invalid instruction from a link');
        if (client instanceof StreamHold) client.end();
        return;
      }
    }
    if (client instanceof StreamHold) {
      if (response.status < 200 || response.status >= 300) return client.end();
      client.write(instruct?.response.body ?? response.body);
      if (instruct === null || (instruct.hold === null && instruct.nextLink === null)) return client.end();
      this.#resubscribe(client, instruct);
      client.update(instruct);
      client.armTimers(Date.now(), true);
      // Another page without a hold: keep paging at once rather than after an idle timeout.
      if (instruct.hold === null) queueMicrotask(() => this.fetchNext(client, 'idle'));
      return;
    }
    if (client instanceof ResponseHold) {
      if (instruct !== null && instruct.hold === 'response') {
        this.#resubscribe(client, instruct);
        client.channels = instruct.channels;
        return;
      }
      const r = instruct?.response ?? { code: response.status, reason: response.reason, headers: response.headers, body: response.body };
      client.respond(r.code, r.reason, r.headers, [], r.body);
    }
  }

  #resubscribe(client: HeldClient, instruct: Instruct): void {
    if (instruct.channels.length === 0) return;
    for (const c of client.channels) this.#unsubscribeChannel(client, c.name);
    for (const c of instruct.channels) this.#subscribeChannel(client, c.name);
    this.#updateGauges();
  }

  async #replay(client: HeldClient, lastEventId: string | undefined): Promise<void> {
    const replayedIds = new Set<string>();
    let needsNext = false;
    let foundAny = false;
    /** Channels whose history no longer has the client's Last-Event-ID, with what they still retain. */
    const gaps: { channel: string; retained: PublishItem[] }[] = [];
    const replay = (items: readonly PublishItem[]): boolean => {
      for (const item of items) {
        if (client.closed) return false;
        if (client.deliverReplayed(item)) {
          this.#deps.metrics.replayed.inc();
          if (item.id !== undefined) replayedIds.add(item.id);
        }
      }
      return !client.closed;
    };
    for (const channel of client.channels) {
      if (channel.name.endsWith('.*')) continue;
      const afterId = channel.prevId ?? lastEventId;
      if (afterId === undefined) continue;
      const history = await this.#deps.bus.history(channel.name, afterId);
      if (!history.found) {
        if (channel.prevId !== undefined) needsNext = true;
        else gaps.push({ channel: channel.name, retained: history.items });
        continue;
      }
      foundAny = true;
      if (!replay(history.items)) return;
    }
    if (client.closed) return;
    // The client's last event is older than the history (or from before a restart): say so instead of
    // silently skipping data, then send what the history still has; clients that track ids skip repeats.
    // When the id was found in another of its channels, the client's position is known there and the
    // other channels' retained items would be guesses: they are left out, as before.
    if (!foundAny && lastEventId !== undefined) {
      for (const gap of gaps) {
        if (client instanceof StreamHold && client.transport === 'sse') this.#sendGap(client, gap.channel, lastEventId);
        if (!replay(gap.retained)) return;
      }
    }
    if (needsNext && client.nextLink !== null) this.fetchNext(client, 'recover');
    this.#flushReplayBuffer(client, replayedIds);
  }

  #sendGap(client: StreamHold, channel: string, lastEventId: string): void {
    const event = this.#deps.config.push.sseGapEvent
      .replaceAll('{channel}', jsonEscape(channel))
      .replaceAll('{lastEventId}', jsonEscape(lastEventId));
    client.write(Buffer.from(event, 'utf8'));
    this.countDrop('history_gap');
  }

  #flushReplayBuffer(client: HeldClient, replayedIds: ReadonlySet<string>): void {
    const buffered = client.replayBuffer ?? [];
    client.replayBuffer = null;
    for (const item of buffered) {
      if (item.id !== undefined && replayedIds.has(item.id)) continue;
      client.receive(item);
    }
  }

  #subscribeChannel(client: HeldClient, name: string): void {
    const wildcard = this.#deps.config.push.wildcardChannels && name.endsWith('.*');
    const key = wildcard ? name.slice(0, -1) : name;
    if (this.index.add(client, key, wildcard)) this.#deps.bus.subscribe(key, wildcard);
  }

  #unsubscribeChannel(client: HeldClient, name: string): void {
    const wildcard = this.#deps.config.push.wildcardChannels && name.endsWith('.*');
    const key = wildcard ? name.slice(0, -1) : name;
    if (this.index.remove(client, key, wildcard)) this.#deps.bus.unsubscribe(key, wildcard);
  }

  #updateGauges(): void {
    this.#deps.metrics.subscriptions.set(this.index.subscriptionCount);
    this.#deps.metrics.channels.set(this.index.channelCount);
  }
}

/** GRIP headers but no hold: the client gets the response as an ordinary one, minus the instructions. */
function relayPlain(res: ServerResponse, instruct: Instruct, draining: boolean): void {
  const headers: string[] = [];
  const source = instruct.response.headers;
  for (let i = 0; i < source.length; i += 2) {
    const lower = source[i]!.toLowerCase();
    if (lower !== 'content-length' && lower !== 'transfer-encoding') headers.push(source[i]!, source[i + 1]!);
  }
  if (draining) headers.push('connection', 'close');
  headers.push('content-length', String(instruct.response.body.length));
  if (instruct.response.reason) res.writeHead(instruct.response.code, instruct.response.reason, headers);
  else res.writeHead(instruct.response.code, headers);
  res.end(res.req.method === 'HEAD' ? undefined : instruct.response.body);
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

function jsonEscape(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
