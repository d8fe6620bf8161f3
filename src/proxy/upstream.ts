import type { Socket } from 'node:net';
import './undici-global-guard.js';
import { buildConnector, type Pool } from 'undici';
import { backendTlsOptions, type BackendTlsOptions } from './backend-tls.js';
import type { HoldfastConfig } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { holdWriteErrors } from './held-write-errors.js';
import { createMruPool } from './mru-pool.js';
import { acceptUnaskedContinue } from './unasked-continue.js';
import { dispatchUnpooled, type UnpooledHandler, type UnpooledRequest, type UnpooledServer } from './unpooled-request.js';

/** Set on a backend socket's errors: how many response bytes the socket had read before it failed. */
export const kSocketBytesRead = Symbol('holdfast.socketBytesRead');

export interface UpstreamDeps {
  config: HoldfastConfig;
  metrics: Metrics;
  log: Logger;
  /** PEM CAs for https:// backends (tls.backendCa, read once per configuration); undefined: Node's roots. */
  backendCa?: string | undefined;
}

/** What a group decides for each of its servers. */
export interface ServerOptions {
  group: string;
  weight: number;
  /** Requests at once on this server; the group queues the rest. */
  maxConcurrent: number;
  maxFails: number;
  failTimeoutMs: number;
  on5xx: boolean;
  slowStartMs: number;
  /** Active checks decide when a server marked down comes back (else: failTimeoutMs later, on trial). */
  activeChecks: { fall: number; rise: number } | null;
}

/** The group default when a Backend is built alone (tests, the shortcut): nginx-style passive health only. */
export function defaultServerOptions(config: HoldfastConfig): ServerOptions {
  return {
    group: 'default',
    weight: 1,
    maxConcurrent: config.upstream.maxConnectionsPerBackend,
    maxFails: config.upstream.maxFails,
    failTimeoutMs: config.upstream.failTimeoutMs,
    on5xx: false,
    slowStartMs: 0,
    activeChecks: null,
  };
}

/**
 * One backend server of a group: an undici Pool of persistent connections, its concurrency count, and its
 * health. Passive health is nginx's (`maxFails` failures within `failTimeoutMs` take it out); without active
 * checks it is tried again `failTimeoutMs` later, with them only `rise` good checks bring it back (HAProxy).
 */
export class Backend {
  readonly name: string;
  readonly group: string;
  readonly weight: number;
  readonly maxConcurrent: number;
  readonly pool: Pool;
  readonly requestCounter: { inc(): void };
  /** Requests holding one of this server's concurrency slots (sent, or being retried on it). */
  outstanding = 0;
  /** Called when the server comes back up (the group hands it queued requests). */
  onUp: (() => void) | null = null;
  /** For an https:// origin, how connections outside the pool (unpooled requests, WebSocket tunnels) reach it. */
  readonly tls: BackendTlsOptions | null;
  readonly #deps: UpstreamDeps;
  readonly #options: ServerOptions;
  /** The same server for the requests undici cannot send (unpooled-request.ts). */
  readonly #unpooled: UnpooledServer;
  readonly #upGauge: { set(value: number): void };
  #recentFailures: number[] = [];
  /** Passive-only: skipped until then. */
  #downUntilMs = 0;
  /** Held down until active checks rise (or, passive-only, until a trial request succeeds). */
  #down = false;
  /** When it last came back: slow start ramps from here. */
  #upSinceMs = 0;
  #checkStreak = 0;

