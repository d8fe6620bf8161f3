// Needs Redis at 127.0.0.1:6379 (.ci/run starts one). Two and three Holdfast instances share channels
// through it: publishes go to one node's control port, clients hold on the others. Each test has its own
// key prefix, so runs on the shared Redis never see each other.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { HttpResponseFormat, HttpStreamFormat, WebSocketMessageFormat } from '@fanoutio/grip';
import type { Redis } from 'ioredis';
import type { ConfigInput } from '../../src/config/schema.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { eventually } from '../helpers/until.js';
import { HeldStream, publisherFor, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';
import { WsClient, startWsOverHttpBackend } from '../ws/ws-helpers.js';
import { SHARED_REDIS, cleanUpPrefix, redisClient, uniquePrefix } from './redis-helpers.js';
import { Inbox, openEventSource } from '../helpers/sse.js';
import { readJsonLines } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `count` Holdfast instances in this process on one Redis under a fresh prefix, each with its own connections. */
async function startNodes(t: TestContext, count: number, backends: string[], overrides: Partial<ConfigInput> = {}) {
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const redis = await redisClient(t);
  const nodes: TestHoldfast[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await startTestHoldfast(t, backends, { ...overrides, bus: { url: SHARED_REDIS, prefix, ...overrides.bus } }));
  }
  return { nodes, prefix, redis };
}

/** Waits until Redis has `n` subscribers on `channel` (each holding node subscribes once, however many clients). */
async function subscribers(redis: Redis, prefix: string, channel: string, n: number): Promise<void> {
  await eventually(async () => {
    const [, count] = (await redis.pubsub('NUMSUB', `${prefix}:ch:${channel}`)) as [string, number];
    return Number(count) === n;
  }, 5_000, `${n} nodes subscribed to ${channel}`);
}

/** An SSE backend: every request becomes a stream hold on the channel named by the path. */
function sseBackend(t: TestContext) {
  return startGripBackend(t, (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel(req.url!.slice(1).split('?')[0]!);
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end();
  });
}

/** A plain stream backend (GRIP hold stream) on the channel named by the path. */
function streamBackend(t: TestContext) {
  return startGripBackend(t, (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel(req.url!.slice(1));
    instruct.setHoldStream();
    res.end();
  });
}

test('redis nodes: SSE clients on nodes B and C get what is published on node A (@fanoutio/grip Publisher)', async (t) => {
  const backend = await sseBackend(t);
  const { nodes: [a, b, c], prefix, redis } = await startNodes(t, 3, [backend.url]);
  const atB = new Inbox(openEventSource(t, `${b!.url}/feed`), ['message', 'holdfast-gap']);
  const atC = new Inbox(openEventSource(t, `${c!.url}/feed`), ['message', 'holdfast-gap']);
  await subscribers(redis, prefix, 'feed', 2);
  await publisherFor(a!).publishHttpStream('feed', 'data: one\n\n', '1');
  const answer = await publishRaw(a!, { items: [{ channel: 'feed', id: '2', formats: { 'http-stream': { content: 'data: two\n\n' } } }] });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('x-holdfast-delivered'), '0', 'A holds no client');
  assert.equal(answer.headers.get('x-holdfast-nodes'), '2', 'B and C received it');
  await atB.waitCount(2);
  await atC.waitCount(2);
  for (const inbox of [atB, atC]) assert.deepEqual(inbox.events.map((e) => `${e.id}:${e.data}`), ['1:one', '2:two']);
  assert.equal(await metricValue(b!, 'holdfast_bus_messages_total', { direction: 'in' }), 2);
  assert.equal(await metricValue(a!, 'holdfast_bus_messages_total', { direction: 'out' }), 2);
  assert.equal(await metricValue(a!, 'holdfast_bus_messages_total', { direction: 'in' }), undefined, 'A holds nothing, hears nothing');
  assert.equal(await metricValue(a!, 'holdfast_bus_up', { driver: 'redis' }), 1);
});

