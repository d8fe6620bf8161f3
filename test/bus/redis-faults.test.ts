// Needs redis-server on the PATH: each test starts its own (no persistence) on a free port, then kills,
// restarts or pauses that process by its pid, so the shared Redis of other test runs is never touched.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { EventSource } from 'eventsource';
import type { Redis } from 'ioredis';
import type { RedisBus } from '../../src/bus/redis-bus.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { eventually } from '../helpers/until.js';
import { HeldStream, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';
import { PrivateRedis, redisClient, uniquePrefix } from './redis-helpers.js';
import { Inbox, openEventSource } from '../helpers/sse.js';

async function startNodes(t: TestContext, redis: PrivateRedis, count: number, backends: string[], overrides: Partial<ConfigInput> = {}) {
  const prefix = uniquePrefix();
  const nodes: TestHoldfast[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await startTestHoldfast(t, backends, { ...overrides, bus: { url: redis.url, prefix, requestTimeoutMs: 300, ...overrides.bus } }));
  }
  return { nodes, prefix };
}

async function subscribers(client: Redis, prefix: string, channel: string, n: number): Promise<void> {
  await eventually(async () => {
    const [, count] = (await client.pubsub('NUMSUB', `${prefix}:ch:${channel}`)) as [string, number];
    return Number(count) === n;
  }, 10_000, `${n} nodes subscribed to ${channel}`);
}

function busState(nodes: TestHoldfast[], state: string): Promise<void> {
  return eventually(() => nodes.every((n) => n.bus.state === state), 10_000, `every node's bus to be ${state}`);
}

/** A backend holding every request as a stream on the channel named by the path; SSE when the path ends in .sse. */
function holdBackend(t: TestContext) {
  return startGripBackend(t, (req, res) => {
    const path = req.url!.slice(1).split('?')[0]!;
    const instruct = res.grip.startInstruct();
    instruct.addChannel(path.replace(/\.sse$/, ''));
    instruct.setHoldStream();
    if (path.endsWith('.sse')) res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end();
  });
}

function sseItem(channel: string, id: string): Record<string, unknown> {
  return streamItem(channel, `data: m${id}\n\n`, id);
}

test('redis faults: Redis restarted mid-traffic: clients stay, publishes in the outage are 503, subscriptions come back', async (t) => {
  const redis = await PrivateRedis.start(t);
  const backend = await holdBackend(t);
  const { nodes, prefix } = await startNodes(t, redis, 2, [backend.url]);
  const [a, b] = nodes as [TestHoldfast, TestHoldfast];
  const es = openEventSource(t, `${b.url}/feed.sse`);
  const inbox = new Inbox(es, ['message', 'holdfast-gap']);
  const stream = await HeldStream.open(t, b.port, '/ticks');
  let probe = await redisClient(t, redis.url);
  await subscribers(probe, prefix, 'feed', 1);
  await subscribers(probe, prefix, 'ticks', 1);
  for (const id of ['1', '2']) assert.equal((await publishRaw(a, { items: [sseItem('feed', id)] })).status, 200);
  assert.equal((await publishRaw(a, { items: [streamItem('ticks', 'before;')] })).status, 200);
  await inbox.waitCount(2);
  await stream.waitForText('before;');

  probe.disconnect();
  await redis.stop();
  await busState(nodes, 'connecting');
  const refused = await publishRaw(a, { items: [sseItem('feed', '3')] });
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('x-holdfast-error'), 'HF_ERR_BUS_UNAVAILABLE');
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal((await fetch(`${a.controlUrl}/healthz`)).status, 503, 'not ready while the bus is down');
  assert.equal(await metricValue(b, 'holdfast_bus_up', { driver: 'redis' }), 0);

  const restartedAt = performance.now();
  await redis.restart();
  await busState(nodes, 'up');
  t.diagnostic(`both nodes up ${Math.round(performance.now() - restartedAt)} ms after redis-server was restarted`);
  probe = await redisClient(t, redis.url);
  await subscribers(probe, prefix, 'feed', 1);
  await subscribers(probe, prefix, 'ticks', 1);
  assert.equal(await metricValue(b, 'holdfast_bus_reconnects_total'), 1);
  assert.equal(await metricValue(b, 'holdfast_bus_up', { driver: 'redis' }), 1);
  assert.equal(es.readyState, EventSource.OPEN, 'the SSE client stayed connected');
  assert.equal(stream.closed, false, 'the stream client stayed connected');
  assert.equal(b.holds.heldCount, 2);

  assert.equal((await publishRaw(a, { items: [sseItem('feed', '4')] })).status, 200);
  assert.equal((await publishRaw(a, { items: [streamItem('ticks', 'after;')] })).status, 200);
  await inbox.waitCount(3);
  await stream.waitForText('after;');
  assert.deepEqual(inbox.events.map((e) => `${e.type}:${e.id}`), ['message:1', 'message:2', 'message:4'], 'the refused 3 was never sent; no gap: nothing held was lost');
  assert.equal(stream.body, 'before;after;');

  // Redis kept nothing over the restart: a client coming back with an id from before it gets the gap event.
  const late = new Inbox(openEventSource(t, `${b.url}/feed.sse`, '2'), ['message', 'holdfast-gap']);
  await late.waitCount(1);
  assert.equal(late.events[0]!.type, 'holdfast-gap');
  assert.deepEqual(JSON.parse(late.events[0]!.data), { channel: 'feed', lastEventId: '2' });
});

