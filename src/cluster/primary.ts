import cluster, { type Worker } from 'node:cluster';
import type { DestinationStream } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { loadEngineBus } from '../bus/create-bus.js';
import { ClusterHub } from '../bus/cluster-hub.js';
import type { IpcPort } from '../bus/cluster-messages.js';
import type { HoldfastConfig } from '../config/schema.js';
import { ClusterUnavailableError, ConfigError, HoldfastError, WorkerCrashLoopError } from '../errors.js';
import { createLogger, type Logger } from '../observe/log.js';
import { createMetrics, type Metrics } from '../observe/metrics.js';
import { parseWorkerToPrimary, toWireError, type Address, type PrimaryToWorker, type WireError, type WorkerToPrimary } from './messages.js';

/** Restart backoff: 100 ms doubling to 5 s; a worker that stayed up this long starts again from 100 ms. */
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 5_000;
const STABLE_AFTER_MS = 30_000;
/** A slot whose worker exits this many times in a row before it is ready stops the primary. */
const MAX_START_FAILURES = 5;
const RELOAD_TIMEOUT_MS = 10_000;
const METRICS_TIMEOUT_MS = 4_000;
/** After timeouts.drainMs, workers still draining get this long before they are killed. */
const DRAIN_GRACE_MS = 5_000;

export interface PrimaryOptions {
  config: HoldfastConfig;
  /** Reads the configuration again (a reload validates it here before asking the workers). */
  readConfig: () => HoldfastConfig;
  workers: number;
  /** Extra environment for the workers. */
  env?: Record<string, string>;
  logDestination?: DestinationStream;
  /** Every worker is ready: the addresses they serve. */
  onStarted?: (addresses: { listen: Address; control: Address }) => void;
}

export interface Outcome {
  code: number;
  /** Why the primary stopped, when it was not a clean shutdown (printed as one line). */
  message?: string;
}

interface Slot {
  index: number;
  worker: Worker | null;
  ready: boolean;
  readyAtMs: number;
  crashes: number;
  startFailures: number;
  lastStartError: string | null;
  restartTimer: NodeJS.Timeout | null;
}

/** One request the primary sent to several workers, answered by each. */
interface Gathering<T> {
  waiting: Set<number>;
  answers: T[];
  done(): void;
}

/**
 * The cluster primary: holds the node's one bus (the memory bus, or its one Redis or NATS client) and
 * relays it to the workers (cluster-hub.ts), forks the workers (which share the client and control ports
 * through node:cluster, as Node 20 has no SO_REUSEPORT), restarts one that dies with a bounded backoff,
 * reloads every worker on SIGHUP or on a worker's `POST /reload`, aggregates every worker's metrics for a
 * scrape any worker receives, and drains them all on SIGTERM/SIGINT. Never exits itself: resolves to the
 * outcome and main.ts exits.
 */
export async function runPrimary(options: PrimaryOptions): Promise<Outcome> {
  const log = createLogger(options.config.log.level, options.logDestination).child({ role: 'primary', pid: process.pid });
  // The engine's counters (bus messages, state, subscriptions) are the node's: summed into /metrics with the workers'.
  const metrics = createMetrics({ defaultMetrics: false });
  const engine = await loadEngineBus(options.config, metrics, log);
  const hub = new ClusterHub({ engine, deliveryTimeoutMs: options.config.bus.requestTimeoutMs, log });
  try {
    // Before any worker: an unreachable engine stops start-up with its one line, as without workers.
    await hub.start();
  } catch (err) {
    await hub.close();
    if (err instanceof HoldfastError) return { code: 1, message: err.message };
    throw err;
  }
  log.info({ bus: hub.engineDriver }, 'bus ready: the primary holds it for every worker');
  return new Primary(options, log, hub, metrics).outcome;
}

