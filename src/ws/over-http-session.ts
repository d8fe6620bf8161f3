import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import type { HoldfastConfig } from '../config/schema.js';
import { rawErrorResponse } from '../http/error-response.js';
import { resetConnection, type SendStallWatch } from '../http/send-stall.js';
import { ClientRequestError, E, UpstreamError, type HoldfastError } from '../errors.js';
import { GRIP_FEATURES } from '../grip/features.js';
import type { WsMessageFormat } from '../grip/publish-items.js';
import type { GripSigner } from '../grip/sig.js';
import type { HoldRegistry } from '../hold/hold-registry.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import { WsHold, type WsHoldSocket } from '../hold/ws-hold.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { clientProto, rawHeaderValue, upstreamRequestHeaders } from '../http/headers.js';
import type { BufferedResponse, GroupSender } from '../proxy/group-sender.js';
import type { Backend } from '../proxy/upstream.js';
import { parseControlMessage, type ControlMessage } from './control-messages.js';
import { PingPong, type WsTimed } from './liveness.js';
import type { WsUpstream } from './ws-upstream.js';
import {
  WEBSOCKET_EVENTS,
  WsEventsError,
  closeContent,
  decodeEvents,
  encodeEvents,
  parseCloseContent,
  sendableCloseCode,
  type WsEvent,
} from './websocket-events.js';

/** What a session needs of the router that owns it. */
export interface SessionHost {
  readonly config: HoldfastConfig;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly signer: GripSigner;
  readonly holds: HoldRegistry;
  readonly sendStall: SendStallWatch;
  readonly sender: GroupSender;
  readonly wheel: TimerWheel<WsTimed>;
  readonly wss: WebSocketServer;
  sessionClosed(session: OverHttpSession): void;
}

/** Pushpin's numbers (src/proxy/websocketoverhttp.cpp). */
const RESPONSE_BODY_MAX_BYTES = 1_000_000;
const REJECT_BODY_MAX_BYTES = 100_000;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX = 5;
const RETRY_JITTER_MS = 1_000;
const KEEP_ALIVE_MIN_SEC = 20;

/** Headers of the client's handshake never replayed to the backend (Pushpin's sanitizeRequestHeaders). */
const NOT_REPLAYED = new Set(['accept', 'connection-id', 'content-length', 'content-type', 'sec-websocket-extensions']);
/** Headers of the backend's OPEN answer that are ours, not the client's. */
const NOT_RELAYED_ON_ACCEPT = new Set([
  'content-type',
  'content-length',
  'keep-alive-interval',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'sec-websocket-accept',
  'upgrade',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'date',
]);

type State = 'opening' | 'open' | 'closing' | 'closed';
/** Why we closed (or are closing) the client; decides what the backend is told. */
type CloseCause = 'backend' | 'policy' | 'drain' | 'dead' | 'error' | null;

export type SessionRequest = IncomingMessage & { holdfastProtocol?: string; holdfastHeaders?: string[] };
type SessionSocket = WebSocket & { [kSession]?: OverHttpSession };
const kSession = Symbol('holdfast.wsSession');

/** A keep-alive the backend asked for with a `keep-alive` control message. */
interface ClientKeepAlive {
  type: 'text' | 'binary' | 'ping' | 'pong';
  content: Buffer;
  timeoutMs: number;
  mode: 'idle' | 'interval';
}

/**
 * One WebSocket terminated here for a backend that only speaks HTTP (GRIP.md §4, Pushpin's
 * WebSocket-over-HTTP). Client events are batched into `application/websocket-events` POSTs, one in flight
 * at a time so the backend sees them in order; what arrives while one is in flight goes in the next. The
 * backend answers with events for the client, `Set-Meta-*`, `Keep-Alive-Interval`, and, once it accepted
 * with `Sec-WebSocket-Extensions: grip`, control messages that subscribe the socket to channels. Failed
 * POSTs that provably never reached the backend are retried with exponential backoff. A protocol state
 * machine, kept whole.
 */