test('redis faults: Redis paused (SIGSTOP): a publish is 503 within requestTimeoutMs and never sent later; after SIGCONT traffic flows', async (t) => {
  const redis = await PrivateRedis.start(t);
  const backend = await holdBackend(t);
  const { nodes, prefix } = await startNodes(t, redis, 2, [backend.url]);
  const [a, b] = nodes as [TestHoldfast, TestHoldfast];
  const stream = await HeldStream.open(t, b.port, '/p');
  const probe = await redisClient(t, redis.url);
  await subscribers(probe, prefix, 'p', 1);
  assert.equal((await publishRaw(a, { items: [streamItem('p', 'one;', '1')] })).status, 200);
  await stream.waitForText('one;');

  await redis.pause();
  t.after(() => redis.resume());
  const started = performance.now();
  const refused = await publishRaw(a, { items: [streamItem('p', 'refused;', '2')] });
  const elapsed = performance.now() - started;
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('x-holdfast-error'), 'HF_ERR_BUS_UNAVAILABLE');
  // requestTimeoutMs is 300: the answer comes from the command timeout, not from a hang (bound generous
  // for a loaded machine; without the timeout it would wait for the resume below, forever).
  assert.ok(elapsed < 3_000, `answered after ${Math.round(elapsed)} ms`);
  t.diagnostic(`publish during SIGSTOP answered 503 after ${Math.round(elapsed)} ms (requestTimeoutMs 300)`);
  assert.equal(stream.closed, false);

  redis.resume();
  // The refused item was still in Redis's socket when it stopped; it ran on resume and refused itself
  // (past its deadline), so the 503 stays true. The next publish proves the order: nothing came between.
  await eventually(async () => (await publishRaw(a, { items: [streamItem('p', 'two;', '3')] })).status === 200, 10_000, 'a publish after the resume');
  await stream.waitForText('two;');
  assert.equal(stream.body.replaceAll('two;', ''), 'one;', 'the refused item never reached the client');
  assert.ok(stream.body.startsWith('one;two;'));
  assert.deepEqual((await b.bus.history('p', '1')).items.map((i) => i.id), ['3'], 'nor history');
  assert.equal(b.holds.heldCount, 1, 'the client stayed held');
});

/**
 * Locks every node but `keep` out of Redis: a password their reconnects do not have (connections already
 * open stay authenticated, so `keep` goes on), then drops their connections. Every connection but keep's
 * (named after its node id) and the admin's: a connection that came back in the middle of a password
 * change may have missed its CLIENT SETNAME, so the others' names cannot be relied on.
 */
function lockOutAllBut(admin: Redis, keep: TestHoldfast): () => Promise<void> {
  const keepName = `holdfast-${(keep.bus as RedisBus).nodeId}`;
  return async () => {
    const adminId = String(await admin.client('ID'));
    await admin.config('SET', 'requirepass', 'locked');
    const lines = ((await admin.client('LIST')) as string).split('\n').filter((l) => l.trim() !== '');
    const others = lines.filter((l) => !l.includes(` name=${keepName}`) && /\bid=(\d+)/.exec(l)![1] !== adminId);
    for (const line of others) await admin.client('KILL', 'ID', /\bid=(\d+)/.exec(line)![1]!);
  };
}

