import type { Socket } from 'node:net';
import './undici-global-guard.js';
import { Pool, buildConnector } from 'undici';
import type { HoldfastConfig } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';

/** Set on a backend socket's errors: how many response bytes the socket had read before it failed. */
export const kSocketBytesRead = Symbol('holdfast.socketBytesRead');

export interface UpstreamDeps {
  config: HoldfastConfig;
  metrics: Metrics;
  log: Logger;
}

/**
 * One backend origin: an undici Pool of persistent connections plus nginx-style passive health
 * (`maxFails` failures within `failTimeoutMs` take it out for `failTimeoutMs`).
 */
export class Backend {
  readonly name: string;
  readonly pool: Pool;
  readonly requestCounter: { inc(): void };
  readonly #deps: UpstreamDeps;
  #recentFailures: number[] = [];
  #downUntilMs = 0;

  constructor(origin: string, deps: UpstreamDeps) {
    this.name = origin;
    this.#deps = deps;
    const { upstream, timeouts } = deps.config;
    this.pool = new Pool(origin, {
      connections: upstream.maxConnectionsPerBackend,
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
    this.requestCounter = deps.metrics.upstreamRequestsTotal.labels({ backend: origin });
    deps.metrics.backendUp.set({ backend: origin }, 1);
  }

  isUp(nowMs: number): boolean {
    return nowMs >= this.#downUntilMs;
  }

  recordFailure(nowMs: number, reason: string): void {
    const { maxFails, failTimeoutMs } = this.#deps.config.upstream;
    this.#recentFailures = this.#recentFailures.filter((t) => nowMs - t < failTimeoutMs);
    this.#recentFailures.push(nowMs);
    if (this.#recentFailures.length >= maxFails && this.isUp(nowMs)) {
      this.#downUntilMs = nowMs + failTimeoutMs;
      this.#recentFailures = [];
      this.#deps.metrics.backendUp.set({ backend: this.name }, 0);
      this.#deps.log.warn({ backend: this.name, reason, downForMs: failTimeoutMs }, 'backend marked down');
    }
  }

  recordSuccess(): void {
    if (this.#downUntilMs !== 0) {
      this.#downUntilMs = 0;
      this.#deps.metrics.backendUp.set({ backend: this.name }, 1);
      this.#deps.log.info({ backend: this.name }, 'backend back up');
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}

/**
 * undici's connector, plus two things we need: a count of TCP connections opened (the handshakes pooling
 * saves), and the socket's bytesRead stamped on its errors, which is how the retry policy tells a reused
 * socket that went stale from a fresh one that failed.
 */
function countingConnector(origin: string, deps: UpstreamDeps, timeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: timeoutMs, keepAlive: true, keepAliveInitialDelay: 60_000 });
  const counter = deps.metrics.upstreamConnectionsTotal.labels({ backend: origin });
  return function connectCounted(options, callback) {
    connect(options, (err, socket) => {
      if (err === null && socket !== null) {
        counter.inc();
        socket.prependListener('error', stampBytesRead);
      }
      (callback as (e: Error | null, s: Socket | null) => void)(err, socket);
    });
  };
}

function stampBytesRead(this: Socket, err: Error & { [kSocketBytesRead]?: number }): void {
  err[kSocketBytesRead] = this.bytesRead;
}
