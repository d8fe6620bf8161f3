// Needs Redis at 127.0.0.1:6379 (.ci/run starts it). Two nodes, each `holdfast --workers 2 --bus redis://...`
// as a real process tree: the primary holds the node's one engine
// connection and relays it to its workers, so a publish costs one bus message per node holding the channel,
// however many workers hold it there (issue 11). Which worker holds a connection is read from /proc. The hub
// is the same for every engine: test/bus/cluster-relay.test.ts runs it over NATS too, in one process.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from '../helpers/listen.js';
import { eventually } from '../helpers/until.js';
import {
  SseSocket,
  WAIT_MS,
  clusterStarted,
  metricSum,
  ownerOf,
  pinnedClient,
  publishOn,
  scrape,
  spawnCluster,
  startSseBackend,
  streamItem,
  type Started,
} from './cluster-helpers.js';

const ENGINES = { redis: 'redis://127.0.0.1:6379', nats: 'nats://127.0.0.1:4222' } as const;

/** One node: `--workers 2` on the engine under `prefix`, with SSE subscribers on both its workers. */
async function startNode(t: TestContext, engine: keyof typeof ENGINES, prefix: string, backendUrl: string) {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-relay-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'holdfast.yaml');
  writeFileSync(file, `backends: [${backendUrl}]\nbus: { url: '${ENGINES[engine]}', prefix: ${prefix} }\n`);
  const hf = spawnCluster(t, ['--config', file, '--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0']);
  const started = await clusterStarted(hf);
  return { hf, ...started, subscribers: await subscribeOnEveryWorker(t, started) };
}

/** Opens SSE connections until each worker of the node holds at least two (round-robin makes that quick). */
async function subscribeOnEveryWorker(t: TestContext, node: Started): Promise<SseSocket[]> {
  const held: { sse: SseSocket; owner: number }[] = [];
  const count = (pid: number) => held.filter((s) => s.owner === pid).length;
  while (node.pids.some((pid) => count(pid) < 2)) {
    assert.ok(held.length < 30, `30 connections and still one-sided: ${held.map((s) => s.owner).join(',')}`);
    const sse = await SseSocket.open(t, node.listenPort, '/events/news');
    held.push({ sse, owner: await ownerOf(node.listenPort, sse.localPort, node.pids) });
  }
  await eventually(async () => metricSum(await scrape(node.controlUrl), 'holdfast_held_connections') === held.length, WAIT_MS, `${held.length} held connections`);
  return held.map((h) => h.sse);
}

const busMessages = async (node: Started, direction: 'in' | 'out') => metricSum(await scrape(node.controlUrl), 'holdfast_bus_messages_total', `direction="${direction}"`);

test('bus relay over redis: two nodes of two workers; a publish is one bus message out of its node and one into the other, and reaches every worker\'s clients', async (t) => {
  const engine = 'redis';
  const backend = await startSseBackend(t);
  const prefix = `hfr${randomUUID().slice(0, 8)}`;
  const a = await startNode(t, engine, prefix, backend.url);
  const b = await startNode(t, engine, prefix, backend.url);
  const redis = new Redis(ENGINES.redis, { maxRetriesPerRequest: 0 });
  t.after(() => redis.disconnect());
  // Four workers hold the channel; Redis sees one subscriber per node.
  const numsub = async () => Number(((await redis.pubsub('NUMSUB', `${prefix}:ch:news`)) as [string, number])[1]);
  await eventually(async () => (await numsub()) === 2, WAIT_MS, 'both nodes subscribed');
  // The subscription is live on b once an item from a arrives there: probe until one does.
  const { client } = await pinnedClient(t, a.controlUrl);
  let probes = 0;
  await eventually(async () => {
    await publishOn(client, [streamItem('news', `probe${probes++}`)]);
    return b.subscribers.every((s) => s.text.includes('data: probe'));
  }, WAIT_MS, "node b's subscription to be live");
  await b.subscribers[0]!.has(`data: probe${probes - 1}\n`, 'the last probe');

  const before = { aOut: await busMessages(a, 'out'), aIn: await busMessages(a, 'in'), bIn: await busMessages(b, 'in'), bOut: await busMessages(b, 'out') };
  const published = await publishOn(client, [streamItem('news', 'hello', 'h1')]);
  assert.equal(published.status, 200);
  assert.equal(published.headers['x-holdfast-delivered'], String(a.subscribers.length), "node a's count covers both its workers");
  for (const sse of [...a.subscribers, ...b.subscribers]) await sse.has('data: hello\n');
  await eventually(async () => (await busMessages(b, 'in')) - before.bIn === 1, WAIT_MS, 'node b to count the item in');
  assert.equal((await busMessages(a, 'out')) - before.aOut, 1, 'one message from node a to the engine, not one per worker');
  assert.equal((await busMessages(b, 'in')) - before.bIn, 1, 'one message into node b for its two workers');
  assert.equal((await busMessages(a, 'in')) - before.aIn, 0, 'node a delivered its own item without a round trip');
  assert.equal((await busMessages(b, 'out')) - before.bOut, 0);
  for (const sse of [...a.subscribers, ...b.subscribers]) assert.equal(sse.text.split('data: hello\n').length, 2, 'once per client');

  // Replay from the engine's history on the other node, through its primary: published before the reconnect.
  await publishOn(client, [streamItem('news', 'after', 'h2')]);
  for (const sse of b.subscribers) await sse.has('data: after\n');
  const replayed = await SseSocket.open(t, b.listenPort, '/events/news', 'h1');
  await replayed.has('data: after\n');
  assert.ok(!replayed.text.includes('data: hello'), 'nothing before the Last-Event-ID');

  await client.close();
  for (const node of [a, b]) node.hf.process.kill('SIGTERM');
  for (const node of [a, b]) assert.equal((await node.hf.exited).code, 0, node.hf.stderr());
});

test('bus relay: an engine that cannot be reached stops the primary before any worker is forked, with one line and exit 1', async (t) => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-relay-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'holdfast.yaml');
  writeFileSync(file, `backends: ['http://127.0.0.1:9']\nbus: { url: 'redis://127.0.0.1:${port}', connectTimeoutMs: 300 }\n`);
  const hf = spawnCluster(t, ['--config', file, '--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0']);
  const { code } = await hf.exited;
  assert.equal(code, 1);
  const lines = hf.stderr().trim().split('\n');
  assert.equal(lines.length, 1, hf.stderr());
  assert.match(lines[0]!, new RegExp(`redis://127\\.0\\.0\\.1:${port}`));
  assert.equal(hf.all('starting workers').length, 0, 'no worker was forked');
});
