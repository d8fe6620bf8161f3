// Needs nats-server on PATH (each test starts its own, with JetStream on file storage in a temp dir) and
// the shared NATS at 127.0.0.1:4222: the NATS bus when the engine goes away, stalls, or one node is cut off.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { startNodes as startContractNodes, item, subscribed } from './contract.js';
import { startEveryTransportBackend } from './transport-backend.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { busOptions, dropStreamAfter, natsNode, PrivateNats } from '../helpers/nats.js';
import { eventually } from '../helpers/until.js';
import { HeldStream, publishRaw } from '../hold/push-helpers.js';

async function nodesOn(t: TestContext, natsUrl: string, count: number, requestTimeoutMs: number): Promise<TestHoldfast[]> {
  const backend = await startEveryTransportBackend(t);
  const prefix = `hff${randomUUID().slice(0, 8)}`;
  const nodes: TestHoldfast[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await startTestHoldfast(t, [backend.url], { bus: { url: natsUrl, prefix, requestTimeoutMs, connectTimeoutMs: 5_000 } }));
  }
  return nodes;
}

function sseItem(channel: string, id: string): unknown {
  return { items: [{ channel, id, formats: { 'http-stream': { content: `data: ${id}\n\n` } } }] };
}

function dataLines(body: string): string[] {
  return [...body.matchAll(/^data: (.*)$/gm)].map((m) => m[1]!);
}

async function busSubscribed(hf: TestHoldfast): Promise<void> {
  await eventually(async () => ((await metricValue(hf, 'holdfast_bus_subscriptions')) ?? 0) >= 1, 10_000, 'the bus subscription');
}

test('nats faults: NATS restarted mid-traffic: held clients stay, publishes meanwhile get 503, subscriptions and history come back', async (t) => {
  const nats = await PrivateNats.start(t);
  const [a, b] = await nodesOn(t, nats.url, 2, 500);
  nats.closesFirst(a!, b!);
  const client = await HeldStream.open(t, b!.port, '/events?ch=live');
  await busSubscribed(b!);
  for (const id of ['m1', 'm2']) assert.equal((await publishRaw(a!, sseItem('live', id))).status, 200);
  await client.waitForText('data: m2');

  await nats.stop('SIGTERM');
  await eventually(() => a!.bus.state === 'connecting' && b!.bus.state === 'connecting', 10_000, 'both nodes to see the outage');
  const refused = await publishRaw(a!, sseItem('live', 'lost'));
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('x-holdfast-error'), 'HF_ERR_BUS_UNAVAILABLE');
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal((await fetch(`${a!.controlUrl}/healthz`)).status, 503, 'not ready while the bus is down');
  assert.equal(await metricValue(a!, 'holdfast_bus_up', { driver: 'nats' }), 0);

  await nats.run();
  await eventually(() => a!.bus.state === 'up' && b!.bus.state === 'up', 15_000, 'both nodes to reconnect');
  assert.equal(client.closed, false, 'the held client stayed connected through the outage');
  assert.equal((await fetch(`${b!.controlUrl}/healthz`)).status, 200);
  assert.ok(((await metricValue(b!, 'holdfast_bus_reconnects_total')) ?? 0) >= 1);
  assert.equal(await metricValue(b!, 'holdfast_bus_up', { driver: 'nats' }), 1);
  // The subscription came back by itself: a publish after the restart reaches the held client.
  await eventually(async () => (await publishRaw(a!, sseItem('live', 'm3'))).status === 200, 10_000, 'a publish to succeed after the restart');
  await client.waitForText('data: m3');
  assert.deepEqual(dataLines(client.body), ['m1', 'm2', 'm3'], 'nothing from the outage, nothing twice');

  // File storage kept the history across the restart: a client reconnecting with Last-Event-ID replays.
  const late = await HeldStream.open(t, b!.port, '/events?ch=live', ['Last-Event-ID: m1']);
  await late.waitForText('data: m3');
  assert.deepEqual(dataLines(late.body), ['m2', 'm3']);
});

test('nats faults: NATS paused with SIGSTOP: a publish gets 503 within requestTimeoutMs; after SIGCONT clients stayed and a retry is delivered once', async (t) => {
  const nats = await PrivateNats.start(t);
  const requestTimeoutMs = 300;
  const [a, b] = await nodesOn(t, nats.url, 2, requestTimeoutMs);
  nats.closesFirst(a!, b!);
  const client = await HeldStream.open(t, b!.port, '/events?ch=paused');
  await busSubscribed(b!);
  assert.equal((await publishRaw(a!, sseItem('paused', 'p1'))).status, 200);
  await client.waitForText('data: p1');

  await nats.pause();
  const started = performance.now();
  const refused = await publishRaw(a!, sseItem('paused', 'p2'));
  const elapsedMs = performance.now() - started;
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('x-holdfast-error'), 'HF_ERR_BUS_UNAVAILABLE');
  // One engine round trip (the channel's last sequence is cached from p1): requestTimeoutMs, plus a margin
  // for a loaded machine; far from the client's 2-minute ping timeout.
  assert.ok(elapsedMs >= requestTimeoutMs - 20 && elapsedMs < requestTimeoutMs + 1_500, `answered after ${Math.round(elapsedMs)} ms`);
  nats.resume();

  // A 503 leaves the outcome open (the paused server may still store what it had read): the publisher
  // retries with the same id, and de-duplication makes that safe.
  await eventually(async () => (await publishRaw(a!, sseItem('paused', 'p2'))).status === 200, 10_000, 'the retry to be answered');
  assert.equal((await publishRaw(a!, sseItem('paused', 'p3'))).status, 200);
  await client.waitForText('data: p3');
  assert.equal(client.closed, false);
  assert.deepEqual(dataLines(client.body), ['p1', 'p2', 'p3'], 'p2 once, in order');
});

