// Needs NATS with JetStream at 127.0.0.1:4222 (.ci/run starts it): two and three Holdfast instances sharing
// one NATS bus, publishing on one and holding clients on the others, for every transport; replay, prev-id
// and de-duplication across nodes; and Holdfast as separate child processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { HttpResponseFormat, HttpStreamFormat, Item, Publisher, WebSocketMessageFormat } from '@fanoutio/grip';
import { EventSource } from 'eventsource';
import type { RecordingBackend } from '../helpers/backend.js';
import { startEveryTransportBackend } from './transport-backend.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { dropStreamAfter, SHARED_NATS } from '../helpers/nats.js';
import { RawClient } from '../helpers/raw.js';
import { eventually, nullIfRefused } from '../helpers/until.js';
import { HeldStream, publisherFor, publishRaw } from '../hold/push-helpers.js';
import { WsClient } from '../ws/ws-helpers.js';
import { freePort } from '../helpers/listen.js';

/** `count` Holdfast instances on one NATS prefix in this process, each with its own bus connection. */
async function startNodes(t: TestContext, count: number, backend: RecordingBackend, prefix = `hfn${randomUUID().slice(0, 8)}`): Promise<TestHoldfast[]> {
  dropStreamAfter(t, prefix);
  const nodes: TestHoldfast[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await startTestHoldfast(t, [backend.url], { bus: { url: SHARED_NATS, prefix }, websocket: { overHttpPaths: ['/ws'] } }));
  }
  return nodes;
}

/** Waits until the node's subscriptions are confirmed by the NATS server (the gauge counts only those). */
async function busSubscribed(hf: TestHoldfast, n: number): Promise<void> {
  await eventually(async () => ((await metricValue(hf, 'holdfast_bus_subscriptions')) ?? 0) >= n, 5_000, `${n} bus subscriptions`);
}

/** Every `message` event an EventSource got. */
function sseInbox(t: TestContext, url: string): { events: { id: string; data: string }[] } {
  const es = new EventSource(url);
  t.after(() => es.close());
  const inbox = { events: [] as { id: string; data: string }[] };
  es.addEventListener('message', (e: MessageEvent) => inbox.events.push({ id: e.lastEventId, data: String(e.data) }));
  return inbox;
}

test('nats nodes: a publish on node A reaches SSE and long-poll clients on B and HTTP-stream and GRIP WebSocket clients on C', async (t) => {
  const backend = await startEveryTransportBackend(t);
  const [a, b, c] = await startNodes(t, 3, backend);
  const sse = sseInbox(t, `${b!.url}/events?ch=all`);
  const poll = await RawClient.connect(t, b!.port);
  poll.write('GET /poll?ch=all HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const stream = await HeldStream.open(t, c!.port, '/stream?ch=all');
  const ws = await WsClient.open(t, `ws://127.0.0.1:${c!.port}/ws?ch=all`);
  await eventually(() => b!.holds.heldCount === 2 && c!.holds.heldCount === 2, 5_000, 'four held clients');
  await busSubscribed(b!, 1);
  await busSubscribed(c!, 1);
  assert.equal(await metricValue(a!, 'holdfast_bus_subscriptions'), 0, 'A holds nothing');

  const answer = await publishRaw(a!, {
    items: [{
      channel: 'all',
      id: 'one',
      formats: {
        'http-stream': { content: 'data: one\n\n' },
        'http-response': { body: 'one\n' },
        'ws-message': { content: 'one' },
      },
    }],
  });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('x-holdfast-delivered'), '0', 'A delivered to none of its own clients');
  assert.equal(answer.headers.get('x-holdfast-nodes'), null, 'core NATS has no receiver count');

  const res = await poll.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'one\n');
  await stream.waitForText('data: one\n\n');
  assert.equal(await ws.nextText(), 'one');
  await eventually(() => sse.events.length === 1, 5_000, 'the SSE event on B');
  assert.deepEqual(sse.events[0], { id: 'one', data: 'one' });

  // The publisher library real backends use, on A again.
  await publisherFor(a!).publish('all', new Item([new HttpStreamFormat('data: two\n\n'), new WebSocketMessageFormat('two')], 'two'));
  await stream.waitForText('data: two\n\n');
  assert.equal(await ws.nextText(), 'two');
  await eventually(() => sse.events.length === 2, 5_000, 'the second SSE event');
  assert.deepEqual(sse.events.map((e) => e.data), ['one', 'two']);
  assert.equal(stream.body, '[start]\ndata: one\n\ndata: two\n\n', 'each item once, in order');
  assert.equal(await metricValue(a!, 'holdfast_bus_messages_total', { direction: 'in' }) ?? 0, 0, 'A received nothing back');
});

test('nats nodes: SSE Last-Event-ID on node B replays what was published on node A, then goes live', async (t) => {
  const backend = await startEveryTransportBackend(t);
  const [a, b] = await startNodes(t, 2, backend);
  for (let i = 1; i <= 4; i++) await publisherFor(a!).publishHttpStream('replay', `data: m${i}\n\n`, String(i));
  const client = await HeldStream.open(t, b!.port, '/events?ch=replay', ['Last-Event-ID: 2']);
  await client.waitForText('data: m4');
  await busSubscribed(b!, 1);
  await publisherFor(a!).publishHttpStream('replay', 'data: m5\n\n', '5');
  const body = await client.waitForText('data: m5');
  const data = [...body.matchAll(/data: (m\d)/g)].map((m) => m[1]);
  assert.deepEqual(data, ['m3', 'm4', 'm5'], 'exactly the missed ones, then the live one');
  assert.equal(await metricValue(b!, 'holdfast_replayed_total'), 2);
});