export class OverHttpSession implements WsTimed, WsHoldSocket {
  wheelDueMs = 0;
  wheelSlot: Set<WsTimed> | null = null;
  readonly id = randomUUID();
  readonly host: SessionHost;
  readonly req: SessionRequest;
  readonly upstream: WsUpstream;
  /** The upstream target (after the route's rewrites): every POST goes there. */
  readonly target: string;
  state: State = 'opening';
  ws: SessionSocket | null = null;
  /** Connection metadata (Meta-* to the backend, Set-Meta-* and set-meta from it, filters on publish). */
  readonly meta: Record<string, string> = {};
  /** The backend accepted with the grip extension: control messages and prefixed messages. */
  grip = false;
  messagePrefix = 'm:';
  hold: WsHold | null = null;
  /** After a `detach` control message the backend is no longer told anything. */
  detached = false;
  /** The client's socket until ws takes it over at accept. */
  #socket: Socket | null;
  /** The TCP connection under the WebSocket, for its whole life. */
  readonly #tcp: Socket;
  #head: Buffer;
  readonly #clientAddress: string;
  #baseHeaders: string[] | null = null;
  #queue: WsEvent[] = [];
  #queuedBytes = 0;
  #inFlight: WsEvent[] | null = null;
  #retries = 0;
  #retryDueMs = Infinity;
  #keepAliveIntervalMs = 0;
  #keepAliveDueMs = Infinity;
  #clientKeepAlive: ClientKeepAlive | null = null;
  #clientKeepAliveDueMs = Infinity;
  #pingPong: PingPong | null = null;
  #closeCause: CloseCause = null;
  /** The backend was told the end (CLOSE or DISCONNECT), or cannot be told anything any more. */
  #backendDone = false;
  #clientGone = false;
  /** Graceful drain started. */
  #goingAway = false;

  constructor(host: SessionHost, req: IncomingMessage, socket: Socket, head: Buffer, upstream: WsUpstream, clientAddress: string) {
    this.host = host;
    this.req = req;
    this.#socket = socket;
    this.#tcp = socket;
    this.#head = head;
    this.upstream = upstream;
    this.target = upstream.target;
    this.#clientAddress = clientAddress;
    socket.on('error', preAcceptSocketOnError);
    socket.once('close', preAcceptSocketOnClose);
    (socket as Socket & { [kSession]?: OverHttpSession })[kSession] = this;
  }

  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /** Send OPEN; the handshake is answered when the backend has. */
  start(): void {
    this.#queue.push({ type: 'OPEN', content: null });
    this.#flush();
  }

  // --- client side ---------------------------------------------------------------------------------

  #accept(responseHeaders: string[]): void {
    const socket = this.#socket!;
    socket.off('error', preAcceptSocketOnError);
    socket.off('close', preAcceptSocketOnClose);
    this.#socket = null;
    const protocol = headerIn(responseHeaders, 'sec-websocket-protocol');
    if (protocol !== undefined) this.req.holdfastProtocol = protocol.trim();
    const relayed: string[] = [];
    for (let i = 0; i < responseHeaders.length; i += 2) {
      const lower = responseHeaders[i]!.toLowerCase();
      if (NOT_RELAYED_ON_ACCEPT.has(lower) || lower.startsWith('set-meta-')) continue;
      relayed.push(responseHeaders[i]!, responseHeaders[i + 1]!);
    }
    this.req.holdfastHeaders = relayed;
    const head = this.#head;
    this.#head = EMPTY;
    this.host.wss.handleUpgrade(this.req, socket, head, (ws) => this.#onAccepted(ws));
  }

