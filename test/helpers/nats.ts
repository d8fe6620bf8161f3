// Helpers for tests that need NATS with JetStream: the shared server at 127.0.0.1:4222 (tests use a unique
// prefix each and delete their stream afterwards), or a private nats-server for fault tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connect, errors } from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { BusDriverDeps, BusOptions } from '../../src/bus/bus.js';
import { NatsBus } from '../../src/bus/nats-bus.js';
import { createLogger } from '../../src/observe/log.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { stopProcess } from './stopped.js';
import { eventually, nullIfRefused } from './until.js';
import { discardSink } from './discard-sink.js';
import { freePort } from './listen.js';

export const SHARED_NATS = 'nats://127.0.0.1:4222';

export function busOptions(overrides: Partial<BusOptions> = {}): BusOptions {
  return { maxItems: 100, maxAgeMs: 300_000, sequenceWaitMs: 5_000, sequenceMaxPending: 100, dedupWindowMs: 60_000, ...overrides };
}

export type NatsNode = NatsBus & { metrics: ReturnType<typeof createMetrics> };

/** A NATS bus node with its own metrics and a silent log; closed after the test. */
export function natsNode(t: TestContext, prefix: string, overrides: Partial<Omit<BusDriverDeps, 'url'>> & { url?: string } = {}): NatsNode {
  const metrics = createMetrics({ defaultMetrics: false });
  const bus = new NatsBus({
    url: new URL(overrides.url ?? SHARED_NATS),
    prefix,
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 2_000,
    options: busOptions(),
    sink: discardSink,
    metrics,
    log: createLogger('silent'),
    ...Object.fromEntries(Object.entries(overrides).filter(([k]) => k !== 'url')),
  });
  t.after(() => bus.close());
  return Object.assign(bus, { metrics });
}

/** Deletes the prefix's history stream after the test (registered first, so it runs after the nodes closed). */
export function dropStreamAfter(t: TestContext, prefix: string, url = SHARED_NATS): void {
  t.after(async () => {
    const nc = await connect({ servers: new URL(url).host, timeout: 2_000 });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(`${prefix}_history`).catch((err: unknown) => {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
        throw err;
      });
    } finally {
      await nc.close();
    }
  });
}

/** A private nats-server (JetStream on file storage in a temp dir, unless told otherwise); killed (by its own pid) after the test. */
export class PrivateNats {
  readonly port: number;
  readonly storeDir: string;
  #child: ChildProcess | null = null;
  readonly #closeFirst: { close(): Promise<unknown> }[] = [];

  private constructor(port: number, storeDir: string, jetstream: boolean) {
    this.port = port;
    this.storeDir = storeDir;
    this.#jetstream = jetstream;
  }

  readonly #jetstream: boolean;

  static async start(t: TestContext, options: { jetstream?: boolean } = {}): Promise<PrivateNats> {
    const nats = new PrivateNats(await freePort(), mkdtempSync(join(tmpdir(), 'hf-nats-')), options.jetstream ?? true);
    t.after(async () => {
      // After-hooks run in the order they were registered, so this one comes before the nodes' own: close
      // them first (close is idempotent), so no client is mid-close when the server dies (nats.js can then
      // raise a write-after-end from its socket).
      for (const node of nats.#closeFirst) await node.close();
      await nats.stop();
      rmSync(nats.storeDir, { recursive: true, force: true });
    });
    await nats.run();
    return nats;
  }

  /** Nodes (buses, Holdfast instances) to close before the server is killed after the test. */
  closesFirst(...nodes: { close(): Promise<unknown> }[]): void {
    this.#closeFirst.push(...nodes);
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.#child!.pid!;
  }

  /** Starts (or restarts) the server on the same port and store; resolves once it accepts connections. */
  async run(): Promise<void> {
    const js = this.#jetstream ? ['-js', '-sd', this.storeDir] : [];
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(this.port), ...js], { stdio: 'ignore' });
    this.#child = child;
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}`);
      // Refused: not listening yet. A timeout: listening but not greeting yet (a loaded machine). Nothing else.
      const nc = await connect({ servers: `127.0.0.1:${this.port}`, timeout: 500 }).catch((err: unknown) =>
        err instanceof errors.TimeoutError ? null : nullIfRefused(err),
      );
      if (nc === null) return false;
      await nc.close();
      return true;
    }, 10_000, `nats-server on ${this.port} to accept connections`);
  }

  /** SIGTERM is a clean shutdown (the store is flushed); the test's cleanup uses SIGKILL. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill(signal);
    await exited;
  }

  /** SIGSTOP, resolved once every thread of nats-server is stopped. */
  pause(): Promise<void> {
    return stopProcess(this.#child!.pid!);
  }

  resume(): void {
    this.#child!.kill('SIGCONT');
  }
}
