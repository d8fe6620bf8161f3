import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { E, type HoldfastError, UpstreamError } from '../errors.js';
import { rawErrorResponse } from '../http/error-response.js';
import { GRIP_FEATURES } from '../grip/features.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { clientProto, rawHeaderValue, upstreamRequestHeaders } from '../http/headers.js';
import type { Backend } from '../proxy/upstream.js';
import type { WsTimed } from './liveness.js';
import { pickBackend, type WsUpstream } from './ws-upstream.js';
import { backendRequestFunction } from '../proxy/backend-tls.js';

/** What a tunnel needs of the router that owns it. */
export interface TunnelHost {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly wheel: TimerWheel<WsTimed>;
  readonly idleTimeoutMs: number;
  /** Waiting for the backend's answer to the handshake. */
  readonly handshakeTimeoutMs: number;
  tunnelClosed(tunnel: Tunnel): void;
}

/** Fields of a refusal that belong to the backend hop; the relayed answer closes the client connection. */
const REFUSAL_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection']);

type TunnelSocket = Socket & { [kTunnel]?: Tunnel };
type TunnelRequest = ClientRequest & { [kTunnel]?: Tunnel };
type TunnelResponse = IncomingMessage & { [kTunnel]?: Tunnel };
const kTunnel = Symbol('holdfast.tunnel');

/**
 * A WebSocket passthrough: the client's handshake goes to a backend with its end-to-end fields intact
 * (subprotocols, extensions, cookies, origin) and the usual hygiene (hop-by-hop out, X-Forwarded-*, Via,
 * Grip-Sig); a non-101 answer is relayed and the connection closed; after 101 the raw bytes are tunnelled
 * both ways, never re-framed (DESIGN.md), so permessage-deflate and anything else negotiated end to end just
 * works.
 *
 * The backend hop is node:http's client on a fresh connection, not the undici Pool: an upgraded connection
 * never returns to a pool, and undici's `upgrade` hands back a socket only for a 101, while a refusal must be
 * relayed with its body. node:http parses the backend's head with the same llhttp, gives the socket and the
 * bytes after a 101, and a normal response otherwise.
 */
export class Tunnel implements WsTimed {
  wheelDueMs = 0;
  wheelSlot: Set<WsTimed> | null = null;
  readonly host: TunnelHost;
  readonly client: TunnelSocket;
  /** Bytes the client sent after its handshake, in the same packet: forwarded right after the 101. */
  readonly clientHead: Buffer;
  backend: Backend | null = null;
  request: TunnelRequest | null = null;
  upstream: TunnelSocket | null = null;
  /** Set once the 101 went to the client. */
  open = false;
  closed = false;
  /** client.bytesRead + client.bytesWritten at the last idle check: both directions cross the client socket. */
  #bytesAtCheck = -1;

  constructor(host: TunnelHost, client: Socket, clientHead: Buffer) {
    this.host = host;
    this.client = client;
    this.clientHead = clientHead;
    this.client[kTunnel] = this;
    // Node removed its own listeners when it handed the socket over: without one an ECONNRESET would throw.
    this.client.on('error', tunnelSocketOnError);
    this.client.once('close', tunnelSocketOnClose);
  }

  start(req: IncomingMessage, upstream: WsUpstream, clientAddress: string, gripSig: string | null): void {
    const backend = pickBackend(upstream);
    if (backend === null) {
      return this.refuse(new UpstreamError(E.NO_HEALTHY_BACKEND, upstream.group.describe(), 'has no server taking traffic'));
    }
    this.backend = backend;
    backend.requestCounter.inc();
    const headers = upstreamRequestHeaders(req.rawHeaders, { clientAddress, httpVersion: req.httpVersion, proto: clientProto(req.socket) });
    // The two hop-by-hop fields a WebSocket handshake is made of go to the backend hop too (RFC 6455 §4.1).
    headers.push('connection', 'upgrade', 'upgrade', rawHeaderValue(req.rawHeaders, 'upgrade') ?? 'websocket');
    if (gripSig !== null) headers.push('grip-sig', gripSig, 'grip-feature', GRIP_FEATURES);
    const origin = new URL(backend.name);
    const request = backendRequestFunction(backend.tls)({
      ...backend.tls,
      host: origin.hostname,
      port: origin.port,
      method: 'GET',
      path: upstream.target,
      headers,
      setHost: false,
      agent: false,
      timeout: this.host.handshakeTimeoutMs,
    }) as TunnelRequest;
    request[kTunnel] = this;
    this.request = request;
    request.on('upgrade', requestOnUpgrade);
    request.on('response', requestOnResponse);
    request.on('error', requestOnError);
    request.on('timeout', requestOnTimeout);
    request.end();
  }