test('nats nodes: prev-id orders items published to different nodes; a repeated id is delivered once and reported', async (t) => {
  const backend = await startEveryTransportBackend(t);
  const [a, b, c] = await startNodes(t, 3, backend);
  const sse = sseInbox(t, `${c!.url}/events?ch=seq`);
  await eventually(() => c!.holds.heldCount === 1, 5_000, 'the SSE client on C');
  await busSubscribed(c!, 1);
  const ev = (id: string, prev?: string) => ({ channel: 'seq', id, ...(prev === undefined ? {} : { 'prev-id': prev }), formats: { 'http-stream': { content: `data: ${id}\n\n` } } });
  assert.equal((await publishRaw(a!, { items: [ev('1')] })).status, 200);
  const early = await publishRaw(a!, { items: [ev('3', '2')] }, { accept: 'application/json' });
  assert.equal(early.headers.get('x-holdfast-queued'), '1', '3 waits on A for 2');
  assert.deepEqual(JSON.parse(early.text).items, [{ status: 'queued' }]);
  const filler = await publishRaw(b!, { items: [ev('2', '1')] });
  assert.equal(filler.status, 200);
  assert.equal(filler.headers.get('x-holdfast-queued'), null);
  await eventually(() => sse.events.length === 3, 5_000, 'three events on C');
  assert.deepEqual(sse.events.map((e) => e.data), ['1', '2', '3']);

  const again = await publishRaw(b!, { items: [ev('2')] }, { accept: 'application/json' });
  assert.equal(again.headers.get('x-holdfast-duplicates'), '1', 'published on A, repeated on B');
  assert.deepEqual(JSON.parse(again.text).items, [{ status: 'duplicate' }]);
  await publishRaw(a!, { items: [ev('4')] });
  await eventually(() => sse.events.length === 4, 5_000, 'the fourth event');
  assert.deepEqual(sse.events.map((e) => e.data), ['1', '2', '3', '4'], 'the duplicate never reached C');
});

// --- separate processes -------------------------------------------------------------------------------

interface Child {
  proc: ChildProcess;
  url: string;
  controlUrl: string;
}

async function spawnHoldfast(t: TestContext, backendUrl: string, configFile: string): Promise<Child> {
  const [port, controlPort] = [await freePort(), await freePort()];
  const proc = spawn(process.execPath, [
    '--import', 'tsx', 'src/main.ts',
    '--bus', SHARED_NATS,
    '--config', configFile,
    '--listen', `127.0.0.1:${port}`,
    '--control', `127.0.0.1:${controlPort}`,
    '--backend', backendUrl,
    '--log-level', 'warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.after(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
  });
  const child = { proc, url: `http://127.0.0.1:${port}`, controlUrl: `http://127.0.0.1:${controlPort}` };
  await eventually(async () => {
    if (proc.exitCode !== null) throw new Error(`holdfast exited with ${proc.exitCode}: ${stderr}`);
    const res = await fetch(`${child.controlUrl}/healthz`).catch(nullIfRefused);
    return res?.status === 200;
  // tsx compiles the sources in each child: on a loaded 2-core machine a start takes tens of seconds.
  }, 90_000, `holdfast on ${port} to be ready (bus up)`);
  return child;
}

async function childMetric(child: Child, name: string): Promise<number> {
  const text = await (await fetch(`${child.controlUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

test('nats nodes: two Holdfast child processes (--bus nats://...) share a channel: SSE on one, publish on the other', async (t) => {
  const backend = await startEveryTransportBackend(t);
  const prefix = `hfp${randomUUID().slice(0, 8)}`;
  dropStreamAfter(t, prefix);
  const dir = mkdtempSync(join(tmpdir(), 'hf-nodes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'holdfast.json');
  writeFileSync(configFile, JSON.stringify({ bus: { prefix } }));
  const a = await spawnHoldfast(t, backend.url, configFile);
  const b = await spawnHoldfast(t, backend.url, configFile);
  const sse = sseInbox(t, `${b.url}/events?ch=proc`);
  await eventually(async () => (await childMetric(b, 'holdfast_bus_subscriptions')) === 1, 30_000, 'B subscribed on the bus');
  const publisher = new Publisher({ control_uri: a.controlUrl });
  await publisher.publishHttpStream('proc', 'data: across\n\n', 'p1');
  await publisher.publish('proc', new Item(new HttpResponseFormat({ body: 'ignored by SSE' })));
  await publisher.publishHttpStream('proc', 'data: processes\n\n', 'p2');
  await eventually(() => sse.events.length === 2, 30_000, 'both events on B');
  assert.deepEqual(sse.events, [{ id: 'p1', data: 'across' }, { id: 'p2', data: 'processes' }]);
  assert.equal(await childMetric(a, 'holdfast_bus_subscriptions'), 0);
  assert.ok((await childMetric(b, 'holdfast_bus_messages_total{direction="in"}')) >= 2);
});
