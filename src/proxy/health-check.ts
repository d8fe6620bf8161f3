import type { HealthCheckConfig } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Backend } from './upstream.js';

/**
 * Active health checks for one group on one shared timer: every `intervalMs`, an HTTP GET of `path` to each
 * server through its own pool (so a check also proves the pool can connect), answered in full within
 * `timeoutMs` with the expected status (default any 2xx/3xx, HAProxy's httpchk rule). A server still being
 * checked is not checked again. Outcomes go to Backend.recordCheck, which applies fall and rise.
 */
export class HealthChecker {
  readonly #servers: readonly Backend[];
  readonly #config: HealthCheckConfig;
  readonly #log: Logger;
  readonly #inFlight = new Map<Backend, Promise<void>>();
  #timer: NodeJS.Timeout | null = null;

  constructor(servers: readonly Backend[], config: HealthCheckConfig, log: Logger) {
    this.#servers = servers;
    this.#config = config;
    this.#log = log;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(healthOnTick, this.#config.intervalMs, this);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One round: a check of every server not already being checked. */
  runOnce(): void {
    for (const server of this.#servers) {
      if (this.#inFlight.has(server)) continue;
      const check = this.#check(server).finally(() => this.#inFlight.delete(server));
      this.#inFlight.set(server, check);
    }
  }

  /** Resolves when the checks started so far have finished (tests step the clock, then wait for this). */
  async settled(): Promise<void> {
    await Promise.all(this.#inFlight.values());
  }

  async #check(server: Backend): Promise<void> {
    const { path, timeoutMs, expectStatus } = this.#config;
    let ok = false;
    let reason = '';
    try {
      const res = await server.pool.request({
        path,
        method: 'GET',
        headers: { 'user-agent': 'holdfast-health-check' },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body.dump({ limit: 65_536 });
      ok = expectStatus === undefined ? res.statusCode >= 200 && res.statusCode < 400 : res.statusCode === expectStatus;
      if (!ok) reason = `status ${res.statusCode}`;
    } catch (err) {
      reason = (err as { code?: string }).code ?? (err as Error).name;
    }
    this.#log.debug({ group: server.group, backend: server.name, ok, reason }, 'health check');
    server.recordCheck(ok, Date.now(), reason);
  }
}

function healthOnTick(checker: HealthChecker): void {
  checker.runOnce();
}
