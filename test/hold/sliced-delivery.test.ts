import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { parsePublishBody, type PublishItem } from '../../src/grip/publish-items.js';
import { ChannelIndex } from '../../src/hold/channel-index.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { eventually, within } from '../helpers/until.js';
import { HeldStream, heldCount, startGripBackend, streamItem } from './push-helpers.js';

/**
 * A publish larger than `push.deliverSliceSize` goes out a slice per turn of the event loop. These tests fake
 * only `setImmediate` (the turn a slice waits for), so a broadcast stops after its first slice until the test
 * ticks, and what happens in between (a control request, clients leaving or joining) is an order of events,
 * not a race. Sockets, setTimeout and the rest stay real.
 */

const SLICE = 4;
const CLIENTS = 12;

/** Every request holds an SSE stream on `fan` and on `own-<last path segment>`. */
async function start(t: TestContext): Promise<TestHoldfast> {
  const backend = await startGripBackend(t, (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('fan');
    instruct.addChannel(`own-${(req.url ?? '').split('/').pop() ?? ''}`);
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end();
  });
  return startTestHoldfast(t, [backend.url], { push: { deliverSliceSize: SLICE } });
}

/** Opens held streams one at a time, so the channel index holds them in this order. */
async function holdClients(t: TestContext, hf: TestHoldfast, n: number): Promise<HeldStream[]> {
  const clients: HeldStream[] = [];
  for (let i = 0; i < n; i++) {
    clients.push(await HeldStream.open(t, hf.port, `/sub/${i}`));
    await heldCount(hf, i + 1);
  }
  return clients;
}

/** One HTTP/1.1 exchange on a raw socket to the control listener: resolves to the whole answer (sized or chunked). */
function rawExchange(socket: Socket, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /content-length: *(\d+)/i.exec(text.slice(0, end));
      const complete = length !== null ? text.length >= end + 4 + Number(length[1]) : text.endsWith('\r\n0\r\n\r\n');
      if (complete) {
        socket.off('data', onData);
        resolve(text);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(request);
  });
}

async function controlSocket(t: TestContext, hf: TestHoldfast): Promise<Socket> {
  const socket = connect(hf.controlAddress.port, '127.0.0.1');
  t.after(() => socket.destroy());
  await within(new Promise((resolve) => socket.once('connect', resolve)), 5_000, 'the control connection');
  return socket;
}

