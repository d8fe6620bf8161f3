// Needs Redis at 127.0.0.1:6379 (.ci/run starts one). A node with workers is one client of the engine: the
// primary's hub holds the node's one RedisBus and relays it to its workers over (in-process) IPC channels
// with node:cluster's semantics. test/cluster/bus-relay.test.ts runs it with real processes.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { Bus, BusSink, HistoryResult, PublishResult } from '../../src/bus/bus.js';
import { ClusterBus } from '../../src/bus/cluster-bus.js';
import { ClusterHub, type ClusterHubDeps } from '../../src/bus/cluster-hub.js';
import { BusUnavailableError } from '../../src/errors.js';
import { createMetrics, type Metrics } from '../../src/observe/metrics.js';
import { discardSink } from '../helpers/discard-sink.js';
import { ipcPair } from '../helpers/ipc-pair.js';
import { eventually } from '../helpers/until.js';
import { busContract, item, recordInto, subscribed, type ContractNode } from './contract.js';
import { PrivateRedis, cleanUpPrefix, makeRedisBus, redisClient, uniquePrefix, type RedisBusSetup } from './redis-helpers.js';
import { dropStreamAfter, natsNode } from '../helpers/nats.js';

type Engine = 'redis' | 'nats';

const log = pino({ level: 'silent' });

/** One node: the primary's hub on its own engine client, and the engine's metrics (the node's bus counters). */
interface RelayNode {
  hub: ClusterHub;
  metrics: Metrics;
}

/** A node on the shared engine (`setup` is for a private Redis); the caller cleans up the prefix. */
async function startRelayNode(t: TestContext, prefix: string, kind: Engine = 'redis', setup: RedisBusSetup = {}): Promise<RelayNode> {
  const { engine, metrics } = engineClient(t, prefix, kind, setup);
  const hub = new ClusterHub({ engine, deliveryTimeoutMs: 2_000, log });
  t.after(() => hub.close());
  await hub.start();
  return { hub, metrics };
}

/** How the hub builds its engine client (around itself as the sink), and the client's metrics. */
function engineClient(t: TestContext, prefix: string, kind: Engine, setup: RedisBusSetup): { engine: ClusterHubDeps['engine']; metrics: Metrics } {
  const metrics = createMetrics({ defaultMetrics: false });
  if (kind === 'redis') return { engine: (sink) => makeRedisBus(prefix, { ...setup, sink, metrics }).bus, metrics };
  return { engine: (sink) => natsNode(t, prefix, { sink, metrics }), metrics };
}

/** Every test's engine prefix is dropped afterwards. */
function cleanUp(t: TestContext, prefix: string, kind: Engine): void {
  if (kind === 'redis') cleanUpPrefix(t, prefix);
  else dropStreamAfter(t, prefix);
}

/** A worker of `node`: its ClusterBus on a fresh IPC channel to the hub, recording what it receives. */
async function startWorker(t: TestContext, node: { hub: ClusterHub }, requestTimeoutMs = 5_000): Promise<ContractNode & { bus: ClusterBus }> {
  const pair = ipcPair();
  node.hub.attach(`w${Math.random()}`, pair.a);
  t.after(() => pair.disconnect());
  const seen: Omit<ContractNode, 'bus'> = { received: [], gaps: [] };
  const bus = new ClusterBus({ port: pair.b, connectTimeoutMs: 2_000, requestTimeoutMs, sink: recordInto(seen), metrics: createMetrics({ defaultMetrics: false }), log });
  const worker: ContractNode & { bus: ClusterBus } = { bus, ...seen };
  await bus.start();
  t.after(() => bus.close());
  return worker;
}

// Every bus contract through the relay: the contract's nodes are workers, alternately on two nodes, so
// consecutive ones (a and b in every contract test) are on different nodes, sharing channels through the engine.
const relays = new Map<string, RelayNode[]>();
const attached = new Map<string, number>();
for (const kind of ['redis', 'nats'] as const) {
  busContract(`cluster relay over ${kind}`, async (t, prefix, sink) => {
    let nodes = relays.get(prefix);
    if (nodes === undefined) {
      cleanUp(t, prefix, kind);
      const created = [await startRelayNode(t, prefix, kind), await startRelayNode(t, prefix, kind)];
      relays.set(prefix, created);
      t.after(() => {
        relays.delete(prefix);
        attached.delete(prefix);
      });
      nodes = created;
    }
    const count = (attached.get(prefix) ?? 0) + 1;
    attached.set(prefix, count);
    const pair = ipcPair();
    nodes[(count - 1) % 2]!.hub.attach(`w${count}`, pair.a);
    t.after(() => pair.disconnect());
    return new ClusterBus({ port: pair.b, connectTimeoutMs: 2_000, requestTimeoutMs: 5_000, sink, metrics: createMetrics({ defaultMetrics: false }), log });
  });
}

