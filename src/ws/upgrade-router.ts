import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import type { HoldfastConfig } from '../config/schema.js';
import { rawErrorResponse } from '../http/error-response.js';
import type { SendStallWatch } from '../http/send-stall.js';
import { ClientRequestError, E } from '../errors.js';
import type { GripSigner } from '../grip/sig.js';
import type { HoldRegistry } from '../hold/hold-registry.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import { AccessLog } from '../observe/access-log.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { GroupSender } from '../proxy/group-sender.js';
import { rawHeaderValue } from '../http/headers.js';
import type { Routing } from '../proxy/routing.js';
import { createWsWheel, type WsTimed } from './liveness.js';
import { OverHttpSession, type SessionHost, type SessionRequest } from './over-http-session.js';
import { Tunnel, type TunnelHost } from './tunnel.js';
import type { WsUpstream } from './ws-upstream.js';

export interface UpgradeDeps {
  config: HoldfastConfig;
  routing: Routing;
  /** WebSocket-over-HTTP POSTs go through their group as proxied requests do (admission, health, retries). */
  sender: GroupSender;
  metrics: Metrics;
  log: Logger;
  signer: GripSigner;
  /** The push gateway, for GRIP over WebSocket subscriptions. */
  holds: HoldRegistry;
  sendStall: SendStallWatch;
}

/** What a WebSocket's access line needs from its start, written when it ends. */
interface WsStart {
  readonly startedAtMs: number;
  readonly client: string;
  readonly target: string;
}

/** RFC 6455 §4.1: the key is 16 random bytes in base64. */
const KEY_PATTERN = /^[+/0-9A-Za-z]{21}[AQgw]==$/;

/**
 * The edge's `upgrade` listener, after the same request checks as HTTP: validates the WebSocket handshake,
 * then hands the socket to a passthrough tunnel or to a WebSocket-over-HTTP session by path. Owns the live
 * tunnels and sessions, their shared timer wheel, and their part of graceful drain.
 */
export class UpgradeRouter implements TunnelHost, SessionHost {
  readonly config: HoldfastConfig;
  readonly routing: Routing;
  readonly sender: GroupSender;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly signer: GripSigner;
  readonly holds: HoldRegistry;
  readonly sendStall: SendStallWatch;
  readonly wheel: TimerWheel<WsTimed> = createWsWheel();
  readonly idleTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** Terminates over-http sockets; never listens itself. */
  readonly wss: WebSocketServer;
  readonly tunnels = new Set<Tunnel>();
  readonly sessions = new Set<OverHttpSession>();
  draining = false;
  readonly #overHttpAll: boolean;
  readonly #overHttpPaths: readonly string[];
  readonly #accessLog: AccessLog;
  /** Only while the access log is on. */
  readonly #starts = new Map<Tunnel | OverHttpSession, WsStart>();

  constructor(deps: UpgradeDeps) {
    this.config = deps.config;
    this.routing = deps.routing;
    this.sender = deps.sender;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.signer = deps.signer;
    this.holds = deps.holds;
    this.sendStall = deps.sendStall;
    const ws = deps.config.websocket;
    this.idleTimeoutMs = ws.tunnelIdleTimeoutMs;
    this.handshakeTimeoutMs = deps.config.timeouts.upstreamResponseMs;
    this.#overHttpAll = ws.mode === 'over-http';
    this.#overHttpPaths = ws.overHttpPaths;
    this.#accessLog = new AccessLog(deps.config.log, deps.log);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: ws.maxMessageBytes,
      // Compressing on the fly costs CPU and memory per socket (zlib contexts); WebSocket-over-HTTP backends
      // never see frames anyway. Passthrough tunnels negotiate whatever the backend offers, end to end.
      perMessageDeflate: false,
      // The backend chose (or not) in its OPEN answer; the session stores the choice on the request.
      handleProtocols: chooseProtocol,
    });
    this.wss.on('headers', wssOnHeaders);
  }

  isOverHttp(target: string): boolean {
    if (this.#overHttpAll) return true;
    if (this.#overHttpPaths.length === 0) return false;
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    return this.#overHttpPaths.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`));
  }

  /** A checked upgrade request: answer it with an error, or start a tunnel or a session. */
  handle(req: IncomingMessage, socket: Socket, head: Buffer, target: string, clientAddress: string): void {
    const refusal = this.draining ? DRAINING : checkHandshake(req);
    if (refusal !== null) {
      this.metrics.wsRejected.inc({ code: refusal.code });
      this.#logRefusal(clientAddress, target, refusal);
      socket.on('error', destroyOnError);
      socket.end(handshakeErrorResponse(refusal));
      return;
    }
    // Routed like HTTP (host, path prefix, rewrites). A WebSocket is one long request: it takes a server
    // without waiting in the group's concurrency queue.
    const match = this.routing.route(rawHeaderValue(req.rawHeaders, 'host'), target);
    if (match === null) {
      const error = new ClientRequestError(E.NO_ROUTE, `no route for GET ${target}`);
      this.metrics.wsRejected.inc({ code: error.code });
      this.#logRefusal(clientAddress, target, error);
      socket.on('error', destroyOnError);
      socket.end(rawErrorResponse(error));
      return;
    }
    const start: WsStart | null = this.#accessLog.enabled ? { startedAtMs: Date.now(), client: clientAddress, target } : null;
    const upstream: WsUpstream = { group: match.group, target: match.target, pickRequest: { req, owner: { clientAddress } } };
    if (this.isOverHttp(target)) {
      const session = new OverHttpSession(this, req, socket, head, upstream, clientAddress);
      this.sessions.add(session);
      if (start !== null) this.#starts.set(session, start);
      session.start();
      return;
    }
    const tunnel = new Tunnel(this, socket, head);
    this.tunnels.add(tunnel);
    if (start !== null) this.#starts.set(tunnel, start);
    tunnel.start(req, upstream, clientAddress, this.signer.token());
  }

  tunnelClosed(tunnel: Tunnel): void {
    this.tunnels.delete(tunnel);
    this.#logEnd(tunnel, tunnel.open, tunnel.backend?.name, 'passthrough');
  }

  sessionClosed(session: OverHttpSession): void {
    this.sessions.delete(session);
    this.#logEnd(session, session.ws !== null, undefined, 'over-http');
  }

  /** A WebSocket's access line, when it ends: 101 if it opened, 0 if it never did (refused by the backend, cut). */
  #logEnd(socket: Tunnel | OverHttpSession, opened: boolean, backend: string | undefined, mode: 'passthrough' | 'over-http'): void {
    const start = this.#starts.get(socket);
    if (start === undefined) return;
    this.#starts.delete(socket);
    const { client, target, startedAtMs } = start;
    this.#accessLog.write({ client, method: 'GET', target, status: opened ? 101 : 0, ms: Date.now() - startedAtMs, backend, websocket: mode });
  }

  #logRefusal(client: string, target: string, error: ClientRequestError): void {
    this.#accessLog.write({ client, method: 'GET', target, status: error.httpStatus, ms: 0, code: error.code });
  }

  /**
   * Shutdown: terminated sockets tell their backend (DISCONNECT) and close with 1001 now; tunnels carry on
   * until the deadline, then are cut. Resolves when every socket is closed.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    for (const session of [...this.sessions]) session.goAway();
    if (this.tunnels.size === 0 && this.sessions.size === 0) return this.#stop();
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (this.tunnels.size === 0 && this.sessions.size === 0) {
          clearInterval(check);
          resolve();
        }
      }, 50);
      check.unref();
      timer = setTimeout(() => {
        clearInterval(check);
        resolve();
      }, deadlineMs);
    });
    clearTimeout(timer);
    this.closeAll();
  }

  /** Cut everything now. */
  closeAll(): void {
    this.draining = true;
    for (const tunnel of [...this.tunnels]) tunnel.destroy();
    for (const session of [...this.sessions]) session.destroy();
    this.#stop();
  }

  #stop(): void {
    this.wheel.stop();
  }
}

