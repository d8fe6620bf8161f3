import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { HttpStreamFormat, type GripInstruct } from '@fanoutio/grip';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { HeldStream, heldCount, type GripResponse, publisherFor, publishRaw, startGripBackend, streamItem, until } from './push-helpers.js';
import { Inbox, openEventSource } from '../helpers/sse.js';

/** An SSE backend: every request becomes a stream hold on `channel`; `beforeAnswer` may delay the answer. */
async function sseBackend(t: TestContext, channel: string, beforeAnswer: (n: number) => Promise<void> = () => Promise.resolve()) {
  let n = 0;
  return startGripBackend(t, async (_req, res) => {
    await beforeAnswer(++n);
    const instruct = res.grip.startInstruct();
    instruct.addChannel(channel);
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    // A short retry so EventSource reconnects quickly after the stream is closed.
    res.end('retry: 20\n\n');
  });
}

async function publishEvent(hf: TestHoldfast, channel: string, data: string, id: string): Promise<void> {
  await publisherFor(hf).publishHttpStream(channel, `data: ${data}\n\n`, id);
}

test('SSE: events carry the item id; a reconnect with Last-Event-ID replays exactly what was missed, then live ones', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  // The reconnect waits at the backend until the test has published what the client misses meanwhile.
  const backend = await sseBackend(t, 'feed', (n) => (n === 2 ? gate : Promise.resolve()));
  const hf = await startTestHoldfast(t, [backend.url]);
  const es = openEventSource(t, `${hf.url}/events`);
  const inbox = new Inbox(es);
  await heldCount(hf, 1);
  await publishEvent(hf, 'feed', 'one', '1');
  await publishEvent(hf, 'feed', 'two', '2');
  await inbox.waitCount(2);
  assert.equal(await metricValue(hf, 'holdfast_deliveries_total', { transport: 'sse' }), 2);

  // The publisher closes the stream; EventSource reconnects by itself with Last-Event-ID: 2.
  await publisherFor(hf).publishHttpStream('feed', new HttpStreamFormat(null, true));
  await until(() => backend.seen.length === 2, 'the reconnect to reach the backend');
  assert.equal(backend.seen[1]!.headers['last-event-id'], '2');
  assert.equal(hf.holds.heldCount, 0);
  await publishEvent(hf, 'feed', 'three', '3');
  await publishEvent(hf, 'feed', 'four', '4');
  release();
  await heldCount(hf, 1);
  await publishEvent(hf, 'feed', 'five', '5');
  await inbox.waitCount(5);
  await publishEvent(hf, 'feed', 'six', '6');
  await inbox.waitCount(6);
  assert.deepEqual(
    inbox.events.map((e) => `${e.id}:${e.data}`),
    ['1:one', '2:two', '3:three', '4:four', '5:five', '6:six'],
  );
  assert.equal(await metricValue(hf, 'holdfast_replayed_total'), 2);
  assert.equal(await metricValue(hf, 'holdfast_held_connections', { transport: 'sse' }), 1);
  // Live deliveries: 2, the close action, 2 more; the 2 replayed items are counted as replays.
  assert.equal(await metricValue(hf, 'holdfast_deliveries_total', { transport: 'sse' }), 5);
});

test('SSE: ?lastEventId= in the query replays like the header (browsers cannot set the header on a new EventSource)', async (t) => {
  const backend = await sseBackend(t, 'q');
  const hf = await startTestHoldfast(t, [backend.url]);
  for (let i = 1; i <= 4; i++) await publishEvent(hf, 'q', `m${i}`, String(i));
  const es = openEventSource(t, `${hf.url}/events?lastEventId=2`);
  const inbox = new Inbox(es);
  await inbox.waitCount(2);
  await publishEvent(hf, 'q', 'm5', '5');
  await inbox.waitCount(3);
  assert.deepEqual(inbox.events.map((e) => `${e.id}:${e.data}`), ['3:m3', '4:m4', '5:m5']);
});

test('SSE: a Last-Event-ID older than the history gets the gap event, then what history retains, then live events', async (t) => {
  const backend = await sseBackend(t, 'gap');
  const hf = await startTestHoldfast(t, [backend.url], { push: { historyMaxItems: 2 } });
  for (let i = 1; i <= 5; i++) await publishEvent(hf, 'gap', `m${i}`, String(i));
  const es = openEventSource(t, `${hf.url}/events?lastEventId=1`);
  const inbox = new Inbox(es, ['message', 'holdfast-gap']);
  await inbox.waitCount(3);
  assert.equal(inbox.events[0]!.type, 'holdfast-gap');
  assert.deepEqual(JSON.parse(inbox.events[0]!.data), { channel: 'gap', lastEventId: '1' });
  // Items 2 and 3 are lost for good; 4 and 5 are still in history and must not be withheld.
  assert.deepEqual(inbox.events.slice(1), [
    { type: 'message', id: '4', data: 'm4' },
    { type: 'message', id: '5', data: 'm5' },
  ]);
  await heldCount(hf, 1);
  await publishEvent(hf, 'gap', 'm6', '6');
  await inbox.waitCount(4);
  assert.deepEqual(inbox.events[3], { type: 'message', id: '6', data: 'm6' });
  assert.equal(await metricValue(hf, 'holdfast_drops_total', { reason: 'history_gap' }), 1);
});

