import cluster from 'node:cluster';
import type { HoldfastConfig } from '../config/schema.js';
import { ClusterUnavailableError, ConfigError, E, HoldfastError } from '../errors.js';
import { startHoldfast, type ClusterControl, type RunningHoldfast } from '../holdfast.js';
import { fromWireError, parsePrimaryToWorker, toWireError, type PrimaryToWorker, type WorkerToPrimary } from './messages.js';

/** A reload waits on every worker (each re-reads its config and swaps its groups); a scrape on every registry. */
const RELOAD_TIMEOUT_MS = 10_000;
const METRICS_TIMEOUT_MS = 5_000;

function send(message: WorkerToPrimary): void {
  if (process.send !== undefined && process.connected) process.send(message, undefined, {}, ignoreSendError);
}

function ignoreSendError(): void {
  // A send racing the primary's exit: node:cluster exits this worker when the channel drops.
}

/** Sends and resolves once the message is written, so a process.exit right after cannot lose it. */
function sendBeforeExit(message: WorkerToPrimary): Promise<void> {
  if (process.send === undefined || !process.connected) return Promise.resolve();
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

/** The worker's requests to the primary (reload everyone, aggregate metrics), answered by id. */
class PrimaryLink implements ClusterControl {
  readonly #pending = new Map<number, (message: PrimaryToWorker) => void>();
  #nextId = 1;

  reloadAll(): Promise<string> {
    return this.#ask('cluster.reload-all', RELOAD_TIMEOUT_MS).then((answer) => {
      if (answer.hf !== 'cluster.reload-all-result') throw new ClusterUnavailableError(`unexpected answer ${answer.hf}`);
      if (answer.error !== undefined) throw fromWireError(answer.error);
      return `reloaded ${answer.applied} of ${answer.workers} workers\n`;
    });
  }

  metrics(): Promise<string> {
    return this.#ask('cluster.metrics', METRICS_TIMEOUT_MS).then((answer) => {
      if (answer.hf !== 'cluster.metrics-result') throw new ClusterUnavailableError(`unexpected answer ${answer.hf}`);
      if (answer.text === undefined) throw new ClusterUnavailableError(answer.error ?? 'no metrics');
      return answer.text;
    });
  }

  /** An answer (reload-all-result, metrics-result) to one of our requests. */
  settle(message: PrimaryToWorker & { id: number }): boolean {
    const resolve = this.#pending.get(message.id);
    if (resolve === undefined) return false;
    this.#pending.delete(message.id);
    resolve(message);
    return true;
  }

  #ask(hf: 'cluster.reload-all' | 'cluster.metrics', timeoutMs: number): Promise<PrimaryToWorker> {
    if (!process.connected) return Promise.reject(new ClusterUnavailableError('the IPC channel is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ClusterUnavailableError(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      send({ hf, id });
    });
  }
}

/**
 * One cluster worker: the ordinary Holdfast (edge, proxy, holds, control listener) on the ports the primary
 * shares, with `bus: memory` reaching the primary's hub. Reports ready or why it could not start (the
 * primary prints it: one line, whatever the number of workers), reloads when the primary says, drains on
 * SIGTERM/SIGINT or on the primary's word. Resolves to the exit code.
 */
export async function runWorker(readConfig: () => HoldfastConfig): Promise<number> {
  const link = new PrimaryLink();
  const workerId = cluster.worker?.id ?? 0;
  let running: RunningHoldfast;
  try {
    running = await startHoldfast(readConfig(), {
      loadConfig: readConfig,
      logBindings: { worker: workerId, pid: process.pid },
      cluster: link,
    });
  } catch (err) {
    const exitCode = err instanceof ConfigError ? 2 : 1;
    await sendBeforeExit({ hf: 'cluster.start-failed', message: err instanceof Error ? err.message : String(err), exitCode });
    return exitCode;
  }

  let exit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  const drain = () => {
    running.drain().then(
      // Requests cut at the drain deadline make the exit non-zero, as in one process (main.ts).
      (cut) => exit(cut > 0 ? 1 : 0),
      (err: unknown) => {
        running.log.error({ err }, 'drain failed');
        exit(1);
      },
    );
  };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) return exit(1);
    running.log.info({ signal }, 'shutting down');
    drain();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // SIGHUP is the primary's to handle (it reloads every worker); a stray one to a worker must not kill it.
  process.on('SIGHUP', () => running.log.info('SIGHUP ignored in a worker: send it to the primary'));
  // No 'disconnect' handler: when the primary dies, node:cluster's own handler exits the worker at once
  // (lib/internal/cluster/child.js), before any listener of ours could start a drain.
  process.on('message', (raw: unknown) => {
    const message = parsePrimaryToWorker(raw);
    if (message === null) return;
    switch (message.hf) {
      case 'cluster.drain':
        drain();
        return;
      case 'cluster.reload':
        send({ hf: 'cluster.reloaded', id: message.id, ...reloadHere(running) });
        return;
      case 'cluster.collect-metrics':
        running.metrics.registry.getMetricsAsJSON().then(
          (metrics) => send({ hf: 'cluster.metrics-json', id: message.id, metrics }),
          (err: unknown) => {
            running.log.error({ err }, 'collecting metrics failed');
            send({ hf: 'cluster.metrics-json', id: message.id, metrics: [] });
          },
        );
        return;
      default:
        if (!link.settle(message)) running.log.warn({ hf: message.hf }, 'an answer from the primary nobody waits for');
    }
  });
  send({ hf: 'cluster.ready', listen: running.address, control: running.controlAddress });
  return exited;
}

function reloadHere(running: RunningHoldfast): { error?: ReturnType<typeof toWireError> } {
  try {
    running.reload();
    return {};
  } catch (err) {
    // reload() logged it (every bad key); the primary gathers it into the answer.
    if (err instanceof HoldfastError) return { error: toWireError(err) };
    return { error: toWireError(new HoldfastError(E.INTERNAL, (err as Error).message, { cause: err })) };
  }
}
