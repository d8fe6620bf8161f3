// Needs Redis at 127.0.0.1:6379 (.ci/run starts one). Each test keeps to its own key prefix.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Counter, Gauge } from 'prom-client';
import { BusUnavailableError } from '../../src/errors.js';
import type { Metrics } from '../../src/observe/metrics.js';
import { eventually } from '../helpers/until.js';
import { busContract, item, recordInto, subscribed, type ContractNode } from './contract.js';
import { SlowSubscriberRelay, cleanUpPrefix, makeRedisBus, redisClient, uniquePrefix, type RedisBusSetup } from './redis-helpers.js';
import { freePort } from '../helpers/listen.js';

busContract('redis', (t, prefix, sink) => {
  cleanUpPrefix(t, prefix);
  return Promise.resolve(makeRedisBus(prefix, { sink }).bus);
});

interface Node extends ContractNode {
  metrics: Metrics;
}

/** `count` started nodes under `prefix`, each recording what its sink received. */
async function nodes(t: TestContext, prefix: string, count: number, setup: RedisBusSetup = {}): Promise<Node[]> {
  const out: Node[] = [];
  for (let i = 0; i < count; i++) {
    const seen: Omit<ContractNode, 'bus'> = { received: [], gaps: [] };
    const { bus, metrics } = makeRedisBus(prefix, { ...setup, sink: recordInto(seen) });
    const node: Node = { bus, metrics, ...seen };
    t.after(() => bus.close());
    await bus.start();
    out.push(node);
  }
  return out;
}

async function metricValue(metric: Counter<string> | Gauge<string>, labels: Record<string, string> = {}): Promise<number | undefined> {
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val))?.value;
}

test('redis bus: an item whose predecessor never comes waits sequenceWaitMs, then goes out after what came before', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const [a, b] = await nodes(t, prefix, 2, { options: { sequenceWaitMs: 300 } });
  b!.bus.subscribe('lost');
  await subscribed(a!, b!, 'lost');
  assert.deepEqual((await a!.bus.publish([item('lost', '1')])).statuses, ['published']);
  assert.deepEqual((await a!.bus.publish([item('lost', '3', '2')])).statuses, ['queued']);
  await eventually(() => b!.received.length === 2, 5_000, 'the waiting item to go out on its own');
  assert.deepEqual(b!.received.map((i) => i.id), ['1', '3']);
  // Later items chain on the one that went out.
  assert.deepEqual((await a!.bus.publish([item('lost', '4', '3')])).statuses, ['published']);
  assert.deepEqual((await b!.bus.history('lost', '1')).items.map((i) => i.id), ['3', '4']);
});

test('redis bus: more items waiting on a channel than sequenceMaxPending are dropped, and say so', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const [a] = await nodes(t, prefix, 1, { options: { sequenceMaxPending: 1 } });
  await a!.bus.publish([item('cap', '1')]);
  const result = await a!.bus.publish([item('cap', '5', '4'), item('cap', '7', '6')]);
  assert.deepEqual(result.statuses, ['queued', 'dropped']);
});

test('redis bus: history is bounded by maxItems (the stream too); with maxItems 0 nothing is replayable', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const redis = await redisClient(t);
  const [a] = await nodes(t, prefix, 1, { options: { maxItems: 3 } });
  await a!.bus.publish(['1', '2', '3', '4', '5'].map((id) => item('bounded', id)));
  assert.deepEqual((await a!.bus.history('bounded', '3')).items.map((i) => i.id), ['4', '5']);
  assert.equal((await a!.bus.history('bounded', '2')).found, false, 'trimmed');
  assert.equal(await redis.xlen(`${prefix}:h:bounded`), 3);

  const zeroPrefix = uniquePrefix();
  cleanUpPrefix(t, zeroPrefix);
  const [z] = await nodes(t, zeroPrefix, 1, { options: { maxItems: 0 } });
  await z!.bus.publish([item('none', '1'), item('none', '2')]);
  assert.deepEqual(await z!.bus.history('none', '1'), { items: [], found: false });
  assert.equal(await redis.xlen(`${zeroPrefix}:h:none`), 1, 'the last entry stays, for prev-id');
  assert.deepEqual((await z!.bus.publish([item('none', '4', '3')])).statuses, ['queued'], 'prev-id still sequences');
});

test('redis bus: every key it writes expires (history after maxAgeMs, de-dup after the window)', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const redis = await redisClient(t);
  const [a] = await nodes(t, prefix, 1, { options: { maxAgeMs: 30_000, dedupWindowMs: 10_000 } });
  await a!.bus.publish([item('ttl', '1'), item('ttl', undefined)]);
  const keys = (await redis.keys(`${prefix}:*`)).sort();
  assert.deepEqual(keys, [`${prefix}:d:ttl`, `${prefix}:h:ttl`]);
  const historyTtl = await redis.pttl(`${prefix}:h:ttl`);
  const dedupTtl = await redis.pttl(`${prefix}:d:ttl`);
  assert.ok(historyTtl > 0 && historyTtl <= 30_000, `history ttl ${historyTtl}`);
  assert.ok(dedupTtl > 0 && dedupTtl <= 10_000, `de-dup ttl ${dedupTtl}`);
});