  onUpgrade(res: IncomingMessage, socket: Socket, upstreamHead: Buffer): void {
    this.request = null;
    const upstream = socket as TunnelSocket;
    if (this.closed) {
      upstream.destroy();
      return;
    }
    this.upstream = upstream;
    upstream[kTunnel] = this;
    upstream.setTimeout(0);
    upstream.setNoDelay(true);
    upstream.on('error', tunnelSocketOnError);
    upstream.once('close', tunnelSocketOnClose);
    this.backend?.recordSuccess();
    this.open = true;
    const { metrics } = this.host;
    metrics.wsConnectionsTotal.inc({ mode: 'passthrough' });
    metrics.wsConnections.inc({ mode: 'passthrough' });
    this.client.write(responseHead(res, res.rawHeaders));
    if (upstreamHead.length > 0) this.client.write(upstreamHead);
    if (this.clientHead.length > 0) upstream.write(this.clientHead);
    // pipe(): backpressure both ways, and a FIN from one side becomes a FIN to the other (half-close).
    this.client.pipe(upstream);
    upstream.pipe(this.client);
    this.#armIdle(Date.now());
  }

  /** Any answer but 101: relay it as the backend sent it, then close both connections. */
  onResponse(res: TunnelResponse): void {
    // `request` stays set: destroying it closes the backend connection once the answer is relayed.
    this.backend?.recordSuccess();
    this.host.metrics.wsRejected.inc({ code: E.WS_REFUSED.code });
    // The answer keeps its fields in order and its framing: its length when it had one, chunked (re-chunked
    // as it arrives) when it was, close-delimited otherwise. Only the backend hop's connection fields go.
    const chunked = /\bchunked\b/i.test(rawHeaderValue(res.rawHeaders, 'transfer-encoding') ?? '');
    const kept: string[] = [];
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      if (!REFUSAL_DROPPED.has(res.rawHeaders[i]!.toLowerCase())) kept.push(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
    }
    kept.push('Connection', 'close');
    this.client.write(responseHead(res, kept));
    res[kTunnel] = this;
    res.on('data', chunked ? refusalOnChunk : refusalOnData);
    res.once('end', chunked ? refusalOnChunkedEnd : refusalOnEnd);
    res.once('error', refusalOnError);
  }

  /** The handshake request failed: `err` from the socket, or null when the backend did not answer in time. */
  onRequestError(err: (Error & { code?: string }) | null): void {
    this.request = null;
    if (this.closed) return;
    const backend = this.backend;
    const name = backend?.name ?? 'none';
    const code = err?.code ?? '';
    const error = err === null
      ? new UpstreamError(E.UPSTREAM_TIMEOUT, name, 'did not answer the WebSocket handshake in time')
      : code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
        ? new UpstreamError(E.UPSTREAM_REFUSED, name, `refused the connection (${code})`, err)
        : code.startsWith('HPE_')
          ? new UpstreamError(E.UPSTREAM_BAD_RESPONSE, name, `sent an invalid handshake answer (${code})`, err)
          : new UpstreamError(E.UPSTREAM_FAILED, name, `failed during the WebSocket handshake (${code || err.message})`, err);
    backend?.recordFailure(Date.now(), error.code);
    this.host.metrics.upstreamErrorsTotal.inc({ backend: name, code: error.code });
    this.refuse(error);
  }