  #onAccepted(ws: SessionSocket): void {
    this.ws = ws;
    ws[kSession] = this;
    this.state = 'open';
    const { metrics, config } = this.host;
    metrics.wsConnectionsTotal.inc({ mode: 'over-http' });
    metrics.wsConnections.inc({ mode: 'over-http' });
    ws.on('message', wsOnMessage);
    ws.on('ping', wsOnPing);
    ws.on('pong', wsOnPong);
    ws.on('close', wsOnClose);
    ws.on('error', wsOnError);
    const now = Date.now();
    if (config.websocket.pingIntervalMs > 0) {
      this.#pingPong = new PingPong(config.websocket.pingIntervalMs, config.websocket.pongTimeoutMs, now);
    }
    this.#reschedule();
  }

  onClientMessage(data: Buffer, isBinary: boolean): void {
    if (this.#pingPong !== null) this.#pingPong.heard = true;
    this.host.metrics.wsMessages.inc({ direction: 'in' });
    if (this.detached || this.state !== 'open') return;
    this.#enqueue({ type: isBinary ? 'BINARY' : 'TEXT', content: data });
  }

  onClientPing(data: Buffer): void {
    if (this.#pingPong !== null) this.#pingPong.heard = true;
    // ws answered it already (autoPong); the backend hears of it as Pushpin's backends do.
    if (this.detached || this.state !== 'open') return;
    this.#enqueue({ type: 'PING', content: data.length > 0 ? data : null });
  }

  onClientPong(): void {
    // Pongs answer our liveness pings; they are not the backend's business.
    if (this.#pingPong === null) return;
    this.#pingPong.pong(Date.now());
    this.#reschedule();
  }

  onClientClose(code: number, reason: Buffer): void {
    this.#clientGone = true;
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.host.metrics.wsConnections.dec({ mode: 'over-http' });
    if (this.hold !== null) this.host.holds.release(this.hold, true);
    if (this.detached) this.#backendDone = true;
    if (!this.#backendDone && !this.#sentOrQueuedEnd()) {
      const cause = this.#closeCause;
      if (cause === 'backend') {
        // The backend closed; the client answered. Pushpin acknowledges with the client's CLOSE.
        this.#queue.push({ type: 'CLOSE', content: closeContent(sendableCloseCode(code), reason.toString('utf8')) });
      } else if (cause === null && code !== 1005 && code !== 1006) {
        this.#queue.push({ type: 'CLOSE', content: closeContent(code, reason.toString('utf8')) });
      } else {
        // No close handshake (the client vanished), or we cut it (limits, liveness): the backend gets DISCONNECT.
        this.#queue.push({ type: 'DISCONNECT', content: null });
      }
    }
    this.#flush();
    this.#maybeFinish();
  }

  onClientError(err: Error & { code?: string }): void {
    // ws closes the socket itself after a protocol error (1002), a message over maxPayload (1009), bad UTF-8
    // (1007); the close event follows. Count what it was.
    const code = WS_ERROR_CLOSE_CODES[err.code ?? ''];
    if (code !== undefined) this.host.metrics.wsClosedByPolicy.inc({ code: String(code) });
    this.#closeCause ??= 'policy';
    this.host.log.info({ connectionId: this.id, code: err.code }, `WebSocket client error: ${err.message}`);
  }

  /** Close the client with a code of ours (limits, backend failure, drain). */
  closeClient(code: number, reason: string, cause: Exclude<CloseCause, null>): void {
    this.#closeCause ??= cause;
    const ws = this.ws;
    if (ws === null) return;
    if (cause !== 'backend') this.host.metrics.wsClosedByPolicy.inc({ code: String(code) });
    ws.close(code, reason);
  }

  // --- backend -> client ---------------------------------------------------------------------------

  #applyEvents(events: WsEvent[], backend: Backend): void {
    for (const e of events) {
      if (this.state !== 'open') return;
      switch (e.type) {
        case 'TEXT':
        case 'BINARY':
          this.#fromBackend(e.content ?? EMPTY, e.type === 'BINARY');
          break;
        case 'PING':
          this.ws!.ping(e.content ?? EMPTY);
          break;
        case 'PONG':
          this.ws!.pong(e.content ?? EMPTY);
          break;
        case 'CLOSE': {
          const { code, reason } = parseCloseContent(e.content);
          this.closeClient(sendableCloseCode(code), reason, 'backend');
          return;
        }
        case 'DISCONNECT':
          this.#backendDone = true;
          this.ws!.terminate();
          return;
        case 'OPEN':
          // Only the first answer may open; a second OPEN is a broken backend.
          this.#onBackendBroken(backend, new WsEventsError('OPEN in a session already open'));
          return;
      }
    }
  }

  #fromBackend(content: Buffer, binary: boolean): void {
    if (!this.grip) {
      this.#sendToClient(content, binary);
      return;
    }
    // Pushpin (wsproxysession.cpp): `c:` text messages are control messages, other messages must carry the
    // prefix, which is stripped; unprefixed messages are dropped.
    if (!binary && content.length >= 2 && content[0] === 0x63 && content[1] === 0x3a) {
      this.#control(content.subarray(2));
      return;
    }
    const prefix = this.messagePrefix;
    if (content.length < prefix.length || content.toString('latin1', 0, prefix.length) !== prefix) {
      this.host.log.debug({ connectionId: this.id }, 'dropping unprefixed message from a GRIP backend');
      return;
    }
    this.#sendToClient(content.subarray(prefix.length), binary);
  }

  #sendToClient(content: Buffer, binary: boolean): boolean {
    const ws = this.ws;
    if (ws === null || this.state !== 'open') return false;
    ws.send(content, { binary });
    this.host.metrics.wsMessages.inc({ direction: 'out' });
    // Idle keep-alive: only the due time moves; the wheel entry fires at the old one and re-arms (lazy).
    if (this.#clientKeepAlive?.mode === 'idle') this.#clientKeepAliveDueMs = Date.now() + this.#clientKeepAlive.timeoutMs;
    // Inside a corked publish batch every byte counts as queued however fast the client reads; the hold
    // manager checks once it uncorks (WsHold.checkSlowConsumer).
    if (this.#tcp.writableCorked === 0) {
      if (ws.bufferedAmount > this.host.config.websocket.maxQueuedBytes) {
        this.closeClient(1008, 'send queue full', 'policy');
        return false;
      }
      this.host.sendStall.noteWrite(this.#tcp, this);
    }
    return true;
  }

  /**
   * The client has not read what it was sent for timeouts.sendStallMs. A close frame would only join the
   * stuck queue (and ws waits 30 s for the handshake), so the TCP connection is cut; the backend hears
   * DISCONNECT. A subscribed socket counts as a dropped held client, as SSE does.
   */
  onSendStall(): string {
    if (this.hold !== null) this.host.holds.counters.countDrop('drain_timeout');
    else this.host.metrics.clientErrorsTotal.inc({ code: E.SEND_TIMEOUT.code });
    this.#closeCause ??= 'dead';
    // ws's terminate() would close with a FIN and leave the kernel's buffers to an orphaned socket.
    resetConnection(this.#tcp, this.#tcp);
    return 'ws';
  }

  /** A published ws-message item for this socket (through WsHold). */
  sendPublished(format: WsMessageFormat): boolean {
    const ws = this.ws;
    if (ws === null || this.state !== 'open') return false;
    switch (format.action) {
      case 'close':
        this.closeClient(sendableCloseCode(format.code), format.reason ?? '', 'backend');
        return true;
      case 'refresh':
        // Pushpin: ask the backend now, as a keep-alive would.
        if (this.#inFlight === null && !this.detached) this.#post([]);
        return true;
      case 'send':
        break;
    }
    const content = format.content ?? EMPTY;
    switch (format.type) {
      case 'ping':
        ws.ping(content);
        return true;
      case 'pong':
        ws.pong(content);
        return true;
      default:
        return this.#sendToClient(content, format.type === 'binary');
    }
  }

  #control(json: Buffer): void {
    let message: ControlMessage;
    try {
      message = parseControlMessage(json);
    } catch (err) {
      this.host.log.info({ connectionId: this.id, err: (err as Error).message }, 'invalid GRIP control message ignored');
      return;
    }
    const holds = this.host.holds;
    switch (message.type) {
      case 'subscribe': {
        const hold = (this.hold ??= this.#openHold(holds));
        const max = this.host.config.push.maxChannelsPerConnection;
        if (!hold.isSubscribedTo(message.channel) && hold.channels.length >= max) {
          this.host.log.warn({ connectionId: this.id, channel: message.channel, max }, 'subscription over push.maxChannelsPerConnection ignored');
          return;
        }
        holds.subscribe(hold, { name: message.channel, prevId: undefined, filters: message.filters });
        return;
      }
      case 'unsubscribe':
        if (this.hold !== null) holds.unsubscribe(this.hold, message.channel);
        return;
      case 'detach':
        // The backend is done with this socket; it stays open for what is published to it.
        this.detached = true;
        this.#queue = [];
        this.#queuedBytes = 0;
        this.#keepAliveIntervalMs = 0;
        this.#keepAliveDueMs = Infinity;
        this.#reschedule();
        return;
      case 'set-meta':
        if (message.value === '') delete this.meta[message.name];
        else this.meta[message.name] = message.value;
        return;
      case 'keep-alive':
        this.#clientKeepAlive =
          message.content === null || message.timeoutSec <= 0
            ? null
            : { type: message.messageType, content: message.content, timeoutMs: message.timeoutSec * 1000, mode: message.mode };
        this.#clientKeepAliveDueMs = this.#clientKeepAlive === null ? Infinity : Date.now() + this.#clientKeepAlive.timeoutMs;
        this.#reschedule();
        return;
      case 'session':
        if (message.id === '') delete this.meta['session-id'];
        else this.meta['session-id'] = message.id;
        return;
    }
  }

  #openHold(holds: HoldRegistry): WsHold {
    // Links route like the client's request and resolve against the target this backend saw.
    const origin = { upstreamHeaders: this.#headers(), target: this.req.url ?? this.target, upstreamTarget: this.target, method: 'GET' };
    const hold = new WsHold(holds, this, this.#tcp, origin, this.meta);
    holds.activate(hold, undefined);
    return hold;
  }

  // --- client -> backend ---------------------------------------------------------------------------

  #enqueue(event: WsEvent): void {
    this.#queue.push(event);
    this.#queuedBytes += event.content?.length ?? 0;
    if (this.#queuedBytes > this.host.config.websocket.maxQueuedBytes) {
      // The backend is not keeping up with this client: RFC 6455 §7.4.1, 1008 policy violation.
      this.#queue = [];
      this.#queuedBytes = 0;
      this.closeClient(1008, 'backend queue full', 'policy');
      return;
    }
    this.#flush();
  }

  #sentOrQueuedEnd(): boolean {
    const last = this.#queue[this.#queue.length - 1] ?? this.#inFlight?.[this.#inFlight.length - 1];
    return last?.type === 'CLOSE' || last?.type === 'DISCONNECT';
  }

  /** Send what is queued unless a request is in flight (one at a time keeps the backend's view in order). */
  #flush(): void {
    if (this.#inFlight !== null || this.#queue.length === 0 || this.#backendDone) return;
    const events = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#post(events);
  }

  #headers(): string[] {
    if (this.#baseHeaders !== null) return this.#baseHeaders;
    const replayed = upstreamRequestHeaders(this.req.rawHeaders, {
      clientAddress: this.#clientAddress,
      httpVersion: this.req.httpVersion,
      proto: clientProto(this.req.socket),
    });
    const headers: string[] = [];
    for (let i = 0; i < replayed.length; i += 2) {
      const lower = replayed[i]!.toLowerCase();
      // The client's own Meta-* would let it forge connection metadata.
      if (NOT_REPLAYED.has(lower) || lower.startsWith('meta-')) continue;
      headers.push(replayed[i]!, replayed[i + 1]!);
    }
    headers.push(
      'content-type', WEBSOCKET_EVENTS,
      'accept', WEBSOCKET_EVENTS,
      'sec-websocket-extensions', 'grip',
      'connection-id', this.id,
      'grip-feature', GRIP_FEATURES,
    );
    this.#baseHeaders = headers;
    return headers;
  }

  #post(events: WsEvent[]): void {
    this.#inFlight = events;
    this.#keepAliveDueMs = Infinity;
    const headers = [...this.#headers()];
    headers.push('grip-sig', this.host.signer.token());
    for (const [name, value] of Object.entries(this.meta)) headers.push(`meta-${name}`, value);
    // Through the group as a proxied request goes: admitted (or queued) against its limits, counted for
    // passive health, and sent again only when it provably never arrived (a POST is never sent twice).
    this.host.sender
      .request(this.upstream.group, {
        method: 'POST',
        path: this.target,
        headers,
        body: encodeEvents(events),
        pickRequest: this.upstream.pickRequest,
        maxBodyBytes: answerLimit,
      })
      .then((result) => {
        if (result.ok) this.#onResponse(result.response);
        else this.#onPostError(result.backend, result.error, result.notSent);
      })
      .catch((err: unknown) => {
        this.host.log.error({ connectionId: this.id, err: (err as Error).message }, 'WebSocket-over-HTTP session failed');
        this.destroy();
      });
  }

  #onResponse(response: BufferedResponse): void {
    const { backend, headers, body, oversized } = response;
    const ok = answerAccepted(response.status, headers);
    const limit = answerLimit(response.status, headers);
    this.#retries = 0;
    const events = this.#inFlight ?? [];
    this.#inFlight = null;
    if (this.state === 'closed') return;
    if (!ok) return this.#onRefused(backend, response.status, headers, body);
    if (oversized) return this.#onBackendBroken(backend, new WsEventsError(`answer over ${limit} bytes`));
    let decoded: WsEvent[];
    try {
      decoded = decodeEvents(body);
    } catch (err) {
      return this.#onBackendBroken(backend, err as WsEventsError);
    }
    this.#applyAnswerHeaders(headers);
    if (this.state === 'opening') {
      if ((decoded.length === 0 && this.#keepAliveIntervalMs === 0) || (decoded.length > 0 && decoded[0]!.type !== 'OPEN')) {
        return this.#onBackendBroken(backend, new WsEventsError('the answer to OPEN must start with OPEN'));
      }
      if (this.#socket === null || this.#clientGone || this.#goingAway) {
        // The client left while the backend was deciding, or we are shutting down: the backend hears
        // DISCONNECT for the connection it just accepted, and the session ends when it has.
        if (this.#goingAway && this.#socket?.writable === true) this.#socket.end(rawErrorResponse(DRAINING));
        else this.#socket?.destroy();
        this.#socket = null;
        this.#queue = [{ type: 'DISCONNECT', content: null }];
        this.#clientGone = true;
        this.state = 'closing';
        this.#flush();
        return;
      }
      this.grip = gripAccepted(headers, this);
      this.#accept(headers);
      // The socket opens in the upgrade callback (synchronously); its other events follow.
      this.#applyEvents(decoded.slice(decoded.length > 0 ? 1 : 0), backend);
    } else {
      this.#applyEvents(decoded, backend);
    }
    if (events.some((e) => e.type === 'CLOSE' || e.type === 'DISCONNECT')) this.#backendDone = true;
    this.#afterRequest();
  }

  #afterRequest(): void {
    if (this.#goingAway && this.#backendDone) {
      this.closeClient(1001, 'going away', 'drain');
    }
    if (this.#maybeFinish()) return;
    if (this.#queue.length > 0) return this.#flush();
    if (this.#keepAliveIntervalMs > 0 && this.state === 'open' && !this.detached) {
      this.#keepAliveDueMs = Date.now() + this.#keepAliveIntervalMs;
      this.#reschedule();
    }
  }

  #applyAnswerHeaders(headers: string[]): void {
    for (let i = 0; i < headers.length; i += 2) {
      const lower = headers[i]!.toLowerCase();
      if (lower === 'keep-alive-interval') {
        const seconds = Number(headers[i + 1]);
        // Pushpin's floor: a backend cannot make us poll it more than every 20 s.
        this.#keepAliveIntervalMs = Number.isInteger(seconds) && seconds > 0 ? Math.max(seconds, KEEP_ALIVE_MIN_SEC) * 1000 : 0;
      } else if (lower.startsWith('set-meta-') && lower.length > 9) {
        const name = lower.slice(9);
        const value = headers[i + 1]!;
        if (value === '') delete this.meta[name];
        else this.meta[name] = value;
      }
    }
  }

  /** A non-200 (or not websocket-events) answer. To OPEN: relayed as the handshake's answer. Later: it ends the session. */
  #onRefused(backend: Backend, status: number, headers: string[], body: Buffer): void {
    if (this.state !== 'opening') {
      const type = headerIn(headers, 'content-type') ?? 'no content-type';
      const err = new UpstreamError(E.WS_EVENTS_REFUSED, backend.name, `answered ${status} (${type}) to an open session`);
      return this.#onBackendBroken(backend, err);
    }
    this.host.metrics.wsRejected.inc({ code: E.WS_REFUSED.code });
    const socket = this.#socket;
    this.#backendDone = true;
    if (socket !== null && socket.writable) {
      let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
      for (let i = 0; i < headers.length; i += 2) {
        const lower = headers[i]!.toLowerCase();
        if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection' || lower === 'keep-alive') continue;
        head += `${headers[i]!}: ${headers[i + 1]!}\r\n`;
      }
      head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
      socket.write(head, 'latin1');
      socket.end(body);
    } else socket?.destroy();
    this.#finish();
  }

  /** Garbage from the backend: a 502 to the handshake, or the error's close code once open. */
  #onBackendBroken(backend: Backend, err: HoldfastError): void {
    this.host.log.warn({ connectionId: this.id, backend: backend.name, code: err.code }, err.message);
    this.host.metrics.upstreamErrorsTotal.inc({ backend: backend.name, code: err.code });
    this.#backendDone = true;
    this.#inFlight = null;
    if (this.state === 'opening') return this.#refuseHandshake(err);
    this.closeClient(closeCodeFor(err), 'backend error', 'error');
    this.#maybeFinish();
  }

  #onPostError(backend: Backend | null, error: HoldfastError, retryable: boolean): void {
    if (this.state === 'closed') return;
    if (retryable && this.state !== 'opening' && this.#retries < RETRY_MAX && backend !== null) {
      // Pushpin's backoff: 1 s, 2 s, 4 s, ... plus up to 1 s of jitter, for requests that never arrived.
      const delayMs = RETRY_BASE_MS * 2 ** this.#retries + Math.floor(Math.random() * RETRY_JITTER_MS);
      this.#retries++;
      this.#retryDueMs = Date.now() + delayMs;
      this.host.metrics.upstreamRetriesTotal.inc({ backend: backend.name });
      this.#reschedule();
      return;
    }
    this.host.log.warn({ connectionId: this.id, code: error.code, backend: backend?.name }, error.message);
    this.#inFlight = null;
    this.#backendDone = true;
    if (this.state === 'opening') return this.#refuseHandshake(error);
    this.closeClient(closeCodeFor(error), 'backend unavailable', 'error');
    this.#maybeFinish();
  }

  /** Before the 101: our own error answer, as for HTTP (502/503/504). */
  #refuseHandshake(error: HoldfastError): void {
    this.host.metrics.wsRejected.inc({ code: error.code });
    const socket = this.#socket;
    if (socket !== null && socket.writable) socket.end(rawErrorResponse(error));
    else socket?.destroy();
    this.#finish();
  }

  // --- timers --------------------------------------------------------------------------------------

  nextDueMs(): number {
    return Math.min(
      this.#retryDueMs,
      this.#keepAliveDueMs,
      this.#clientKeepAliveDueMs,
      this.#pingPong?.nextDueMs() ?? Infinity,
    );
  }

  #reschedule(): void {
    const due = this.nextDueMs();
    if (due === Infinity || this.state === 'closed') this.host.wheel.cancel(this);
    else this.host.wheel.schedule(this, due);
  }

  onDue(nowMs: number): void {
    if (this.state === 'closed') return;
    if (this.#retryDueMs <= nowMs) {
      this.#retryDueMs = Infinity;
      const events = this.#inFlight ?? [];
      this.#post(events);
    }
    if (this.#keepAliveDueMs <= nowMs) {
      this.#keepAliveDueMs = Infinity;
      if (this.#inFlight === null && this.#queue.length === 0 && !this.#backendDone) this.#post([]);
    }
    if (this.#clientKeepAliveDueMs <= nowMs && this.#clientKeepAlive !== null) {
      const ka = this.#clientKeepAlive;
      this.sendPublished({ action: 'send', type: ka.type, content: ka.content, code: undefined, reason: undefined });
      this.#clientKeepAliveDueMs = nowMs + ka.timeoutMs;
    }
    if (this.#pingPong !== null && this.state === 'open') {
      const due = this.#pingPong.check(nowMs);
      if (due === 'ping') this.ws?.ping();
      else if (due === 'dead') {
        this.host.metrics.wsDeadPeers.inc({ mode: 'over-http' });
        this.host.log.info({ connectionId: this.id, pongTimeoutMs: this.#pingPong.pongTimeoutMs }, 'WebSocket peer did not answer a ping; closed');
        this.#closeCause ??= 'dead';
        // A dead peer will not complete a close handshake: cut the TCP connection.
        this.ws?.terminate();
        return;
      }
    }
    this.#reschedule();
  }

  // --- shutdown ------------------------------------------------------------------------------------

  /** Graceful drain: the backend hears DISCONNECT, then the client gets 1001. */
  goAway(): void {
    if (this.#goingAway || this.state === 'closed') return;
    this.#goingAway = true;
    if (this.state === 'opening') {
      // Not yet accepted: it will be refused when the backend answers (the router is draining).
      return;
    }
    if (this.detached || this.#backendDone) {
      this.closeClient(1001, 'going away', 'drain');
      return;
    }
    this.#closeCause ??= 'drain';
    this.#queue.push({ type: 'DISCONNECT', content: null });
    this.#flush();
  }

  /** Cut now (drain deadline, close). */
  destroy(): void {
    this.ws?.terminate();
    this.#socket?.destroy();
    this.#finish();
  }

  #maybeFinish(): boolean {
    if (this.state === 'closed') return true;
    if (!this.#clientGone) return false;
    if (this.#inFlight !== null || (this.#queue.length > 0 && !this.#backendDone)) return false;
    this.#finish();
    return true;
  }

  #finish(): void {
    if (this.state === 'closed') return;
    const wasOpen = this.ws !== null && !this.#clientGone;
    this.state = 'closed';
    this.host.wheel.cancel(this);
    if (wasOpen) {
      this.host.metrics.wsConnections.dec({ mode: 'over-http' });
      this.ws?.terminate();
    }
    if (this.hold !== null) this.host.holds.release(this.hold, true);
    this.host.sessionClosed(this);
  }

  onPreAcceptClose(): void {
    this.#clientGone = true;
    if (this.state === 'opening' && this.#inFlight === null) this.#finish();
  }
}

const EMPTY = Buffer.alloc(0);

/** ws error codes and the close code ws sent for them. */
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_INVALID_OPCODE: 1002,
  WS_ERR_INVALID_CLOSE_CODE: 1002,
  WS_ERR_EXPECTED_MASK: 1002,
  WS_ERR_UNEXPECTED_MASK: 1002,
  WS_ERR_EXPECTED_FIN: 1002,
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: 1002,
  WS_ERR_UNEXPECTED_RSV_1: 1002,
  WS_ERR_UNEXPECTED_RSV_2_3: 1002,
};

/**
 * The close code an error ends an open session with, from its registry entry (errors.ts). RFC 6455
 * §7.4.1's 1011 (an unexpected condition) for an entry without one: every backend failure is that.
 */
function closeCodeFor(err: HoldfastError): number {
  return err.wsCloseCode ?? 1011;
}

const DRAINING = new ClientRequestError(E.DRAINING, 'shutting down, not accepting new WebSocket connections');

/** Pushpin's limits: an accepted answer carries events, a refusal only a page for the handshake's answer. */
function answerLimit(status: number, headers: readonly string[]): number {
  return answerAccepted(status, headers) ? RESPONSE_BODY_MAX_BYTES : REJECT_BODY_MAX_BYTES;
}

function answerAccepted(status: number, headers: readonly string[]): boolean {
  return status === 200 && mediaType(headerIn(headers, 'content-type')) === WEBSOCKET_EVENTS;
}

function headerIn(headers: readonly string[], lowerName: string): string | undefined {
  return rawHeaderValue(headers, lowerName);
}

/** `application/websocket-events; charset=utf-8` is fine (Pushpin's exact match is a known complaint). */
function mediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0]!.trim().toLowerCase();
}

/** The backend accepted with `Sec-WebSocket-Extensions: grip[; message-prefix=X]`. */
function gripAccepted(headers: readonly string[], session: OverHttpSession): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'sec-websocket-extensions') continue;
    for (const ext of headers[i + 1]!.split(',')) {
      const [name, ...params] = ext.split(';').map((s) => s.trim());
      if (name?.toLowerCase() !== 'grip') continue;
      for (const p of params) {
        const eq = p.indexOf('=');
        if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === 'message-prefix') {
          session.messagePrefix = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
        }
      }
      return true;
    }
  }
  return false;
}

function preAcceptSocketOnError(this: Socket): void {
  this.destroy();
}

function preAcceptSocketOnClose(this: Socket & { [kSession]?: OverHttpSession }): void {
  this[kSession]?.onPreAcceptClose();
}

function wsOnMessage(this: SessionSocket, data: Buffer, isBinary: boolean): void {
  this[kSession]?.onClientMessage(data, isBinary);
}

function wsOnPing(this: SessionSocket, data: Buffer): void {
  this[kSession]?.onClientPing(data);
}

function wsOnPong(this: SessionSocket): void {
  this[kSession]?.onClientPong();
}

function wsOnClose(this: SessionSocket, code: number, reason: Buffer): void {
  this[kSession]?.onClientClose(code, reason);
}

function wsOnError(this: SessionSocket, err: Error): void {
  this[kSession]?.onClientError(err);
}