async function busMessages(metrics: Metrics, direction: 'in' | 'out'): Promise<number> {
  const { values } = await metrics.busMessages.get();
  return values.find((v) => v.labels.direction === direction)?.value ?? 0;
}

for (const kind of ['redis', 'nats'] as const) {
  test(`cluster relay over ${kind}: a node is one engine subscriber and gets one bus message per publish, however many of its workers hold the channel`, async (t) => {
    const prefix = uniquePrefix();
    cleanUp(t, prefix, kind);
    const redis = kind === 'redis' ? await redisClient(t) : null;
    const [a, b] = [await startRelayNode(t, prefix, kind), await startRelayNode(t, prefix, kind)];
    const workersA = [await startWorker(t, a), await startWorker(t, a), await startWorker(t, a)];
    const workersB = [await startWorker(t, b), await startWorker(t, b)];
    for (const w of [...workersA, ...workersB]) w.bus.subscribe('news');
    for (const w of [...workersA.slice(1), ...workersB]) await subscribed(workersA[0]!, w, 'news');
    // Probes carry no id; what follows counts only the items with one.
    const got = (w: ContractNode) => w.received.filter((i) => i.id !== undefined).map((i) => i.id);
    // Redis says who subscribes; for NATS the bus messages below show the same.
    const numsub = async () => (redis === null ? 0 : Number(((await redis.pubsub('NUMSUB', `${prefix}:ch:news`)) as [string, number])[1]));
    if (redis !== null) assert.equal(await numsub(), 2, 'one Redis subscription per node, not one per worker (five hold the channel)');

    const before = { aOut: await busMessages(a.metrics, 'out'), aIn: await busMessages(a.metrics, 'in'), bIn: await busMessages(b.metrics, 'in') };
    const result = await workersA[1]!.bus.publish([item('news', '1')]);
    assert.deepEqual(result.statuses, ['published']);
    assert.equal(result.delivered, 3, "every worker of the publishing node (the test sinks count one per item); the other node's are its own");
    assert.equal(result.remoteNodes, kind === 'redis' ? 1 : undefined, "Redis's receiver count: the other node, once (NATS does not say)");
    await eventually(() => workersB.every((w) => got(w).length === 1), 5_000, "node b's workers to receive");
    for (const w of [...workersA, ...workersB]) assert.deepEqual(got(w), ['1'], 'each worker once');
    assert.equal((await busMessages(a.metrics, 'out')) - before.aOut, 1, 'node a sent the item to the engine once');
    assert.equal((await busMessages(a.metrics, 'in')) - before.aIn, 0, "node a delivered its own item directly, not again off the engine");
    assert.equal((await busMessages(b.metrics, 'in')) - before.bIn, 1, 'node b received it from the engine once, for both its workers');

    if (redis === null) return;
    // The engine subscription follows the node's last holder, not each worker's.
    workersA[0]!.bus.unsubscribe('news');
    workersA[1]!.bus.unsubscribe('news');
    await workersA[2]!.bus.history('news', 'x'); // IPC is ordered: answered after the unsubscribes were applied
    // The node's engine subscriptions gauge moves at once on an unsubscribe (Redis's count only after a round trip).
    assert.equal((await a.metrics.busSubscriptions.get()).values[0]?.value, 1, 'node a still holds it through its third worker');
    assert.equal(await numsub(), 2);
    workersA[2]!.bus.unsubscribe('news');
    await eventually(async () => (await numsub()) === 1, 5_000, "node a's engine subscription to go after its last holder");
  });
}

