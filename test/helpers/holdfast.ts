import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput, HoldfastConfig } from '../../src/config/schema.js';
import { startHoldfast, type RunningHoldfast } from '../../src/holdfast.js';
import { within } from './until.js';

/** Log lines a test can inspect instead of printing them. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  #waiters: { match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      this.lines.push(entry);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(entry)) return true;
        w.resolve(entry);
        return false;
      });
    }
    done();
  }

  /** The first line (logged already or later) whose fields include every one of `fields`; fails after `timeoutMs`. */
  waitFor(fields: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const match = (line: Record<string, unknown>) => Object.entries(fields).every(([k, v]) => line[k] === v);
    const found = this.lines.find(match);
    if (found !== undefined) return Promise.resolve(found);
    const waiter = { match, resolve: (_line: Record<string, unknown>) => {} };
    const logged = new Promise<Record<string, unknown>>((resolve) => (waiter.resolve = resolve));
    this.#waiters.push(waiter);
    return within(logged, timeoutMs, `a log line with ${JSON.stringify(fields)}`).finally(() => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
    });
  }
}

export interface TestHoldfast extends RunningHoldfast {
  url: string;
  port: number;
  controlUrl: string;
  logs: LogSink;
}

/** Holdfast on ephemeral loopback ports in front of the given backends; closed after the test. */
export async function startTestHoldfast(
  t: TestContext,
  backends: string[],
  overrides: Partial<ConfigInput> = {},
  options: { loadConfig?: () => HoldfastConfig } = {},
): Promise<TestHoldfast> {
  const config = validateConfig({
    listen: '127.0.0.1:0',
    control: '127.0.0.1:0',
    backends,
    ...overrides,
    log: { level: 'info', ...overrides.log },
  });
  const logs = new LogSink();
  const running = await startHoldfast(config, { logDestination: logs, defaultMetrics: false, ...options });
  t.after(() => running.close());
  return Object.assign(running, {
    url: `http://127.0.0.1:${running.address.port}`,
    port: running.address.port,
    controlUrl: `http://127.0.0.1:${running.controlAddress.port}`,
    logs,
  });
}

/** The value of one sample line in the Prometheus text format, or undefined when absent. */
export async function metricValue(hf: RunningHoldfast, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = await hf.metrics.registry.getSingleMetric(name)?.get();
  if (metric === undefined) return undefined;
  const wanted = Object.entries(labels);
  const sample = metric.values.find((v) =>
    wanted.every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val),
  );
  return sample?.value;
}