/** A TCP relay in front of the shared NATS, so one node can be cut off while the others stay connected. */
async function relay(t: TestContext): Promise<{ url: string; cut(): void; restore(): void }> {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = netConnect(4222, '127.0.0.1');
    for (const [s, other] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(s);
      s.on('error', () => other.destroy());
      s.on('close', () => {
        sockets.delete(s);
        other.destroy();
      });
      s.pipe(other);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as { port: number };
  return {
    url: `nats://127.0.0.1:${port}`,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      refusing = false;
    },
  };
}

/** Two contract nodes keeping 3 items per channel: `a` on the shared NATS, `b` through a relay a test can cut. */
async function nodesBehindRelay(t: TestContext) {
  const link = await relay(t);
  let n = 0;
  const [a, b] = await startContractNodes(t, (tt, p, sink) => {
    const options = busOptions({ maxItems: 3 });
    if (n++ > 0) return Promise.resolve(natsNode(tt, p, { options, url: link.url, sink }));
    dropStreamAfter(tt, p);
    return Promise.resolve(natsNode(tt, p, { options, sink }));
  }, 2);
  return { link, a, b };
}

test('nats faults: a node cut off from NATS refuses publishes, then catches its channels up from the stream (or reports a gap)', async (t) => {
  const { link, a, b } = await nodesBehindRelay(t);
  b!.bus.subscribe('kept');
  b!.bus.subscribe('lost');
  await subscribed(a!, b!, 'kept');
  await subscribed(a!, b!, 'lost');
  await a!.bus.publish([item('kept', 'k1'), item('lost', 'l1')]);
  await eventually(() => b!.received.length === 2, 5_000, 'k1 and l1 at b');

  link.cut();
  await eventually(() => b!.bus.state === 'connecting', 10_000, 'b to see it is cut off');
  await assert.rejects(b!.bus.publish([item('kept', 'never')]), { code: 'HF_ERR_BUS_UNAVAILABLE' }, 'fails fast, not buffered');
  // Meanwhile a publishes: two items on one channel (history keeps 3), five on the other (two are lost).
  await a!.bus.publish([item('kept', 'k2'), item('kept', 'k3')]);
  for (const id of ['l2', 'l3', 'l4', 'l5', 'l6']) await a!.bus.publish([item('lost', id)]);
  link.restore();
  await eventually(() => b!.bus.state === 'up', 10_000, 'b to reconnect');
  await eventually(() => b!.received.length === 2 + 2 + 3, 5_000, 'b to catch up both channels');
  const ids = (channel: string) => b!.received.filter((i) => i.channel === channel).map((i) => i.id);
  assert.deepEqual(ids('kept'), ['k1', 'k2', 'k3'], 'everything missed, in order');
  assert.deepEqual(ids('lost'), ['l1', 'l4', 'l5', 'l6'], 'what history still had');
  assert.deepEqual(b!.gaps, ['lost'], 'and a gap for what it no longer had');
  // Live delivery goes on after the catch-up, without repeats.
  await a!.bus.publish([item('kept', 'k4')]);
  await eventually(() => ids('kept').length === 4, 5_000, 'k4');
  assert.deepEqual(ids('kept'), ['k1', 'k2', 'k3', 'k4']);
});

test('nats faults: after a cut, channels held only by a wildcard prefix are caught up from the stream too (or report a gap)', async (t) => {
  const { link, a, b } = await nodesBehindRelay(t);
  b!.bus.subscribe('scores.', true);
  await subscribed(a!, b!, 'scores.probe');
  await a!.bus.publish([item('scores.1', 's1')]);
  await eventually(() => b!.received.length === 1, 5_000, 's1 at b');

  link.cut();
  await eventually(() => b!.bus.state === 'connecting', 10_000, 'b to see it is cut off');
  // One channel b has seen, one it has not, one that loses items from history, and one it does not hold.
  await a!.bus.publish([item('scores.1', 's2'), item('scores.2', 't1'), item('elsewhere', 'x1')]);
  for (const id of ['u1', 'u2', 'u3', 'u4', 'u5']) await a!.bus.publish([item('scores.3', id)]);
  link.restore();
  await eventually(() => b!.bus.state === 'up', 10_000, 'b to reconnect');
  await eventually(() => b!.received.length === 1 + 1 + 1 + 3, 5_000, 'b to catch up every channel under the prefix');
  const ids = (channel: string) => b!.received.filter((i) => i.channel === channel).map((i) => i.id);
  assert.deepEqual(ids('scores.1'), ['s1', 's2']);
  assert.deepEqual(ids('scores.2'), ['t1'], 'a channel first seen after the outage');
  assert.deepEqual(ids('scores.3'), ['u3', 'u4', 'u5'], 'what history still had');
  assert.deepEqual(ids('elsewhere'), []);
  assert.deepEqual(b!.gaps, ['scores.3'], 'and a gap for what it no longer had');
  // Live again, without repeats.
  await a!.bus.publish([item('scores.2', 't2')]);
  await eventually(() => ids('scores.2').length === 2, 5_000, 't2');
  assert.deepEqual(ids('scores.2'), ['t1', 't2']);
});

test('nats faults: a NATS without JetStream is a clear start error', async (t) => {
  const nats = await PrivateNats.start(t, { jetstream: false });
  const bus = natsNode(t, `hff${randomUUID().slice(0, 8)}`, { url: nats.url });
  nats.closesFirst(bus);
  await assert.rejects(bus.start(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'HF_ERR_BUS_UNAVAILABLE');
    assert.match(err.message, /JetStream is not enabled/);
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${nats.port}`));
    return true;
  });
});