  constructor(origin: string, deps: UpstreamDeps, options: ServerOptions = defaultServerOptions(deps.config)) {
    this.name = origin;
    this.group = options.group;
    this.weight = options.weight;
    this.maxConcurrent = options.maxConcurrent;
    this.#deps = deps;
    this.#options = options;
    const { upstream, timeouts } = deps.config;
    // Most recently used connection first (mru-pool.ts), as nginx and HAProxy reuse theirs.
    this.pool = createMruPool(origin, {
      // One more than the concurrency cap, so an active health check never waits behind traffic.
      connections: options.maxConcurrent + (options.activeChecks === null ? 0 : 1),
      // One request per backend connection at a time: a backend connection is never pipelined, so a failure
      // can always be pinned on exactly one request (DESIGN.md: never a non-idempotent request pipelined).
      pipelining: 1,
      keepAliveTimeout: upstream.keepAliveIdleMs,
      keepAliveMaxTimeout: upstream.keepAliveIdleMs,
      // undici subtracts this from the backend's `Keep-Alive: timeout=N` hint, so we close first.
      keepAliveTimeoutThreshold: 1_000,
      headersTimeout: timeouts.upstreamResponseMs,
      bodyTimeout: timeouts.upstreamBodyStallMs,
      connect: countingConnector(origin, deps, timeouts.upstreamConnectMs),
    });
    const url = new URL(origin);
    this.tls = backendTlsOptions(url, deps.backendCa);
    const connections = deps.metrics.upstreamConnectionsTotal.labels({ backend: origin });
    this.#unpooled = {
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(url.port || (this.tls === null ? 80 : 443)),
      tls: this.tls,
      host: url.host,
      connectTimeoutMs: timeouts.upstreamConnectMs,
      headersTimeoutMs: timeouts.upstreamResponseMs,
      bodyTimeoutMs: timeouts.upstreamBodyStallMs,
      onConnection: () => connections.inc(),
    };
    this.requestCounter = deps.metrics.upstreamRequestsTotal.labels({ backend: origin });
    this.#upGauge = deps.metrics.backendUp.labels({ group: options.group, backend: origin });
    this.#upGauge.set(1);
  }

  /** Send a request undici cannot (asterisk-form, Expect: 100-continue) on a connection of its own. */
  dispatchUnpooled(request: UnpooledRequest, handler: UnpooledHandler): void {
    dispatchUnpooled(this.#unpooled, request, handler);
  }

  isUp(nowMs: number): boolean {
    return !this.#down || (this.#options.activeChecks === null && nowMs >= this.#downUntilMs);
  }

  /** Down by passive health only (no active checks): the group may still try it when all are down. */
  get passivelyDown(): boolean {
    return this.#down && this.#options.activeChecks === null;
  }

  get hasCapacity(): boolean {
    return this.outstanding < this.maxConcurrent;
  }

  /** Weight now: during slow start a server that came back takes a growing share (at least 1/20 of it). */
  effectiveWeight(nowMs: number): number {
    const { slowStartMs } = this.#options;
    if (slowStartMs === 0 || this.#upSinceMs === 0) return this.weight;
    const elapsedMs = nowMs - this.#upSinceMs;
    if (elapsedMs >= slowStartMs) {
      this.#upSinceMs = 0;
      return this.weight;
    }
    return this.weight * Math.max(0.05, elapsedMs / slowStartMs);
  }

  /** Passive health: a connection failure, timeout or broken response (or a 5xx, when on5xx). */
  recordFailure(nowMs: number, reason: string): void {
    const { maxFails, failTimeoutMs } = this.#options;
    this.#recentFailures = this.#recentFailures.filter((t) => nowMs - t < failTimeoutMs);
    this.#recentFailures.push(nowMs);
    if (this.#recentFailures.length >= maxFails && this.isUp(nowMs)) {
      this.#recentFailures = [];
      this.#downUntilMs = nowMs + failTimeoutMs;
      // Passive-only: the trial after failTimeoutMs is where it comes back, so slow start begins there.
      this.#upSinceMs = this.#downUntilMs;
      this.#markDown(reason, this.#options.activeChecks === null ? failTimeoutMs : undefined);
    }
  }

  /** A complete response: 5xx counts as a failure when the group says so; anything else proves it alive. */
  recordResponse(nowMs: number, status: number): void {
    if (status >= 500 && this.#options.on5xx) return this.recordFailure(nowMs, `status ${status}`);
    this.recordSuccess(nowMs);
  }

  recordSuccess(nowMs: number = Date.now()): void {
    // With active checks, only they bring a server back (a request in flight before the mark-down may finish).
    // Passive only: any answer proves it alive, also one tried early because every server was down.
    if (this.#down && this.#options.activeChecks === null) this.#markUp(nowMs, 'request');
  }

  /** One active check's outcome: `fall` bad ones in a row take it out, `rise` good ones bring it back. */
  recordCheck(ok: boolean, nowMs: number, reason: string): void {
    const counts = this.#options.activeChecks;
    if (counts === null) return;
    if (ok === this.#down) this.#checkStreak++;
    else this.#checkStreak = 0;
    if (this.#down && this.#checkStreak >= counts.rise) {
      this.#checkStreak = 0;
      this.#markUp(nowMs, 'health check');
    } else if (!this.#down && this.#checkStreak >= counts.fall) {
      this.#checkStreak = 0;
      this.#markDown(`health check: ${reason}`, undefined);
    }
  }

  #markDown(reason: string, downForMs: number | undefined): void {
    if (this.#down && this.#options.activeChecks !== null) return;
    this.#down = true;
    this.#checkStreak = 0;
    this.#upGauge.set(0);
    this.#deps.metrics.backendTransitionsTotal.inc({ group: this.group, backend: this.name, to: 'down' });
    this.#deps.log.warn({ group: this.group, backend: this.name, reason, downForMs }, 'backend marked down');
  }

  #markUp(nowMs: number, by: string): void {
    this.#down = false;
    this.#downUntilMs = 0;
    this.#recentFailures = [];
    if (this.#options.activeChecks !== null) this.#upSinceMs = nowMs;
    this.#upGauge.set(1);
    this.#deps.metrics.backendTransitionsTotal.inc({ group: this.group, backend: this.name, to: 'up' });
    this.#deps.log.info({ group: this.group, backend: this.name, by }, 'backend back up');
    this.onUp?.();
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}

/**
 * undici's connector, plus what we need of every backend socket: a count of TCP connections opened (the
 * handshakes pooling saves); the socket's bytesRead stamped on its errors, which is how the retry policy
 * tells a reused socket that went stale from a fresh one that failed; and write errors held back until the
 * read side has had its say, so an early answer sent just before a reset is still read (held-write-errors.ts).
 */
function countingConnector(origin: string, deps: UpstreamDeps, timeoutMs: number): buildConnector.connector {
  // An https:// origin: undici's connector does TLS (SNI from the host name) with these CAs.
  const ca = deps.backendCa === undefined ? {} : { ca: deps.backendCa };
  const connect = buildConnector({ timeout: timeoutMs, keepAlive: true, keepAliveInitialDelay: 60_000, ...ca });
  const counter = deps.metrics.upstreamConnectionsTotal.labels({ backend: origin });
  return function connectCounted(options, callback) {
    connect(options, (err, socket) => {
      if (err === null && socket !== null) {
        counter.inc();
        socket.prependListener('error', stampBytesRead);
        holdWriteErrors(socket);
        acceptUnaskedContinue(socket);
      }
      (callback as (e: Error | null, s: Socket | null) => void)(err, socket);
    });
  };
}

function stampBytesRead(this: Socket, err: Error & { [kSocketBytesRead]?: number }): void {
  err[kSocketBytesRead] = this.bytesRead;
}