class Primary {
  readonly outcome: Promise<Outcome>;
  readonly #options: PrimaryOptions;
  readonly #log: Logger;
  readonly #hub: ClusterHub;
  readonly #engineMetrics: Metrics;
  readonly #slots: Slot[] = [];
  readonly #bySlot = new Map<number, Slot>();
  readonly #registry = new Registry();
  readonly #restarts: Counter;
  readonly #readyGauge: Gauge;
  readonly #gatherings = new Map<number, Gathering<unknown>>();
  #nextId = 1;
  #started = false;
  #stopping: Outcome | null = null;
  #signals = 0;
  #drainTimer: NodeJS.Timeout | null = null;
  #killed = false;
  #finish!: (outcome: Outcome) => void;
  readonly #onSignal = (signal: NodeJS.Signals) => this.#signal(signal);
  readonly #onHup = () => void this.#reloadAll().then((answer) => this.#logReload(answer), (err: unknown) => this.#reloadFailed(err));
  readonly #onExit = (worker: Worker, code: number | null, signal: string | null) => this.#exited(worker, code, signal);

  constructor(options: PrimaryOptions, log: Logger, hub: ClusterHub, engineMetrics: Metrics) {
    this.#options = options;
    this.outcome = new Promise((resolve) => (this.#finish = resolve));
    this.#log = log;
    this.#hub = hub;
    this.#engineMetrics = engineMetrics;
    this.#restarts = new Counter({ name: 'holdfast_worker_restarts_total', help: 'Workers restarted by the primary after they exited', registers: [this.#registry] });
    this.#readyGauge = new Gauge({ name: 'holdfast_workers', help: 'Workers ready to serve (the primary counts them)', registers: [this.#registry] });
    process.on('SIGTERM', this.#onSignal);
    process.on('SIGINT', this.#onSignal);
    process.on('SIGHUP', this.#onHup);
    cluster.on('exit', this.#onExit);
    this.#log.info({ workers: options.workers }, 'starting workers');
    for (let index = 0; index < options.workers; index++) {
      const slot: Slot = { index, worker: null, ready: false, readyAtMs: 0, crashes: 0, startFailures: 0, lastStartError: null, restartTimer: null };
      this.#slots.push(slot);
      this.#fork(slot);
    }
  }

  #fork(slot: Slot): void {
    slot.restartTimer = null;
    slot.ready = false;
    const worker = cluster.fork(this.#options.env ?? {});
    slot.worker = worker;
    this.#bySlot.set(worker.id, slot);
    this.#hub.attach(String(worker.id), workerPort(worker));
    worker.on('message', (raw: unknown) => {
      const message = parseWorkerToPrimary(raw);
      if (message !== null) this.#receive(slot, worker, message);
    });
  }

  #receive(slot: Slot, worker: Worker, message: WorkerToPrimary): void {
    switch (message.hf) {
      case 'cluster.ready':
        return this.#ready(slot, worker, message.listen, message.control);
      case 'cluster.start-failed':
        slot.lastStartError = message.message;
        // At start-up a worker's failure is the command's failure (a port in use): stop with its line and code.
        if (!this.#started) this.#stop({ code: message.exitCode, message: message.message });
        return;
      case 'cluster.reload-all':
        void this.#reloadAll().then(
          (answer) => {
            this.#logReload(answer);
            send(worker, { hf: 'cluster.reload-all-result', id: message.id, ...answer });
          },
          (err: unknown) => {
            const answer = { applied: 0, workers: this.#readyWorkers().length, error: toWireError(this.#reloadFailed(err)) };
            send(worker, { hf: 'cluster.reload-all-result', id: message.id, ...answer });
          },
        );
        return;
      case 'cluster.metrics':
        this.#metrics().then(
          (text) => send(worker, { hf: 'cluster.metrics-result', id: message.id, text }),
          (err: unknown) => send(worker, { hf: 'cluster.metrics-result', id: message.id, error: (err as Error).message }),
        );
        return;
      case 'cluster.reloaded':
      case 'cluster.metrics-json': {
        const gathering = this.#gatherings.get(message.id);
        if (gathering === undefined || !gathering.waiting.delete(worker.id)) return;
        gathering.answers.push(message);
        if (gathering.waiting.size === 0) gathering.done();
        return;
      }
    }
  }

  #ready(slot: Slot, worker: Worker, listen: Address, control: Address): void {
    slot.ready = true;
    slot.readyAtMs = performance.now();
    slot.startFailures = 0;
    slot.lastStartError = null;
    this.#readyGauge.set(this.#slots.filter((s) => s.ready).length);
    this.#log.info({ worker: worker.id, workerPid: worker.process.pid, listen, control }, 'worker ready');
    if (this.#stopping !== null) {
      send(worker, { hf: 'cluster.drain' });
      return;
    }
    if (this.#started || !this.#slots.every((s) => s.ready)) return;
    this.#started = true;
    const pids = this.#slots.map((s) => s.worker?.process.pid);
    this.#log.info({ listen, control, workerPids: pids }, 'cluster started');
    this.#options.onStarted?.({ listen, control });
  }

  #exited(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.#bySlot.get(worker.id);
    if (slot === undefined) return;
    this.#bySlot.delete(worker.id);
    this.#hub.detach(String(worker.id));
    for (const gathering of this.#gatherings.values()) {
      if (gathering.waiting.delete(worker.id) && gathering.waiting.size === 0) gathering.done();
    }
    const wasReady = slot.ready;
    slot.worker = null;
    slot.ready = false;
    this.#readyGauge.set(this.#slots.filter((s) => s.ready).length);
    const fields = { worker: worker.id, workerPid: worker.process.pid, code, signal };
    if (this.#stopping !== null) {
      // A worker we killed (still starting, a second signal, the deadline) has already decided the outcome.
      if (code !== 0 && !this.#killed) {
        this.#log.error(fields, 'worker failed while stopping');
        if (this.#stopping.code === 0) this.#stopping = { code: 1, message: `worker ${worker.id} exited with ${signal ?? `code ${code}`} while draining` };
      } else this.#log.info(fields, 'worker exited');
      this.#maybeFinish();
      return;
    }
    this.#log.error(fields, 'worker exited unexpectedly');
    if (!wasReady) {
      slot.startFailures++;
      if (slot.startFailures >= MAX_START_FAILURES) {
        const err = new WorkerCrashLoopError(slot.startFailures, slot.lastStartError ?? `the last one exited with ${signal ?? `code ${code}`}`);
        this.#log.error({ code: err.code, err: err.message }, 'giving up on a worker');
        this.#stop({ code: 1, message: err.message });
        return;
      }
    }
    if (performance.now() - slot.readyAtMs > STABLE_AFTER_MS) slot.crashes = 0;
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** slot.crashes);
    slot.crashes++;
    this.#restarts.inc();
    this.#log.warn({ slot: slot.index, delayMs }, 'restarting worker');
    slot.restartTimer = setTimeout(() => this.#fork(slot), delayMs);
  }

  #signal(signal: NodeJS.Signals): void {
    if (++this.#signals > 1) {
      this.#log.warn({ signal }, 'second signal: stopping at once');
      this.#kill();
      this.#stopping = { code: 1, message: 'stopped at once by a second signal' };
      this.#maybeFinish();
      return;
    }
    this.#log.info({ signal }, 'shutting down: draining every worker');
    this.#stop({ code: 0 });
  }

  /** Drains every worker (or kills them, while still starting up) and finishes when they have all exited. */
  #stop(outcome: Outcome): void {
    if (this.#stopping !== null) return;
    this.#stopping = outcome;
    for (const slot of this.#slots) if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
    if (!this.#started) this.#kill();
    else for (const slot of this.#slots) if (slot.worker !== null) send(slot.worker, { hf: 'cluster.drain' });
    this.#drainTimer = setTimeout(() => {
      this.#log.error('workers still running after the drain deadline: killing them');
      this.#stopping = { code: 1, message: 'workers did not finish draining in time' };
      this.#kill();
    }, this.#options.config.timeouts.drainMs + DRAIN_GRACE_MS);
    this.#maybeFinish();
  }

  #kill(): void {
    this.#killed = true;
    for (const slot of this.#slots) {
      if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
      slot.worker?.process.kill('SIGKILL');
    }
  }

  #maybeFinish(): void {
    if (this.#stopping === null || this.#bySlot.size > 0) return;
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    void this.#hub.close().catch((err: unknown) => this.#log.warn({ err }, 'closing the bus failed'));
    process.off('SIGTERM', this.#onSignal);
    process.off('SIGINT', this.#onSignal);
    process.off('SIGHUP', this.#onHup);
    cluster.off('exit', this.#onExit);
    if (this.#stopping.code === 0) this.#log.info('every worker has exited');
    this.#finish(this.#stopping);
  }

  /** Validates the configuration here first (a bad one never reaches a worker), then reloads every ready worker. */
  async #reloadAll(): Promise<{ applied: number; workers: number; error?: WireError }> {
    const ready = this.#readyWorkers();
    try {
      this.#options.readConfig();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return { applied: 0, workers: ready.length, error: toWireError(err) };
    }
    const answers = (await this.#gather(ready, 'cluster.reload', RELOAD_TIMEOUT_MS)) as Extract<WorkerToPrimary, { hf: 'cluster.reloaded' }>[];
    const failed = answers.find((a) => a.error !== undefined);
    const applied = answers.filter((a) => a.error === undefined).length;
    if (failed?.error !== undefined) return { applied, workers: ready.length, error: failed.error };
    if (applied < ready.length) {
      const err = new ClusterUnavailableError(`${ready.length - applied} of ${ready.length} workers did not confirm the reload`);
      return { applied, workers: ready.length, error: toWireError(err) };
    }
    return { applied, workers: ready.length };
  }

  /** Reading the configuration failed other than as a ConfigError (a bug): logged, answered as unavailable. */
  #reloadFailed(err: unknown): HoldfastError {
    this.#log.error({ err }, 'config reload failed');
    return err instanceof HoldfastError ? err : new ClusterUnavailableError(`reload failed: ${(err as Error).message}`);
  }

  #logReload(answer: { applied: number; workers: number; error?: WireError }): void {
    if (answer.error === undefined) this.#log.info({ applied: answer.applied, workers: answer.workers }, 'workers reloaded');
    else this.#log.error({ applied: answer.applied, workers: answer.workers, code: answer.error.code, err: answer.error.message }, 'config reload refused, the running one stays');
  }

  /**
   * The whole machine's metrics: each ready worker's registry as JSON over our IPC, summed by prom-client's
   * AggregatorRegistry.aggregate (gauges such as held connections add up), plus the primary's own. Not
   * clusterMetrics(): it asks every connected worker, and one still starting (no listener yet) fails the
   * whole scrape after 5 s (prometheus/client_js#181).
   */
  async #metrics(): Promise<string> {
    const ready = this.#readyWorkers();
    const answers = (await this.#gather(ready, 'cluster.collect-metrics', METRICS_TIMEOUT_MS)) as Extract<WorkerToPrimary, { hf: 'cluster.metrics-json' }>[];
    if (answers.length < ready.length) throw new Error(`${ready.length - answers.length} of ${ready.length} workers did not send their metrics in time`);
    const own = [await this.#registry.getMetricsAsJSON(), await this.#engineMetrics.registry.getMetricsAsJSON()];
    const all = [...answers.map((a) => a.metrics), ...own] as Parameters<typeof AggregatorRegistry.aggregate>[0];
    return AggregatorRegistry.aggregate(all).metrics();
  }

  #readyWorkers(): Worker[] {
    return this.#slots.filter((s) => s.ready && s.worker !== null && s.worker.isConnected()).map((s) => s.worker!);
  }

  /** Sends `hf` to every worker in `targets` and resolves with the answers that came within the timeout. */
  #gather(targets: Worker[], hf: 'cluster.reload' | 'cluster.collect-metrics', timeoutMs: number): Promise<unknown[]> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const gathering: Gathering<unknown> = {
        waiting: new Set(targets.map((w) => w.id)),
        answers: [],
        done: () => {
          clearTimeout(timer);
          this.#gatherings.delete(id);
          resolve(gathering.answers);
        },
      };
      const timer = setTimeout(() => gathering.done(), timeoutMs);
      this.#gatherings.set(id, gathering);
      if (targets.length === 0) return gathering.done();
      for (const worker of targets) send(worker, { hf, id });
    });
  }
}

function send(worker: Worker, message: PrimaryToWorker): void {
  if (worker.isConnected()) worker.send(message, undefined, ignoreSendError);
}

function ignoreSendError(): void {
  // The worker's channel closed under the send: its 'exit' is handled on its own.
}

/** The hub's view of one worker's channel. */
function workerPort(worker: Worker): IpcPort {
  return {
    send(message) {
      if (!worker.isConnected()) return false;
      worker.send(message, undefined, ignoreSendError);
      return true;
    },
    onMessage: (listener) => void worker.on('message', listener),
    offMessage: (listener) => void worker.off('message', listener),
    onDisconnect: (listener) => void worker.once('disconnect', listener),
    get connected() {
      return worker.isConnected();
    },
  };
}
