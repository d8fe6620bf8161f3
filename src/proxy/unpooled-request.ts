import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { errors } from 'undici';
import { backendRequestFunction, type BackendTlsOptions } from './backend-tls.js';
import { rawHeaderValue } from '../http/headers.js';
import { holdWriteErrors } from './held-write-errors.js';

/**
 * The two requests undici's HTTP/1 client cannot send, sent with node:http on a connection of their own:
 * - the asterisk-form `OPTIONS *`: undici's Request refuses any path that does not start with `/` or
 *   `http(s)://` (lib/core/request.js, "path must be an absolute URL or start with a slash"); node:http only
 *   refuses control characters in a path. Rewriting undici's request after it was built (its
 *   `undici:request:create` diagnostics channel hands out the object) would work but lean on its internals;
 * - `Expect: 100-continue`: undici refuses the header ("expect header not supported") and treats a 100 from
 *   the server as a bad response; it also writes the request head only with the first body byte. Forwarding
 *   the expectation is what lets the backend refuse an upload (413, 401) before a byte of it is sent.
 * Both are rare enough that a fresh connection per request costs nothing that matters (the WebSocket tunnel
 * takes the same road, ws/tunnel.ts). The group's concurrency slot, the balancer, health, retries and header
 * hygiene are the pooled path's: only the transport differs, and it keeps undici's timeouts and error codes so
 * the retry policy reads both alike.
 */

/** How to reach one backend server without its pool, and how long to wait at each step. */
export interface UnpooledServer {
  readonly hostname: string;
  readonly port: number;
  /** For an https:// origin: TLS options (node:https then); null for http://. */
  readonly tls: BackendTlsOptions | null;
  /** `host[:port]` of the origin, for a request that carries no Host (HTTP/1.0), as undici sends. */
  readonly host: string;
  readonly connectTimeoutMs: number;
  /** Silence allowed before the response head (undici's headersTimeout). */
  readonly headersTimeoutMs: number;
  /** Silence allowed within the response body while we read it (undici's bodyTimeout). */
  readonly bodyTimeoutMs: number;
  /** A TCP connection was opened. */
  onConnection(): void;
}

export interface UnpooledRequest {
  path: string;
  method: string;
  headers: readonly string[];
  body: Readable | null;
  /** Send `Expect: 100-continue`; the backend's 100 comes back through onContinue. */
  expectContinue: boolean;
}

/** undici's (legacy) dispatch handler as ProxyExchange implements it, plus the 100 Continue. */
export interface UnpooledHandler {
  onConnect(abort: (err?: Error) => void): void;
  onResponseStarted(): void;
  onContinue(): void;
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}

const kUnpooled = Symbol('holdfast.unpooled');

type Tagged<T> = T & { [kUnpooled]?: UnpooledExchange };

/** One request's state, reached from its node:http objects through kUnpooled. */
class UnpooledExchange {
  readonly server: UnpooledServer;
  readonly handler: UnpooledHandler;
  readonly body: Readable | null;
  readonly upstream: ClientRequest;
  socket: Socket | null = null;
  response: IncomingMessage | null = null;
  connectTimer: NodeJS.Timeout | null = null;
  /** The client is slow: the response is paused, and its silence is ours, not the backend's. */
  paused = false;
  done = false;

  constructor(server: UnpooledServer, handler: UnpooledHandler, body: Readable | null, upstream: ClientRequest) {
    this.server = server;
    this.handler = handler;
    this.body = body;
    this.upstream = upstream;
  }

  readonly abort = (err?: Error): void => fail(this, err ?? new errors.RequestAbortedError());

  readonly resume = (): void => {
    this.paused = false;
    this.response?.resume();
  };
}

export function dispatchUnpooled(server: UnpooledServer, request: UnpooledRequest, handler: UnpooledHandler): void {
  const headers = [...request.headers];
  if (rawHeaderValue(headers, 'host') === undefined) headers.push('host', server.host);
  // Node sends a body of unknown length close-delimited for OPTIONS (not chunked as undici does), which a
  // request cannot be: say chunked ourselves.
  if (request.body !== null && rawHeaderValue(headers, 'content-length') === undefined) {
    headers.push('transfer-encoding', 'chunked');
  }
  if (request.expectContinue) headers.push('expect', '100-continue');
  let upstream: Tagged<ClientRequest>;
  try {
    upstream = backendRequestFunction(server.tls)({
      ...server.tls,
      host: server.hostname,
      port: server.port,
      method: request.method,
      path: request.path,
      headers,
      // The client's own Host is in the list; no agent: one request, then the connection closes.
      setHost: false,
      agent: false,
    });
  } catch (err) {
    // node:http checks the method, path and header characters up front, as undici does: the client's fault.
    handler.onError(new errors.InvalidArgumentError((err as Error).message));
    return;
  }
  const exchange = new UnpooledExchange(server, handler, request.body, upstream);
  upstream[kUnpooled] = exchange;
  upstream.on('socket', upstreamOnSocket);
  upstream.on('continue', upstreamOnContinue);
  upstream.on('response', upstreamOnResponse);
  upstream.on('error', upstreamOnError);
  exchange.connectTimer = setTimeout(onConnectTimeout, server.connectTimeoutMs, exchange);
  handler.onConnect(exchange.abort);
  if (exchange.done) return;
  // With Expect the client holds its body until it sees our 100, so the body flows when the backend has
  // said yes; a client that does not wait has its bytes forwarded as they come (RFC 9110 §10.1.1).
  if (request.body === null) upstream.end();
  else request.body.pipe(upstream);
}