test('redis bus: an operator sees who holds what with PUBSUB CHANNELS; the last holder leaving unsubscribes', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const redis = await redisClient(t);
  const [a, b] = await nodes(t, prefix, 2);
  b!.bus.subscribe('news');
  b!.bus.subscribe('news');
  b!.bus.subscribe('sports.', true);
  await subscribed(a!, b!, 'news');
  assert.deepEqual(await redis.pubsub('CHANNELS', `${prefix}:ch:*`), [`${prefix}:ch:news`]);
  assert.equal(Number(await redis.pubsub('NUMPAT')) >= 1, true);
  assert.equal(await metricValue(b!.metrics.busSubscriptions), 2);
  b!.bus.unsubscribe('news');
  assert.deepEqual(await redis.pubsub('CHANNELS', `${prefix}:ch:*`), [`${prefix}:ch:news`], 'one holder is left');
  b!.bus.unsubscribe('news');
  await eventually(async () => (await redis.pubsub('CHANNELS', `${prefix}:ch:*`)).length === 0, 5_000, 'the unsubscribe');
  assert.equal(await metricValue(b!.metrics.busSubscriptions), 1);
});

test('redis bus: a node that holds nothing gets no bus traffic; remoteNodes counts the nodes that received it', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const redis = await redisClient(t);
  const [a, b, c, idle] = await nodes(t, prefix, 4);
  b!.bus.subscribe('busy');
  c!.bus.subscribe('busy');
  c!.bus.subscribe('bus', true);
  await subscribed(a!, b!, 'busy');
  await subscribed(a!, c!, 'busy');
  // Once more for b, so no probe is still on its way there when its count is read.
  await subscribed(a!, b!, 'busy');
  const bIn = (await metricValue(b!.metrics.busMessages, { direction: 'in' }))!;
  a!.bus.subscribe('busy');
  const results = [];
  for (let i = 0; i < 10; i++) results.push(await a!.bus.publish([item('busy', String(i))]));
  assert.deepEqual(results.map((r) => r.delivered), Array(10).fill(1), 'a delivers to its own holder');
  // b holds it once; c exactly and by a prefix: Redis counts c twice (documented on remoteNodes).
  assert.deepEqual(new Set(results.map((r) => r.remoteNodes)), new Set([3]));
  // Probes (no id) from the subscription checks may still arrive: count the ten items only.
  const ids = (n: Node) => n.received.filter((i) => i.id !== undefined).map((i) => i.id);
  await eventually(() => ids(b!).length === 10 && ids(c!).length === 10, 5_000, 'b and c to receive all ten');
  assert.deepEqual(ids(c!), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], 'once each, in order');
  assert.equal(await metricValue(b!.metrics.busMessages, { direction: 'in' }), bIn + 10);
  assert.equal(await metricValue(idle!.metrics.busMessages, { direction: 'in' }), undefined, 'the idle node received nothing');
  assert.equal(await metricValue(a!.metrics.busMessages, { direction: 'in' }), undefined, 'a skips its own items');
  assert.equal((await metricValue(a!.metrics.busMessages, { direction: 'out' }))! >= 10, true);
  const numsub = (await redis.pubsub('NUMSUB', `${prefix}:ch:busy`)) as [string, number];
  assert.equal(Number(numsub[1]), 3, 'a, b and c subscribe to it; the idle node does not');
});

test('redis bus: start() against a closed port rejects with HF_ERR_BUS_UNAVAILABLE within connectTimeoutMs', async (t) => {
  const port = await freePort();
  const { bus, metrics } = makeRedisBus(uniquePrefix(), { url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 });
  t.after(() => bus.close());
  const started = performance.now();
  await assert.rejects(bus.start(), (err: unknown) => {
    assert.ok(err instanceof BusUnavailableError);
    assert.equal(err.code, 'HF_ERR_BUS_UNAVAILABLE');
    assert.equal((err.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
    return true;
  });
  assert.ok(performance.now() - started < 5_000, 'no long retry loop past connectTimeoutMs');
  assert.equal(bus.state, 'connecting');
  assert.equal(await metricValue(metrics.busUp, { driver: 'redis' }), 0);
  await assert.rejects(bus.publish([item('x', '1')]), { code: 'HF_ERR_BUS_UNAVAILABLE' });
});

test('redis bus: a node delivers its own item after another node\'s earlier one that is still on its way (stream order everywhere)', async (t) => {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const relay = await SlowSubscriberRelay.start(t);
  const [b] = await nodes(t, prefix, 1);
  const [a] = await nodes(t, prefix, 1, { url: relay.url });
  a!.bus.subscribe('order');
  await subscribed(b!, a!, 'order');
  // B's item is published, but its Pub/Sub message to A trails behind (held in the relay) when A publishes.
  relay.hold();
  await b!.bus.publish([item('order', 'r1')]);
  let answered = false;
  const mine = a!.bus.publish([item('order', 'x')]).then((result) => {
    answered = true;
    return result;
  });
  const redis = await redisClient(t);
  await eventually(async () => {
    const [last] = await redis.xrevrange(`${prefix}:h:order`, '+', '-', 'COUNT', 1);
    return last?.[1].includes('x') === true;
  }, 5_000, "A's item to be in the stream");
  relay.release();
  assert.equal((await mine).delivered, 1, 'delivered once its predecessor arrived');
  assert.ok(answered);
  assert.deepEqual(a!.received.filter((i) => i.id !== undefined).map((i) => i.id), ['r1', 'x'], 'stream order, not publish-answer order');
});