test('SSE: an item whose content already has an id: line is not given a second one', async (t) => {
  const backend = await sseBackend(t, 'own');
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/events');
  await client.waitForText('retry: 20\n\n');
  await heldCount(hf, 1);
  await publishRaw(hf, { items: [streamItem('own', 'id: custom\ndata: x\n\n', '7'), streamItem('own', 'data: y\n\n', '8')] });
  await client.waitForText('data: y\n\n');
  assert.equal(client.body, 'retry: 20\n\nid: custom\ndata: x\n\nid: 8\ndata: y\n\n');
});

// Holdfast's timer wheel ticks on setInterval (250 ms) and reads Date.now(): fake both, keep sockets real.
const T0 = 1_700_000_000_000;

test('SSE: the default heartbeat is `:\\n\\n` after push.sseHeartbeatMs of silence, reset by each event', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
  const backend = await sseBackend(t, 'hb');
  const hf = await startTestHoldfast(t, [backend.url], { push: { sseHeartbeatMs: 10_000 } });
  const client = await HeldStream.open(t, hf.port, '/events');
  await client.waitForText('retry: 20\n\n');
  await heldCount(hf, 1);
  t.mock.timers.tick(9_000);
  await publishEvent(hf, 'hb', 'a', '1');
  await client.waitForText('data: a\n\n');
  t.mock.timers.tick(9_000);
  await publishEvent(hf, 'hb', 'b', '2');
  await client.waitForText('data: b\n\n');
  assert.equal(client.body, 'retry: 20\n\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n', 'no heartbeat while events flow');
  t.mock.timers.tick(10_000);
  await client.waitForText('data: b\n\n:\n\n');
  t.mock.timers.tick(10_000);
  await client.waitFor((b) => b.endsWith(':\n\n:\n\n'), 'a second heartbeat');
  assert.equal(client.body, 'retry: 20\n\nid: 1\ndata: a\n\nid: 2\ndata: b\n\n:\n\n:\n\n');
});

test('Grip-Keep-Alive: raw, cstring (js-grip) and base64 (js-grip) data after the timeout', async (t) => {
  const cases: { name: string; apply: (res: GripResponse, i: GripInstruct) => void; expected: Buffer }[] = [
    { name: 'raw', apply: (res) => res.setHeader('Grip-Keep-Alive', 'ka-raw; format=raw; timeout=7'), expected: Buffer.from('ka-raw') },
    { name: 'cstring', apply: (_res, i) => i.setKeepAlive('ka\r\n\\\t', 7), expected: Buffer.from('ka\r\n\\\t') },
    { name: 'base64', apply: (_res, i) => i.setKeepAlive(Uint8Array.from([0, 0xff, 0x0a]), 7), expected: Buffer.from([0, 0xff, 0x0a]) },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
      const backend = await startGripBackend(t, (_req, res) => {
        const instruct = res.grip.startInstruct();
        instruct.addChannel('ka');
        instruct.setHoldStream();
        c.apply(res, instruct);
        res.end('<');
      });
      const hf = await startTestHoldfast(t, [backend.url]);
      const client = await HeldStream.open(t, hf.port, '/ka');
      await client.waitForText('<');
      await heldCount(hf, 1);
      t.mock.timers.tick(6_750);
      await publishRaw(hf, { items: [streamItem('ka', '|')] });
      await client.waitForText('<|');
      t.mock.timers.tick(7_000);
      const want = Buffer.concat([Buffer.from('<|'), c.expected]);
      await client.waitFor(() => client.bodyBytes.length >= want.length, 'the keep-alive');
      assert.deepEqual(client.bodyBytes, want);
    });
  }
});

test('Grip-Keep-Alive: mode=idle waits for silence, mode=interval sends on schedule regardless of traffic', async (t) => {
  for (const mode of ['idle', 'interval'] as const) {
    await t.test(mode, async (t) => {
      t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
      const backend = await startGripBackend(t, (_req, res) => {
        const instruct = res.grip.startInstruct();
        instruct.addChannel('m');
        instruct.setHoldStream();
        res.setHeader('Grip-Keep-Alive', `.; timeout=10; mode=${mode}`);
        res.end();
      });
      const hf = await startTestHoldfast(t, [backend.url]);
      const client = await HeldStream.open(t, hf.port, '/m');
      await client.waitHead();
      await heldCount(hf, 1);
      t.mock.timers.tick(6_000);
      await publishRaw(hf, { items: [streamItem('m', 'x')] });
      await client.waitForText('x');
      // t = 10 s: due for interval mode; idle mode was reset at 6 s and is due at 16 s.
      t.mock.timers.tick(4_000);
      await publishRaw(hf, { items: [streamItem('m', 'y')] });
      await client.waitForText('y');
      assert.equal(client.body, mode === 'interval' ? 'x.y' : 'xy');
      t.mock.timers.tick(10_000);
      await client.waitForText('y.');
      assert.equal(client.body, mode === 'interval' ? 'x.y.' : 'xy.');
    });
  }
});