test('redis nodes: replay across nodes: Last-Event-ID on node B gets what was published on node A; too old gets the gap event', async (t) => {
  const backend = await sseBackend(t);
  const { nodes: [a, b], prefix, redis } = await startNodes(t, 2, [backend.url], { push: { historyMaxItems: 3 } });
  const first = new Inbox(openEventSource(t, `${a!.url}/feed`), ['message', 'holdfast-gap']);
  await subscribers(redis, prefix, 'feed', 1);
  for (const id of ['1', '2']) await publisherFor(a!).publishHttpStream('feed', `data: m${id}\n\n`, id);
  await first.waitCount(2);
  // The client went away after 2 (it saw it); 3 and 4 are published while it is gone.
  for (const id of ['3', '4']) await publisherFor(a!).publishHttpStream('feed', `data: m${id}\n\n`, id);
  const back = new Inbox(openEventSource(t, `${b!.url}/feed`, '2'), ['message', 'holdfast-gap']);
  await back.waitCount(2);
  await subscribers(redis, prefix, 'feed', 2);
  await publisherFor(a!).publishHttpStream('feed', `data: m5\n\n`, '5');
  await back.waitCount(3);
  assert.deepEqual(back.events.map((e) => `${e.type}:${e.id}:${e.data}`), ['message:3:m3', 'message:4:m4', 'message:5:m5']);
  assert.equal(await metricValue(b!, 'holdfast_replayed_total'), 2);

  // History keeps 3 items (3, 4, 5): a client whose last event was 1 missed 2 for good.
  const late = new Inbox(openEventSource(t, `${b!.url}/feed`, '1'), ['message', 'holdfast-gap']);
  await late.waitCount(1);
  assert.equal(late.events[0]!.type, 'holdfast-gap');
  assert.deepEqual(JSON.parse(late.events[0]!.data), { channel: 'feed', lastEventId: '1' });
});

test('redis nodes: long-poll on node B is answered by a publish on node A', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('lp');
    instruct.setHoldLongPoll(60);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"messages":[]}');
  });
  const { nodes: [a, b], prefix, redis } = await startNodes(t, 2, [backend.url]);
  const client = await RawClient.connect(t, b!.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await subscribers(redis, prefix, 'lp', 1);
  await publisherFor(a!).publishFormats('lp', new HttpResponseFormat({ code: '200', headers: { 'x-from': 'a' }, body: '{"messages":["hi"]}' }));
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-from'], 'a');
  assert.equal(res.body.toString(), '{"messages":["hi"]}');
  // The answered client let go of the channel: B unsubscribes.
  await subscribers(redis, prefix, 'lp', 0);
});

test('redis nodes: HTTP streams on nodes B and C get a publish on node A, and a close action', async (t) => {
  const backend = await streamBackend(t);
  const { nodes: [a, b, c], prefix, redis } = await startNodes(t, 3, [backend.url]);
  const atB = await HeldStream.open(t, b!.port, '/ticker');
  const atC = await HeldStream.open(t, c!.port, '/ticker');
  await subscribers(redis, prefix, 'ticker', 2);
  const publisher = publisherFor(a!);
  await publisher.publishHttpStream('ticker', 'tick 1\n');
  await publisher.publishHttpStream('ticker', 'tick 2\n');
  await publisher.publishHttpStream('ticker', new HttpStreamFormat(null, true));
  await atB.waitFinished();
  await atC.waitFinished();
  assert.equal(atB.body, 'tick 1\ntick 2\n');
  assert.equal(atC.body, 'tick 1\ntick 2\n');
});

test('redis nodes: GRIP over WebSocket-over-HTTP: a client on node B subscribed by its backend gets a publish on node A', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => {
    ws.accept();
    ws.subscribe('room');
  });
  const { nodes: [a, b], prefix, redis } = await startNodes(t, 2, [backend.url], { websocket: { overHttpPaths: ['/ws'] } });
  const client = await WsClient.open(t, `ws://127.0.0.1:${b!.port}/ws/chat`);
  client.ws.send('hi');
  assert.equal(await client.nextText(), 'echo:hi');
  await subscribers(redis, prefix, 'room', 1);
  await publisherFor(a!).publishFormats('room', new WebSocketMessageFormat('from a'));
  assert.equal(await client.nextText(), 'from a');
  await publisherFor(a!).publishFormats('room', new WebSocketMessageFormat(Buffer.from([1, 2, 3])));
  assert.deepEqual(await client.next(), { data: Buffer.from([1, 2, 3]), isBinary: true });
});