function publishRequest(items: unknown[]): string {
  const body = JSON.stringify({ items });
  return `POST /publish/ HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** An `http-stream` item as the publish API would hand it to the bus. */
function item(channel: string, content: string, id: string): PublishItem {
  return parsePublishBody(JSON.stringify({ items: [streamItem(channel, content, id)] }), { maxMessageBytes: 65_536 })[0]!;
}

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

test('sliced delivery: a control /healthz request is answered between the slices of a broadcast; the publish answer counts every delivery', async (t) => {
  const hf = await start(t);
  const clients = await holdClients(t, hf, CLIENTS);
  const health = await controlSocket(t, hf);
  const publisher = await controlSocket(t, hf);
  const events: string[] = [];

  t.mock.timers.enable({ apis: ['setImmediate'] });
  const published = rawExchange(publisher, publishRequest([streamItem('fan', 'data: A\n\n', 'a1')])).then((answer) => {
    events.push('publish answered');
    return answer;
  });
  // The first slice goes out while the publish request is handled; the rest waits for the next turn.
  await within(Promise.all(clients.slice(0, SLICE).map((c) => c.waitForText('data: A'))), 10_000, 'the first slice');
  events.push('first slice delivered');
  assert.equal(await metricValue(hf, 'holdfast_deliveries_total', { transport: 'sse' }), SLICE);

  const healthz = await within(rawExchange(health, 'GET /healthz HTTP/1.1\r\nHost: control\r\n\r\n'), 10_000, '/healthz');
  events.push('healthz answered');
  assert.match(healthz, /^HTTP\/1\.1 200 /);
  // Still one slice: the health check got in before the broadcast went on.
  assert.equal(await metricValue(hf, 'holdfast_deliveries_total', { transport: 'sse' }), SLICE);

  t.mock.timers.tick(0);
  const answer = await within(published, 10_000, 'the publish answer');
  t.mock.timers.reset();
  assert.deepEqual(events, ['first slice delivered', 'healthz answered', 'publish answered']);
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, new RegExp(`\r\nx-holdfast-delivered: ${CLIENTS}\r\n`, 'i'));
  await within(Promise.all(clients.map((c) => c.waitForText('data: A'))), 10_000, 'every client');
  for (const c of clients) assert.equal(count(c.body, 'data: A'), 1);
  assert.equal(await metricValue(hf, 'holdfast_deliveries_total', { transport: 'sse' }), CLIENTS);
});

test('sliced delivery: publishes go out in order; a small one never overtakes a large one before it', async (t) => {
  const hf = await start(t);
  const clients = await holdClients(t, hf, CLIENTS);
  const last = CLIENTS - 1;
  // Called back to back: A reaches all 12 in three slices; B, for the last client only, fits in one slice
  // and would be written at once if it did not wait its turn; C goes to all 12 again.
  const a = hf.bus.publish([item('fan', 'data: A\n\n', 'a')]);
  const b = hf.bus.publish([item(`own-${last}`, 'data: B\n\n', 'b')]);
  const c = hf.bus.publish([item('fan', 'data: C\n\n', 'c')]);
  const results = await within(Promise.all([a, b, c]), 10_000, 'the three publishes');
  assert.deepEqual(
    results.map((r) => r.delivered),
    [CLIENTS, 1, CLIENTS],
  );
  await within(Promise.all(clients.map((s) => s.waitForText('data: C'))), 10_000, 'C at every client');
  const lastBody = clients[last]!.body;
  assert.ok(
    lastBody.indexOf('data: A') < lastBody.indexOf('data: B') && lastBody.indexOf('data: B') < lastBody.indexOf('data: C'),
    `A, B, C in order at the last client: ${JSON.stringify(lastBody)}`,
  );
  for (const s of clients) {
    assert.equal(count(s.body, 'data: A'), 1);
    assert.equal(count(s.body, 'data: C'), 1);
    assert.ok(s.body.indexOf('data: A') < s.body.indexOf('data: C'));
  }
});

test('sliced delivery: clients that leave mid-broadcast get nothing and are not counted; clients that join get it from history or not at all, never twice', async (t) => {
  const hf = await start(t);
  const clients = await holdClients(t, hf, CLIENTS);
  // History before the broadcast, so a joiner can ask for what came after it.
  await hf.bus.publish([item('fan', 'data: zero\n\n', 'z')]);
  await within(Promise.all(clients.map((s) => s.waitForText('data: zero'))), 10_000, 'the first item');

  t.mock.timers.enable({ apis: ['setImmediate'] });
  const broadcast = hf.bus.publish([item('fan', 'data: A\n\n', 'a')]);
  await within(Promise.all(clients.slice(0, SLICE).map((s) => s.waitForText('data: A'))), 10_000, 'the first slice');
  // The last four go away before their slice comes; the manager releases them as their sockets close.
  const leaving = clients.slice(CLIENTS - SLICE);
  for (const s of leaving) s.socket.destroy();
  // Real-time polling (setTimeout), since setImmediate is held still.
  await eventually(() => hf.holds.heldCount === CLIENTS - SLICE, 10_000, 'the leavers to be released');
  // Two newcomers subscribe to `fan` while the broadcast is under way; one asks for what followed `z`.
  const replaying = await HeldStream.open(t, hf.port, '/sub/replaying', ['Last-Event-ID: z']);
  const fresh = await HeldStream.open(t, hf.port, '/sub/fresh');
  await eventually(() => hf.holds.heldCount === CLIENTS - SLICE + 2, 10_000, 'the newcomers to be held');
  await within(replaying.waitForText('data: A'), 10_000, 'the replayed item');

  t.mock.timers.tick(0);
  const result = await within(broadcast, 10_000, 'the broadcast');
  t.mock.timers.reset();
  // The ones that stayed, and none of the leavers or newcomers.
  assert.equal(result.delivered, CLIENTS - SLICE);

  // A later publish reaches everyone held now: proof the newcomers are subscribed and had their chance at A.
  const after = await hf.bus.publish([item('fan', 'data: C\n\n', 'c')]);
  assert.equal(after.delivered, CLIENTS - SLICE + 2);
  await within(Promise.all([replaying, fresh].map((s) => s.waitForText('data: C'))), 10_000, 'C at the newcomers');
  assert.equal(count(replaying.body, 'data: A'), 1, replaying.body);
  assert.equal(count(fresh.body, 'data: A'), 0, fresh.body);
  for (const s of clients.slice(0, CLIENTS - SLICE)) assert.equal(count(s.body, 'data: A'), 1);
  for (const s of leaving) assert.equal(count(s.body, 'data: A'), 0);
});

test('channel index snapshot: a client holding a channel and a matching prefix is one recipient; later holders are not in it', () => {
  const index = new ChannelIndex<string>();
  index.add('x', 'scores.1', false);
  index.add('x', 'scores.', true);
  index.add('y', 'scores.', true);
  index.add('z', 'other', false);
  const snapshot = index.snapshot(['scores.1']);
  assert.deepEqual(snapshot.sort(), ['x', 'y']);
  assert.deepEqual(index.snapshot(['scores.1', 'other', 'scores.1']).sort(), ['x', 'y', 'z']);
  index.add('w', 'scores.1', false);
  assert.deepEqual(snapshot.sort(), ['x', 'y']);
  assert.deepEqual(index.snapshot(['nothing']), []);
});