test('redis faults: a node cut off while Redis stays up catches up from the stream on reconnect, or announces a gap', async (t) => {
  const redis = await PrivateRedis.start(t);
  const backend = await holdBackend(t);
  const { nodes, prefix } = await startNodes(t, redis, 2, [backend.url], { push: { historyMaxItems: 3 } });
  const [a, b] = nodes as [TestHoldfast, TestHoldfast];
  const es = openEventSource(t, `${b.url}/feed.sse`);
  const inbox = new Inbox(es, ['message', 'holdfast-gap']);
  const admin = await redisClient(t, redis.url);
  await subscribers(admin, prefix, 'feed', 1);
  assert.equal((await publishRaw(a, { items: [sseItem('feed', '1')] })).status, 200);
  await inbox.waitCount(1);

  const lockOut = lockOutAllBut(admin, a);
  await lockOut();
  await busState([b], 'connecting');
  assert.equal(a.bus.state, 'up');
  for (const id of ['2', '3']) assert.equal((await publishRaw(a, { items: [sseItem('feed', id)] })).status, 200);
  await admin.config('SET', 'requirepass', '');
  await busState([b], 'up');
  await inbox.waitCount(3);
  assert.deepEqual(inbox.events.map((e) => `${e.type}:${e.id}`), ['message:1', 'message:2', 'message:3'], 'caught up, in order');
  assert.equal(es.readyState, EventSource.OPEN);

  // Again, but A publishes more than history keeps: B cannot catch up and tells its clients.
  await lockOut();
  await busState([b], 'connecting');
  for (const id of ['4', '5', '6', '7', '8']) assert.equal((await publishRaw(a, { items: [sseItem('feed', id)] })).status, 200);
  await admin.config('SET', 'requirepass', '');
  await busState([b], 'up');
  await inbox.waitCount(7);
  assert.deepEqual(
    inbox.events.slice(3).map((e) => (e.type === 'holdfast-gap' ? `gap:${JSON.parse(e.data).channel}` : `message:${e.id}`)),
    ['gap:feed', 'message:6', 'message:7', 'message:8'],
    'the gap, then what history still had',
  );
});

test('redis faults: a node cut off catches up channels it holds only by a wildcard prefix, or announces their gap', async (t) => {
  const redis = await PrivateRedis.start(t);
  const backend = await holdBackend(t);
  const { nodes } = await startNodes(t, redis, 2, [backend.url], { push: { historyMaxItems: 3, wildcardChannels: true } });
  const [a, b] = nodes as [TestHoldfast, TestHoldfast];
  const es = openEventSource(t, `${b.url}/scores.*.sse`);
  const inbox = new Inbox(es, ['message', 'holdfast-gap']);
  const admin = await redisClient(t, redis.url);
  await eventually(async () => Number(await admin.pubsub('NUMPAT')) === 1, 10_000, 'the prefix subscribed');
  assert.equal((await publishRaw(a, { items: [sseItem('scores.1', '1')] })).status, 200);
  await inbox.waitCount(1);

  const lockOut = lockOutAllBut(admin, a);
  await lockOut();
  await busState([b], 'connecting');
  // Two channels B's client holds only through `scores.*`, and one it does not hold at all.
  for (const [channel, id] of [['scores.1', '2'], ['scores.2', '3'], ['other', 'x']] as const) {
    assert.equal((await publishRaw(a, { items: [sseItem(channel, id)] })).status, 200);
  }
  await admin.config('SET', 'requirepass', '');
  await busState([b], 'up');
  await inbox.waitCount(3);
  assert.deepEqual(inbox.events.map((e) => `${e.type}:${e.id}`), ['message:1', 'message:2', 'message:3'], 'caught up from both histories');
  // Live again after the catch-up, and nothing delivered twice.
  assert.equal((await publishRaw(a, { items: [sseItem('scores.2', '4')] })).status, 200);
  await inbox.waitCount(4);

  // More than history keeps on one channel: a gap for it, then what it still has.
  await lockOut();
  await busState([b], 'connecting');
  for (const id of ['5', '6', '7', '8', '9']) assert.equal((await publishRaw(a, { items: [sseItem('scores.1', id)] })).status, 200);
  await admin.config('SET', 'requirepass', '');
  await busState([b], 'up');
  await inbox.waitCount(8);
  assert.deepEqual(
    inbox.events.slice(3).map((e) => (e.type === 'holdfast-gap' ? `gap:${JSON.parse(e.data).channel}` : `message:${e.id}`)),
    ['message:4', 'gap:scores.1', 'message:7', 'message:8', 'message:9'],
    'the gap, then what history still had',
  );
  assert.equal(es.readyState, EventSource.OPEN);
});