function upstreamOnSocket(this: Tagged<ClientRequest>, rawSocket: Socket): void {
  const exchange = this[kUnpooled]!;
  const socket = rawSocket as Tagged<Socket>;
  socket[kUnpooled] = exchange;
  exchange.socket = socket;
  holdWriteErrors(socket);
  socket.on('timeout', socketOnTimeout);
  if (socket.connecting) socket.once('connect', socketOnConnect);
  else socketOnConnect.call(socket);
}

function socketOnConnect(this: Tagged<Socket>): void {
  const exchange = this[kUnpooled]!;
  if (exchange.connectTimer !== null) clearTimeout(exchange.connectTimer);
  exchange.connectTimer = null;
  exchange.server.onConnection();
  this.setTimeout(exchange.server.headersTimeoutMs);
}

function onConnectTimeout(exchange: UnpooledExchange): void {
  exchange.connectTimer = null;
  fail(exchange, new errors.ConnectTimeoutError());
}

function socketOnTimeout(this: Tagged<Socket>): void {
  const exchange = this[kUnpooled]!;
  if (exchange.response === null) fail(exchange, new errors.HeadersTimeoutError());
  else if (!exchange.paused) fail(exchange, new errors.BodyTimeoutError());
}

function upstreamOnContinue(this: Tagged<ClientRequest>): void {
  const exchange = this[kUnpooled]!;
  if (!exchange.done) exchange.handler.onContinue();
}

function upstreamOnResponse(this: Tagged<ClientRequest>, rawResponse: IncomingMessage): void {
  const exchange = this[kUnpooled]!;
  const response = rawResponse as Tagged<IncomingMessage>;
  if (exchange.done) {
    response.resume();
    return;
  }
  exchange.response = response;
  response[kUnpooled] = exchange;
  exchange.socket?.setTimeout(exchange.server.bodyTimeoutMs);
  // A body still going out keeps going while the response streams (a backend may answer and read at once),
  // as on the pooled path; once the response is complete, the rest is not sent (settle).
  const { handler } = exchange;
  handler.onResponseStarted();
  const rawHeaders = response.rawHeaders.map(latin1Buffer);
  const proceed = handler.onHeaders(response.statusCode ?? 0, rawHeaders, exchange.resume, response.statusMessage ?? '');
  if (exchange.done) return;
  response.on('data', responseOnData);
  response.on('end', responseOnEnd);
  response.on('error', responseOnError);
  if (!proceed) {
    exchange.paused = true;
    response.pause();
  }
}

function responseOnData(this: Tagged<IncomingMessage>, chunk: Buffer): void {
  const exchange = this[kUnpooled]!;
  if (exchange.done || exchange.handler.onData(chunk)) return;
  exchange.paused = true;
  this.pause();
}

function responseOnEnd(this: Tagged<IncomingMessage>): void {
  const exchange = this[kUnpooled]!;
  if (exchange.done) return;
  settle(exchange);
  exchange.handler.onComplete(null);
  // RFC 9112 §9.5: a complete answer while the body was still going out means the backend does not want the
  // rest; the request is left unfinished, so this connection is done (it was only ever this request's).
  exchange.upstream.destroy();
}

function responseOnError(this: Tagged<IncomingMessage>, err: Error): void {
  fail(this[kUnpooled]!, err);
}

function upstreamOnError(this: Tagged<ClientRequest>, err: Error): void {
  fail(this[kUnpooled]!, err);
}

/** Once: stop the timers and the body, close the connection, tell the handler. */
function fail(exchange: UnpooledExchange, err: Error): void {
  if (exchange.done) return;
  settle(exchange);
  exchange.upstream.destroy();
  exchange.handler.onError(err);
}

function settle(exchange: UnpooledExchange): void {
  exchange.done = true;
  if (exchange.connectTimer !== null) clearTimeout(exchange.connectTimer);
  exchange.connectTimer = null;
  exchange.socket?.setTimeout(0);
  exchange.body?.unpipe(exchange.upstream);
}

/** node:http hands header fields over as latin1 strings; the handler takes undici's raw buffers. */
function latin1Buffer(value: string): Buffer {
  return Buffer.from(value, 'latin1');
}
