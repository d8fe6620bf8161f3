// The cluster driver (workers' ClusterBus plus the primary's ClusterHub) over in-process IPC channels with
// node:cluster's semantics, held to the contract every multi-node driver owes. test/cluster/ runs it for real.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { BusOptions, BusSink } from '../../src/bus/bus.js';
import { ClusterBus } from '../../src/bus/cluster-bus.js';
import { ClusterHub } from '../../src/bus/cluster-hub.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { BusUnavailableError } from '../../src/errors.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { discardSink } from '../helpers/discard-sink.js';
import { ipcPair } from '../helpers/ipc-pair.js';
import { busContract, item, startNodes, subscribed } from './contract.js';

const options: BusOptions = { maxItems: 100, maxAgeMs: 60_000, sequenceWaitMs: 5_000, sequenceMaxPending: 100, dedupWindowMs: 60_000 };
const log = pino({ level: 'silent' });

/** One hub per test (the contract makes a unique prefix per test), one IPC channel per worker. */
const hubs = new Map<string, ClusterHub>();
const links = new WeakMap<ClusterBus, () => void>();

function clusterNode(t: TestContext, prefix: string, sink: BusSink): Promise<ClusterBus> {
  let hub = hubs.get(prefix);
  if (hub === undefined) {
    const created = new ClusterHub({ engine: (sink) => new MemoryBus(options, sink), deliveryTimeoutMs: 1_000, log });
    hubs.set(prefix, created);
    t.after(async () => {
      await created.close();
      hubs.delete(prefix);
    });
    hub = created;
  }
  const pair = ipcPair();
  hub.attach(`w${Math.random()}`, pair.a);
  const bus = new ClusterBus({ port: pair.b, connectTimeoutMs: 1_000, requestTimeoutMs: 2_000, sink, metrics: createMetrics({ defaultMetrics: false }), log });
  links.set(bus, () => pair.disconnect());
  t.after(() => pair.disconnect());
  return Promise.resolve(bus);
}

// Every worker of the machine is one node: `delivered` counts them all.
busContract('cluster', clusterNode, { deliveredCountsEveryNode: true });

test('cluster bus: delivered counts every worker holding the channel; a worker that goes away loses its interest, not the history', async (t) => {
  const [a, b, c] = await startNodes(t, clusterNode, 3);
  b!.bus.subscribe('all');
  c!.bus.subscribe('all');
  a!.bus.subscribe('all');
  await subscribed(a!, b!, 'all');
  await subscribed(a!, c!, 'all');
  for (const node of [a, b, c]) node!.received.length = 0;
  const result = await a!.bus.publish([item('all', '1')]);
  assert.equal(result.delivered, 3, 'one each on three workers (the test sinks count one per item)');
  assert.deepEqual([a, b, c].map((n) => n!.received.map((i) => i.id)), [['1'], ['1'], ['1']]);

  links.get(c!.bus as ClusterBus)!();
  assert.equal(c!.bus.state, 'closed');
  await assert.rejects(c!.bus.publish([item('all', 'x')]), BusUnavailableError);
  const after = await a!.bus.publish([item('all', '2')]);
  assert.equal(after.delivered, 2, 'the gone worker is no longer counted');
  assert.deepEqual((await b!.bus.history('all', '1')).items.map((i) => i.id), ['2']);
});

test('cluster bus: start fails with BusUnavailableError when no hub answers', async (t) => {
  const pair = ipcPair();
  t.after(() => pair.disconnect());
  const bus = new ClusterBus({ port: pair.b, connectTimeoutMs: 100, requestTimeoutMs: 100, sink: discardSink, metrics: createMetrics({ defaultMetrics: false }), log });
  await assert.rejects(bus.start(), (err: unknown) => err instanceof BusUnavailableError && err.code === 'HF_ERR_BUS_UNAVAILABLE');
});

test('cluster bus: a worker too busy to report its count in time leaves the publish published, with the count marked incomplete', async (t) => {
  const hub = new ClusterHub({ engine: (sink) => new MemoryBus(options, sink), deliveryTimeoutMs: 50, log });
  t.after(() => hub.close());
  const node = (slow: boolean) => {
    const pair = ipcPair();
    hub.attach(`w${Math.random()}`, pair.a);
    t.after(() => pair.disconnect());
    let got = 0;
    // The slow worker's fan-out never finishes within the hub's delivery timeout (a 14k broadcast on a busy box).
    const sink: BusSink = { deliver: (items) => (slow ? new Promise<number>(() => {}) : Promise.resolve((got += items.length))), gap: () => {} };
    const bus = new ClusterBus({ port: pair.b, connectTimeoutMs: 1_000, requestTimeoutMs: 5_000, sink, metrics: createMetrics({ defaultMetrics: false }), log });
    return { bus, got: () => got };
  };
  const fast = node(false);
  const slow = node(true);
  await Promise.all([fast.bus.start(), slow.bus.start()]);
  t.after(() => Promise.all([fast.bus.close(), slow.bus.close()]));
  fast.bus.subscribe('busy');
  slow.bus.subscribe('busy');
  // Subscriptions travel over IPC; a history read after them is answered after they were applied.
  await fast.bus.history('busy', 'x');
  await slow.bus.history('busy', 'x');
  const result = await fast.bus.publish([item('busy', '1')]);
  assert.deepEqual(result.statuses, ['published'], 'never a 503 for items that were published');
  assert.equal(result.delivered, 1, 'the fast worker counted');
  assert.equal(result.unreportedWorkers, 1, 'the slow one is said to be missing, not counted as 0');
  assert.equal(fast.got(), 1);
});
