import type { GroupConfig, HoldfastConfig } from '../config/schema.js';
import { E, HoldfastError, UpstreamError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { ServerResponse } from 'node:http';
import { declaredContentLength, rawHeaderValues } from '../http/headers.js';
import { usable, type Balancer, type PickRequest } from './balancer.js';
import { createBalancer } from './balancers/create-balancer.js';
import { CompressionPolicy, createCompressedBody, type EncoderOwner, type ResponseEncoder } from './compression.js';
import { HealthChecker } from './health-check.js';
import { RequestQueue, type QueueOwner } from './request-queue.js';
import { StickyCookies } from './sticky.js';
import { Backend } from './upstream.js';

export interface GroupDeps {
  config: HoldfastConfig;
  metrics: Metrics;
  log: Logger;
  /** Sticky cookie HMAC key when the group sets none: one per process, kept across reloads. */
  stickyKey: Buffer;
}

/** What a group needs of a request it places: who it is, and how to hand it a server later. */
export interface GroupRequest extends PickRequest {
  /** The server whose concurrency slot this request holds. */
  slot: Backend | null;
  /** Out of the queue: a server, or the 503 to answer with. */
  dequeued(outcome: Backend | HoldfastError): void;
}

/** Requests (so pooled connections) one server of the group may have at once. */
export function serverConnectionCap(config: GroupConfig, upstream: HoldfastConfig['upstream']): number {
  return config.maxConcurrentPerServer === 0
    ? upstream.maxConnectionsPerBackend
    : Math.min(config.maxConcurrentPerServer, upstream.maxConnectionsPerBackend);
}

/**
 * A backend group: its servers (each a pool with a concurrency cap and health), the balancer, the bounded
 * queue for requests no server has room for, active health checks, stickiness and the compression policy.
 * After a reload the old group is retired: it serves what it admitted, then closes its pools.
 */
export class BackendGroup implements QueueOwner<GroupRequest> {
  readonly name: string;
  readonly config: GroupConfig;
  readonly servers: readonly Backend[];
  readonly balancer: Balancer;
  readonly sticky: StickyCookies | null;
  readonly compression: CompressionPolicy | null;
  readonly health: HealthChecker | null;
  readonly retries: number;
  readonly #queue: RequestQueue<GroupRequest>;
  readonly #metrics: Metrics;
  readonly #queueLength: { inc(): void; dec(): void };
  /** Requests admitted and not finished with the backend side (queued or holding a slot). */
  #active = 0;
  #retired = false;
  #closing: Promise<void> | null = null;
  #resolveClosed: () => void = () => {};
  /** Resolves once the pools are closed (a retired group closes when idle). */
  readonly closed: Promise<void> = new Promise((resolve) => (this.#resolveClosed = resolve));

  constructor(name: string, config: GroupConfig, deps: GroupDeps) {
    this.name = name;
    this.config = config;
    this.#metrics = deps.metrics;
    const { upstream } = deps.config;
    this.retries = upstream.retries;
    const maxConcurrent = serverConnectionCap(config, upstream);
    const check = config.healthCheck;
    this.servers = config.servers.map(
      (server) =>
        new Backend(server.url, deps, {
          group: name,
          weight: server.weight,
          maxConcurrent,
          maxFails: config.passive.maxFails ?? upstream.maxFails,
          failTimeoutMs: config.passive.failTimeoutMs ?? upstream.failTimeoutMs,
          on5xx: config.passive.on5xx,
          slowStartMs: config.slowStartMs,
          activeChecks: check === undefined ? null : { fall: check.fall, rise: check.rise },
        }),
    );
    for (const server of this.servers) server.onUp = groupOnServerUp.bind(null, this);
    this.balancer = createBalancer(config, this.servers);
    this.sticky =
      config.sticky === undefined
        ? null
        : new StickyCookies(name, config.sticky.cookie, this.servers, config.sticky.secret ?? deps.stickyKey);
    this.compression = config.compression === undefined ? null : new CompressionPolicy(config.compression, deps.metrics);
    this.#queue = new RequestQueue(config.queue.maxLength, config.queue.timeoutMs, this);
    this.#queueLength = deps.metrics.queueLength.labels({ group: name });
    this.health = check === undefined ? null : new HealthChecker(this.servers, check, deps.log);
    this.health?.start();
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  get active(): number {
    return this.#active;
  }

  /**
   * Place a request: a server with a free slot (taken now), null when it waits in the queue (`dequeued`
   * is called later), or the error to answer with: no server up (503), queue full (503). Every admitted
   * request, whatever the outcome, ends with one call to `finished`.
   */
  admit(request: GroupRequest, nowMs: number): Backend | HoldfastError | null {
    this.#active++;
    const server = this.#choose(request, nowMs, undefined);
    if (server !== null && server.hasCapacity) {
      this.#take(request, server);
      return server;
    }
    if (server === null && !this.servers.some((s) => usable(s, nowMs, undefined, false) || s.passivelyDown)) {
      return new UpstreamError(E.NO_HEALTHY_BACKEND, this.describe(), 'has no server taking traffic');
    }
    if (!this.#queue.push(request, nowMs)) {
      this.#metrics.queueRejectedTotal.inc({ group: this.name, reason: 'full' });
      return new UpstreamError(
        E.QUEUE_FULL,
        this.describe(),
        `is at capacity and its queue is full (queue.maxLength ${this.#queue.maxLength})`,
      );
    }
    this.#queueLength.inc();
    return null;
  }

  /** A retry after a connect failure: another server with room, never the queue. Moves the slot. */
  retryElsewhere(request: GroupRequest, exclude: ReadonlySet<Backend>, nowMs: number): Backend | null {
    const server = this.#choose(request, nowMs, exclude);
    if (server === null || !server.hasCapacity) return null;
    this.#releaseSlot(request);
    this.#take(request, server);
    return server;
  }

  /** The request is done with the backend side (answered, failed or abandoned). */
  finished(request: GroupRequest): void {
    if (this.#queue.remove(request, Date.now()) >= 0) this.#queueLength.dec();
    this.#releaseSlot(request);
    this.#active--;
    if (this.#retired && this.#active === 0) void this.close();
  }

  /** The queue timed this request out. */
  onQueueTimeout(request: GroupRequest, waitedMs: number): void {
    this.#queueLength.dec();
    this.#metrics.queueWait.observe({ group: this.name, outcome: 'timeout' }, waitedMs / 1000);
    this.#metrics.queueRejectedTotal.inc({ group: this.name, reason: 'timeout' });
    request.dequeued(
      new UpstreamError(
        E.QUEUE_TIMEOUT,
        this.describe(),
        `had no free server within queue.timeoutMs (${this.#queue.timeoutMs} ms)`,
      ),
    );
  }

  /** Hand freed slots to waiting requests, oldest first. */
  drainQueue(nowMs: number = Date.now()): void {
    // Round-robin and least-requests place anyone anywhere: once one waiting request finds no room, none will.
    const anyServer = this.config.algorithm !== 'hash' && this.sticky === null;
    this.#queue.drain(nowMs, (request, waitedMs) => {
      const server = this.#choose(request, nowMs, undefined);
      if (server === null || !server.hasCapacity) return false;
      this.#queueLength.dec();
      this.#metrics.queueWait.observe({ group: this.name, outcome: 'served' }, waitedMs / 1000);
      this.#take(request, server);
      request.dequeued(server);
      return true;
    }, anyServer);
  }

  /**
   * A plain response from `server` is about to go out with `headers`: add the sticky cookie when the client
   * is not pinned there yet, and start compression when the policy says so (returning the body to write).
   */
  prepareResponse(
    request: PickRequest & EncoderOwner & { readonly res: ServerResponse; readonly method: string },
    server: Backend,
    status: number,
    headers: string[],
  ): ResponseEncoder | null {
    const sticky = this.sticky;
    if (sticky !== null && sticky.pinned(request.req.rawHeaders) !== server) {
      // HAProxy `insert nocache`: a response that pins a client must not be stored for others.
      headers.push('set-cookie', sticky.setCookie(server), 'cache-control', 'private');
    }
    const policy = this.compression;
    if (policy === null) return null;
    // Read before negotiate(): a compressed answer loses its Content-Length, and then everything would look
    // like a stream (flushed per batch, never one-shot).
    const knownLength = declaredContentLength(headers);
    const streaming = CompressionPolicy.isStreaming(headers);
    const encoding = policy.negotiate(request.method, status, rawHeaderValues(request.req.rawHeaders, 'accept-encoding'), headers);
    if (encoding === null) return null;
    const { gzipLevel, brotliQuality } = policy.config;
    return createCompressedBody(request.res, encoding, request, knownLength, streaming, {
      gzip: gzipLevel,
      brotli: brotliQuality,
    });
  }

  /** For errors about the group as a whole. */
  describe(): string {
    const names = this.servers.map((s) => s.name).join(', ');
    return `group ${this.name} [${names}]`;
  }

  /** After a reload: stop checking, and close the pools once what was admitted here has finished. */
  retire(): void {
    this.#retired = true;
    this.health?.stop();
    if (this.#active === 0) void this.close();
  }

  close(): Promise<void> {
    this.health?.stop();
    this.#closing ??= Promise.all(this.servers.map((s) => s.close())).then(() => this.#resolveClosed());
    return this.#closing;
  }

  async destroy(): Promise<void> {
    this.health?.stop();
    for (const request of this.#queue.clear()) {
      this.#queueLength.dec();
      request.slot = null;
    }
    await Promise.all(this.servers.map((s) => s.destroy()));
  }

  /**
   * A server for a request that takes no concurrency slot (a WebSocket handshake or tunnel): the balancer's
   * choice among servers up, else the all-down fallback.
   */
  pickForConnection(request: PickRequest, nowMs: number): Backend | null {
    return this.balancer.pick(nowMs, request, undefined, false) ?? this.#fallback(nowMs, undefined, false);
  }

  /** Sticky pin first (when its server is up), then the balancer, then the all-down fallback. */
  #choose(request: GroupRequest, nowMs: number, exclude: ReadonlySet<Backend> | undefined): Backend | null {
    if (this.sticky !== null) {
      const pinned = this.sticky.pinned(request.req.rawHeaders);
      if (pinned !== undefined && pinned.isUp(nowMs) && !exclude?.has(pinned)) return pinned;
    }
    const needCapacity = this.config.algorithm !== 'hash';
    return this.balancer.pick(nowMs, request, exclude, needCapacity) ?? this.#fallback(nowMs, exclude, needCapacity);
  }

  /**
   * nginx's rule: when passive health has every server of the group down, try them anyway rather than
   * answer 503 for failTimeoutMs. One timeout or refused connection otherwise took a lone backend's whole
   * site down for 10 s, and its first 200 came seconds after it was back. The least busy such server with
   * room is tried; its answer brings it back up. Servers held down by active checks stay out: those checks
   * are the operator's word that the server is unfit.
   */
  #fallback(nowMs: number, exclude: ReadonlySet<Backend> | undefined, needCapacity: boolean): Backend | null {
    if (this.servers.some((s) => usable(s, nowMs, undefined, false))) return null;
    let best: Backend | null = null;
    for (const server of this.servers) {
      if (!server.passivelyDown || server.weight === 0 || exclude?.has(server)) continue;
      if (needCapacity && !server.hasCapacity) continue;
      if (best === null || server.outstanding < best.outstanding) best = server;
    }
    return best;
  }

  #take(request: GroupRequest, server: Backend): void {
    request.slot = server;
    server.outstanding++;
  }

  #releaseSlot(request: GroupRequest): void {
    const server = request.slot;
    if (server === null) return;
    request.slot = null;
    server.outstanding--;
    if (this.#queue.length > 0) this.drainQueue();
  }
}

function groupOnServerUp(group: BackendGroup): void {
  group.drainQueue();
}