test('cluster relay: a worker that goes away takes its holds with it; the node unsubscribes when it was the last holder', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const redis = await redisClient(t);
  const node = await startRelayNode(t, prefix);
  const pair = ipcPair();
  node.hub.attach('lonely', pair.a);
  const worker = new ClusterBus({ port: pair.b, connectTimeoutMs: 2_000, requestTimeoutMs: 5_000, sink: discardSink, metrics: createMetrics({ defaultMetrics: false }), log });
  await worker.start();
  worker.subscribe('solo');
  worker.subscribe('solo.', true);
  const numsub = async () => Number(((await redis.pubsub('NUMSUB', `${prefix}:ch:solo`)) as [string, number])[1]);
  // The node's engine subscriptions (a pattern's subscriber count is not per pattern in Redis: NUMPAT is global).
  const engineSubscriptions = async () => (await node.metrics.busSubscriptions.get()).values[0]?.value ?? 0;
  await eventually(async () => (await numsub()) === 1 && (await engineSubscriptions()) === 2, 5_000, 'the channel and the prefix subscribed');
  pair.disconnect();
  await eventually(async () => (await numsub()) === 0 && (await engineSubscriptions()) === 0, 5_000, 'the channel and the prefix to be unsubscribed');
});

test('cluster relay: the workers follow the engine down and back up; a publish meanwhile is refused, never answered as delivered', async (t) => {
  const server = await PrivateRedis.start(t);
  const prefix = uniquePrefix();
  const node = await startRelayNode(t, prefix, 'redis', { url: server.url, connectTimeoutMs: 5_000, requestTimeoutMs: 500 });
  const worker = await startWorker(t, node, 2_000);
  assert.equal(worker.bus.state, 'up');
  await server.stop();
  await eventually(() => worker.bus.state === 'connecting', 5_000, 'the worker to see the engine reconnecting');
  await assert.rejects(worker.bus.publish([item('c', '1')]), (err: unknown) => err instanceof BusUnavailableError && err.code === 'HF_ERR_BUS_UNAVAILABLE');
  await server.restart();
  await eventually(() => worker.bus.state === 'up', 15_000, 'the worker to see the engine back');
  const result = await worker.bus.publish([item('c', '2')]);
  assert.deepEqual(result.statuses, ['published']);
});

/** An engine that reports what a test tells it to, to see the hub relay what only an outage produces. */
class ScriptedEngine implements Bus {
  readonly driver = 'redis';
  state: 'up' | 'connecting' | 'closed' = 'up';
  readonly subscriptions: string[] = [];
  start = () => Promise.resolve();
  constructor(readonly sink: BusSink) {}
  publish(): Promise<PublishResult> {
    return Promise.reject(new BusUnavailableError('redis', 'scripted'));
  }
  subscribe(channel: string, prefix = false): void {
    this.subscriptions.push(`${prefix ? 'prefix' : 'channel'} ${channel}`);
  }
  unsubscribe(): void {}
  history(): Promise<HistoryResult> {
    return Promise.resolve({ items: [], found: false });
  }
  close(): Promise<void> {
    this.state = 'closed';
    return Promise.resolve();
  }
}

test("cluster relay: a gap the engine announces reaches exactly the workers holding the channel; an engine's refusal is the worker's 503", async (t) => {
  const engines: ScriptedEngine[] = [];
  const hub = new ClusterHub({ engine: (sink) => engines[engines.push(new ScriptedEngine(sink)) - 1]!, deliveryTimeoutMs: 1_000, log });
  const engine = engines[0]!;
  t.after(() => hub.close());
  const node = { hub };
  const holder = await startWorker(t, node);
  const prefixHolder = await startWorker(t, node);
  const other = await startWorker(t, node);
  holder.bus.subscribe('lost');
  prefixHolder.bus.subscribe('lo', true);
  other.bus.subscribe('kept');
  await other.bus.history('kept', 'x'); // ordered IPC: every worker's subscriptions have been applied by now
  await holder.bus.history('lost', 'x');
  await prefixHolder.bus.history('lost', 'x');
  assert.deepEqual(engine.subscriptions.sort(), ['channel kept', 'channel lost', 'prefix lo']);
  engine.sink.gap('lost');
  await eventually(() => holder.gaps.length === 1 && prefixHolder.gaps.length === 1, 5_000, 'both holders to hear of the gap');
  await other.bus.history('kept', 'x'); // a round trip after the gap went out: the other worker would have it by now
  assert.deepEqual([holder.gaps, prefixHolder.gaps, other.gaps], [['lost'], ['lost'], []]);
  await assert.rejects(holder.bus.publish([item('lost', '1')]), (err: unknown) => err instanceof BusUnavailableError && /scripted/.test(err.message));
});