  /** Our own answer to the handshake (no backend, or it failed): raw bytes, then close. */
  refuse(error: HoldfastError): void {
    this.host.metrics.wsRejected.inc({ code: error.code });
    this.host.log.warn({ code: error.code, backend: this.backend?.name }, error.message);
    if (this.client.writable) this.client.end(rawErrorResponse(error));
    else this.client.destroy();
    this.#finish();
  }

  onDue(nowMs: number): void {
    if (this.closed) return;
    const moved = this.client.bytesRead + this.client.bytesWritten;
    if (moved !== this.#bytesAtCheck) {
      this.#armIdle(nowMs);
      return;
    }
    // Nothing moved either way for a whole idle period: a half-open or abandoned tunnel.
    this.host.metrics.wsDeadPeers.inc({ mode: 'passthrough' });
    this.host.log.info({ backend: this.backend?.name, idleTimeoutMs: this.host.idleTimeoutMs }, 'idle WebSocket tunnel closed');
    this.destroy();
  }

  /** Cut both sides now (errors, idle, drain deadline). */
  destroy(): void {
    this.client.destroy();
    this.upstream?.destroy();
    this.request?.destroy();
    this.#finish();
  }

  /** One side closed: cleanly (its FIN was already passed on by pipe) or not (then the other side goes too). */
  onSocketClose(socket: TunnelSocket, hadError: boolean): void {
    if (hadError || !this.open) {
      this.destroy();
      return;
    }
    const other = socket === this.client ? this.upstream : this.client;
    if (other === null || other.destroyed) this.#finish();
  }

  #armIdle(nowMs: number): void {
    if (this.host.idleTimeoutMs === 0) return;
    this.#bytesAtCheck = this.client.bytesRead + this.client.bytesWritten;
    this.host.wheel.schedule(this, nowMs + this.host.idleTimeoutMs);
  }

  #finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.wheel.cancel(this);
    if (this.open) this.host.metrics.wsConnections.dec({ mode: 'passthrough' });
    this.host.tunnelClosed(this);
  }
}

/** A status line and header block from a parsed backend response (its header case kept). */
function responseHead(res: IncomingMessage, rawHeaders: readonly string[]): string {
  let head = `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]!}: ${rawHeaders[i + 1]!}\r\n`;
  return `${head}\r\n`;
}

function tunnelSocketOnError(this: TunnelSocket): void {
  this[kTunnel]?.destroy();
}

function tunnelSocketOnClose(this: TunnelSocket, hadError: boolean): void {
  this[kTunnel]?.onSocketClose(this, hadError);
}

function requestOnUpgrade(this: TunnelRequest, res: IncomingMessage, socket: Socket, head: Buffer): void {
  this[kTunnel]?.onUpgrade(res, socket, head);
}

function requestOnResponse(this: TunnelRequest, res: IncomingMessage): void {
  this[kTunnel]?.onResponse(res);
}

function requestOnError(this: TunnelRequest, err: Error): void {
  this[kTunnel]?.onRequestError(err);
}

function requestOnTimeout(this: TunnelRequest): void {
  const tunnel = this[kTunnel];
  this.destroy();
  tunnel?.onRequestError(null);
}

function refusalOnData(this: TunnelResponse, chunk: Buffer): void {
  this[kTunnel]?.client.write(chunk);
}

function refusalOnChunk(this: TunnelResponse, chunk: Buffer): void {
  const client = this[kTunnel]?.client;
  if (client === undefined || chunk.length === 0) return;
  client.write(`${chunk.length.toString(16)}\r\n`);
  client.write(chunk);
  client.write('\r\n');
}

function refusalOnEnd(this: TunnelResponse): void {
  const tunnel = this[kTunnel];
  if (tunnel === undefined) return;
  tunnel.client.end();
  tunnel.request?.destroy();
}

function refusalOnChunkedEnd(this: TunnelResponse): void {
  const tunnel = this[kTunnel];
  if (tunnel === undefined) return;
  tunnel.client.end('0\r\n\r\n');
  tunnel.request?.destroy();
}

function refusalOnError(this: TunnelResponse): void {
  this[kTunnel]?.destroy();
}
