// Shared by the tests that need Redis: the machine's Redis at 127.0.0.1:6379 (shared with every other test
// run, so every test uses its own key prefix), or a private redis-server for fault tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { BusOptions, BusSink } from '../../src/bus/bus.js';
import { RedisBus } from '../../src/bus/redis-bus.js';
import { createLogger } from '../../src/observe/log.js';
import { createMetrics, type Metrics } from '../../src/observe/metrics.js';
import { stopProcess } from '../helpers/stopped.js';
import { eventually } from '../helpers/until.js';
import { freePort } from '../helpers/listen.js';
import { discardSink } from '../helpers/discard-sink.js';

export const SHARED_REDIS = 'redis://127.0.0.1:6379';

export function uniquePrefix(): string {
  return `hft${randomUUID().slice(0, 8)}`;
}

export function busOptions(overrides: Partial<BusOptions> = {}): BusOptions {
  return { maxItems: 100, maxAgeMs: 60_000, sequenceWaitMs: 5_000, sequenceMaxPending: 100, dedupWindowMs: 60_000, ...overrides };
}

export interface RedisBusSetup {
  url?: string;
  options?: Partial<BusOptions>;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Where the bus delivers; nothing by default. */
  sink?: BusSink;
  /** Its own by default. */
  metrics?: Metrics;
}

/** A RedisBus with its own metrics; not started. */
export function makeRedisBus(prefix: string, setup: RedisBusSetup = {}): { bus: RedisBus; metrics: Metrics } {
  const metrics = setup.metrics ?? createMetrics({ defaultMetrics: false });
  const bus = new RedisBus({
    url: new URL(setup.url ?? SHARED_REDIS),
    prefix,
    connectTimeoutMs: setup.connectTimeoutMs ?? 5_000,
    requestTimeoutMs: setup.requestTimeoutMs ?? 2_000,
    options: busOptions(setup.options),
    sink: setup.sink ?? discardSink,
    metrics,
    log: createLogger('silent'),
  });
  return { bus, metrics };
}

/** Deletes every key under `prefix` on the shared Redis after the test (they would expire anyway). */
export function cleanUpPrefix(t: TestContext, prefix: string, url = SHARED_REDIS): void {
  t.after(async () => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await redis.connect();
    try {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  });
}

/** A direct client for inspecting Redis in a test. */
export async function redisClient(t: TestContext, url = SHARED_REDIS): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  await redis.connect();
  t.after(() => redis.disconnect());
  return redis;
}

/** A private redis-server without persistence, for tests that stop, pause or restart it. */
export class PrivateRedis {
  readonly port: number;
  readonly url: string;
  #child: ChildProcess | null = null;

  private constructor(port: number) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(t: TestContext): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    t.after(() => redis.stop());
    await redis.restart();
    return redis;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts redis-server (again) on the same port and waits until it answers PING. */
  async restart(): Promise<void> {
    if (this.#child !== null) throw new Error('redis-server is already running');
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.#child = child;
    child.once('exit', () => {
      if (this.#child === child) this.#child = null;
    });
    await eventually(async () => {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch (err) {
        if (err instanceof Error && /ECONNREFUSED|Connection is closed/.test(err.message)) return false;
        throw err;
      } finally {
        probe.disconnect();
      }
    }, 10_000, `redis-server on port ${this.port} to answer`);
  }

  /** Kills this redis-server (by its own pid) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    this.#child = null;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP, resolved once every thread of redis-server is stopped. */
  async pause(): Promise<void> {
    if (this.#child?.pid !== undefined) await stopProcess(this.#child.pid);
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }
}

/**
 * A TCP relay in front of Redis that can hold back what Redis sends to subscriber connections (those that
 * sent SUBSCRIBE), to make a node's Pub/Sub messages trail its command replies on purpose.
 */
export class SlowSubscriberRelay {
  url = '';
  #holding = false;
  readonly #held: { socket: Socket; chunk: Buffer }[] = [];

  static async start(t: TestContext, target = { host: '127.0.0.1', port: 6379 }): Promise<SlowSubscriberRelay> {
    const relay = new SlowSubscriberRelay();
    const sockets = new Set<Socket>();
    const server = createServer((client) => relay.#relay(client, connect(target.port, target.host), sockets));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    relay.url = `redis://127.0.0.1:${(server.address() as { port: number }).port}`;
    t.after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return relay;
  }

  hold(): void {
    this.#holding = true;
  }

  release(): void {
    this.#holding = false;
    for (const { socket, chunk } of this.#held.splice(0)) socket.write(chunk);
  }

  #relay(client: Socket, upstream: Socket, sockets: Set<Socket>): void {
    sockets.add(client).add(upstream);
    let subscriber = false;
    client.on('data', (chunk: Buffer) => {
      if (/subscribe/i.test(chunk.toString('latin1'))) subscriber = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (subscriber && this.#holding) this.#held.push({ socket: client, chunk });
      else client.write(chunk);
    });
    for (const [one, other] of [[client, upstream], [upstream, client]] as const) {
      one.on('close', () => other.destroy());
      one.on('error', () => other.destroy());
    }
  }
}