const DRAINING = new ClientRequestError(E.DRAINING, 'shutting down, not accepting new WebSocket connections');

/** What an upgrade request must be to start a WebSocket (RFC 6455 §4.2.1); null when it is one. */
export function checkHandshake(req: IncomingMessage): ClientRequestError | null {
  if (req.method !== 'GET') return bad('a WebSocket handshake must be a GET');
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return bad('a WebSocket handshake needs HTTP/1.1');
  const key = rawHeaderValue(req.rawHeaders, 'sec-websocket-key');
  if (key === undefined || !KEY_PATTERN.test(key.trim())) return bad('Sec-WebSocket-Key must be 16 bytes in base64');
  const version = rawHeaderValue(req.rawHeaders, 'sec-websocket-version');
  if (version?.trim() !== '13') {
    return new ClientRequestError(E.WS_VERSION, 'only WebSocket version 13 is spoken here');
  }
  return null;
}

/** `Upgrade: websocket` (any case, possibly among other protocols). Other upgrades are served as plain HTTP. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = rawHeaderValue(req.rawHeaders, 'upgrade');
  return upgrade !== undefined && upgrade.split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

function bad(message: string): ClientRequestError {
  return new ClientRequestError(E.WS_BAD_HANDSHAKE, message);
}

/** RFC 6455 §4.4: a 426 names the versions we speak. */
function handshakeErrorResponse(error: ClientRequestError): string {
  const raw = rawErrorResponse(error);
  return error.httpStatus === 426 ? raw.replace('\r\n\r\n', '\r\nsec-websocket-version: 13\r\n\r\n') : raw;
}

function destroyOnError(this: Socket): void {
  this.destroy();
}

/** The backend's own fields from its OPEN answer (cookies, say) go into the 101. */
function wssOnHeaders(headers: string[], req: SessionRequest): void {
  const extra = req.holdfastHeaders;
  if (extra === undefined) return;
  for (let i = 0; i < extra.length; i += 2) headers.push(`${extra[i]!}: ${extra[i + 1]!}`);
}

/** ws asks which offered subprotocol to select; the session put the backend's choice on the request. */
function chooseProtocol(offered: Set<string>, req: SessionRequest): string | false {
  const chosen = req.holdfastProtocol;
  return chosen !== undefined && offered.has(chosen) ? chosen : false;
}

/**
 * RFC 9110 §7.8: a server may ignore Upgrade. Node hands every request with `Connection: upgrade` to the
 * `upgrade` listener and detaches its parser, so a non-WebSocket upgrade (`h2c` from `curl --http2`, say)
 * is put back: its head is rebuilt without Upgrade (llhttp already validated every field, and the framing
 * fields are kept as they were), pushed back in front of the unread bytes, and the socket given to the HTTP
 * server again as if it had just connected. The edge recognises the connection and keeps its accounting.
 */
export function replayAsPlainRequest(server: { emit(event: 'connection', socket: Socket): boolean }, req: IncomingMessage, socket: Socket, head: Buffer): void {
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'upgrade') continue;
    text += `${raw[i]!}: ${raw[i + 1]!}\r\n`;
  }
  socket.unshift(head.length > 0 ? Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]) : Buffer.from(`${text}\r\n`, 'latin1'));
  server.emit('connection', socket);
}