test('redis nodes: prev-id order and de-duplication hold across nodes through the publish API', async (t) => {
  const backend = await streamBackend(t);
  const { nodes: [a, b, c], prefix, redis } = await startNodes(t, 3, [backend.url]);
  const client = await HeldStream.open(t, c!.port, '/seq');
  await subscribers(redis, prefix, 'seq', 1);
  assert.equal((await publishRaw(a!, { items: [streamItem('seq', '1', '1')] })).status, 200);
  const early = await publishRaw(b!, { items: [streamItem('seq', '3', '3', '2')] });
  assert.equal(early.status, 200);
  assert.equal(early.headers.get('x-holdfast-queued'), '1', '3 waits on B for 2');
  await client.waitForText('1');
  const filler = await publishRaw(c!, { items: [streamItem('seq', '2', '2', '1')] });
  assert.equal(filler.headers.get('x-holdfast-queued'), null);
  await client.waitForText('123');

  // The same id on two nodes: delivered once, and the second answer says it was a duplicate.
  const once = await publishRaw(a!, { items: [streamItem('seq', '4', '4', '3')] });
  const again = await publishRaw(b!, { items: [streamItem('seq', '4', '4', '3')] }, { accept: 'application/json' });
  assert.equal(once.headers.get('x-holdfast-duplicates'), null);
  assert.equal(again.status, 200);
  assert.equal(again.headers.get('x-holdfast-duplicates'), '1');
  assert.deepEqual((JSON.parse(again.text) as { items: unknown[] }).items, [{ status: 'duplicate' }]);
  await publishRaw(c!, { items: [streamItem('seq', '5', '5', '4')] });
  await client.waitForText('12345');
  assert.equal(client.body, '12345');
  assert.deepEqual((await b!.bus.history('seq', '1')).items.map((i) => i.id), ['2', '3', '4', '5'], 'history holds each once, in order');
});

interface ChildNode {
  port: number;
  controlUrl: string;
  pid: number;
}

/** Holdfast from source as a child process on ephemeral ports; resolves once it logged `holdfast started`. */
async function spawnNode(t: TestContext, configFile: string, args: string[]): Promise<ChildNode> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) env[k] = v;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', '--config', configFile, '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', ...args],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let started: Record<string, unknown> | undefined;
  readJsonLines(child.stdout, (entry) => {
    if (entry.msg === 'holdfast started') started = entry;
  });
  await eventually(() => {
    if (child.exitCode !== null) throw new Error(`holdfast exited with ${child.exitCode} before it started`);
    return started !== undefined;
  }, 30_000, 'a child holdfast to start');
  const listen = started!.listen as { port: number };
  const control = started!.control as { port: number };
  return { port: listen.port, controlUrl: `http://127.0.0.1:${control.port}`, pid: child.pid! };
}

test('redis nodes: two separate Holdfast processes (--bus redis://...) share a channel', async (t) => {
  const backend = await streamBackend(t);
  const prefix = uniquePrefix();
  cleanUpPrefix(t, prefix);
  const redis = await redisClient(t);
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-redis-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'holdfast.json');
  writeFileSync(configFile, JSON.stringify({ bus: { prefix } }));
  const [a, b] = await Promise.all([
    spawnNode(t, configFile, ['--bus', SHARED_REDIS, '--backend', backend.url]),
    spawnNode(t, configFile, ['--bus', SHARED_REDIS, '--backend', backend.url]),
  ]);
  assert.notEqual(a.pid, b.pid);
  for (const node of [a, b]) assert.equal((await fetch(`${node.controlUrl}/healthz`)).status, 200, 'ready once the bus is up');
  const client = await HeldStream.open(t, b.port, '/procs');
  await subscribers(redis, prefix, 'procs', 1);
  const answer = await fetch(`${a.controlUrl}/publish/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items: [streamItem('procs', 'across processes\n', '1')] }),
  });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('x-holdfast-nodes'), '1');
  await client.waitForText('across processes\n');
  const metrics = await (await fetch(`${b.controlUrl}/metrics`)).text();
  assert.match(metrics, /^holdfast_bus_messages_total\{direction="in"\} 1$/m);
  assert.match(metrics, /^holdfast_bus_up\{driver="redis"\} 1$/m);
});
