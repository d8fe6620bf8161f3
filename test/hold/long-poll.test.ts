import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel, HttpResponseFormat } from '@fanoutio/grip';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient, type RawResponse } from '../helpers/raw.js';
import { heldCount, publisherFor, publishRaw, startGripBackend, until } from './push-helpers.js';

// Holdfast's timer wheel ticks on setInterval (250 ms) and reads Date.now(): fake both, keep sockets real.
const T0 = 1_700_000_000_000;

function noGripHeaders(res: RawResponse): void {
  for (const name of Object.keys(res.headers)) assert.ok(!name.startsWith('grip-'), `${name} reached the client`);
}

async function longPollBackend(t: import('node:test').TestContext, timeoutSec: number | undefined, channel: string | Channel = 'lp') {
  return startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel(channel);
    instruct.setHoldLongPoll(timeoutSec);
    res.writeHead(200, { 'content-type': 'application/json', 'x-original': '1', 'x-override': 'old' });
    res.end('{"messages":[]}');
  });
}

test('long-poll: on Grip-Timeout the client gets the original response minus Grip-*', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
  const backend = await longPollBackend(t, 8);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  assert.equal(await metricValue(hf, 'holdfast_held_connections', { transport: 'response' }), 1);
  t.mock.timers.tick(7_750);
  assert.equal(hf.holds.heldCount, 1, 'still held before the timeout');
  t.mock.timers.tick(250);
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), '{"messages":[]}');
  assert.equal(res.headers['content-type'], 'application/json');
  assert.equal(res.headers['x-original'], '1');
  assert.equal(res.headers['content-length'], '15');
  noGripHeaders(res);
  assert.equal(hf.holds.heldCount, 0);
  assert.equal(await metricValue(hf, 'holdfast_held_connections', { transport: 'response' }), 0);
});

test('long-poll: a Grip-Timeout under 5 s is raised to Pushpin\'s minimum of 5 s', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
  const backend = await longPollBackend(t, 1);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  t.mock.timers.tick(4_750);
  assert.equal(hf.holds.heldCount, 1);
  t.mock.timers.tick(250);
  assert.equal((await client.readResponse()).status, 200);
});

test('long-poll: a published http-response answers with its code, reason and body; its headers override the original', async (t) => {
  const backend = await longPollBackend(t, 30);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  await publisherFor(hf).publishHttpResponse(
    'lp',
    new HttpResponseFormat({ code: '201', reason: 'Made', headers: { 'X-Override': 'new', 'x-pub': 'p' }, body: 'hello' }),
  );
  const res = await client.readResponse();
  assert.equal(res.status, 201);
  assert.equal(res.reason, 'Made');
  assert.equal(res.body.toString(), 'hello');
  assert.equal(res.headers['content-length'], '5');
  assert.equal(res.headers['content-type'], 'application/json', 'inherited from the original');
  assert.equal(res.headers['x-original'], '1');
  assert.equal(res.headers['x-override'], 'new', 'a published header replaces the original of the same name');
  assert.equal(res.headers['x-pub'], 'p');
  noGripHeaders(res);
  assert.equal(await metricValue(hf, 'holdfast_deliveries_total', { transport: 'response' }), 1);
  // The connection stays usable: the next request on it is an ordinary exchange with the backend.
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  await publisherFor(hf).publishHttpResponse('lp', 'again');
  assert.equal((await client.readResponse()).body.toString(), 'again');
});

test('long-poll: a published answer does not inherit the validators of the original body (ETag, Last-Modified); its own are kept', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('validated');
    instruct.setHoldLongPoll(30);
    res.writeHead(200, { 'content-type': 'application/json', etag: '"empty-v1"', 'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT', 'x-original': '1' });
    res.end('{"messages":[]}');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  await publisherFor(hf).publishHttpResponse('validated', '{"messages":["m1"]}');
  const res = await client.readResponse();
  assert.equal(res.body.toString(), '{"messages":["m1"]}');
  assert.equal(res.headers['x-original'], '1', 'other headers are inherited');
  // The original's ETag names the empty answer: a client revalidating the new body with it would get a 304
  // for data it never saw (RFC 9110 §8.8: a validator identifies one representation).
  assert.equal(res.headers.etag, undefined);
  assert.equal(res.headers['last-modified'], undefined);

  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  await publisherFor(hf).publishHttpResponse('validated', new HttpResponseFormat({ headers: { ETag: '"m2"' }, body: 'm2' }));
  assert.equal((await client.readResponse()).headers.etag, '"m2"', 'a validator the publisher sends is its own');
});

test('long-poll: a JSON instruct (application/grip-instruct) holds, answers a publish and times out with its response', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
  const backend = await startGripBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/grip-instruct' });
    res.end(
      JSON.stringify({
        hold: { mode: 'response', channels: [{ name: 'j' }], timeout: 30 },
        response: { code: 202, reason: 'Later', headers: [['content-type', 'text/plain'], ['x-j', '1']], body: 'timeout-body' },
      }),
    );
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const first = await RawClient.connect(t, hf.port);
  first.write('GET /j HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  await publishRaw(hf, { items: [{ channel: 'j', formats: { 'http-response': { body: 'published' } } }] });
  const published = await first.readResponse();
  assert.equal(published.status, 200);
  assert.equal(published.body.toString(), 'published');
  assert.equal(published.headers['x-j'], '1');
  assert.equal(published.headers['content-type'], 'text/plain', 'the JSON instruct\'s own content-type is not inherited');

  const second = await RawClient.connect(t, hf.port);
  second.write('GET /j HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  t.mock.timers.tick(30_000);
  const timedOut = await second.readResponse();
  assert.equal(timedOut.status, 202);
  assert.equal(timedOut.reason, 'Later');
  assert.equal(timedOut.body.toString(), 'timeout-body');
  assert.equal(timedOut.headers['x-j'], '1');
});

test('long-poll: a prev-id behind the channel\'s history is answered at once from history', async (t) => {
  const backend = await longPollBackend(t, 30, new Channel('hist', '2'));
  const hf = await startTestHoldfast(t, [backend.url]);
  const publisher = publisherFor(hf);
  for (const id of ['1', '2', '3']) await publisher.publishHttpResponse('hist', `body-${id}`, id);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.body.toString(), 'body-3');
  assert.equal(res.headers['x-original'], '1');
  assert.equal(await metricValue(hf, 'holdfast_replayed_total'), 1);
  assert.equal(hf.holds.heldCount, 0);
});

test('long-poll: a prev-id equal to the channel\'s last id waits for the next publish', async (t) => {
  const backend = await longPollBackend(t, 30, new Channel('cur', '2'));
  const hf = await startTestHoldfast(t, [backend.url]);
  const publisher = publisherFor(hf);
  for (const id of ['1', '2']) await publisher.publishHttpResponse('cur', `body-${id}`, id);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  await publisher.publishHttpResponse('cur', 'body-3', '3', '2');
  assert.equal((await client.readResponse()).body.toString(), 'body-3');
});

test('long-poll: a client that half-closes while held is dropped, not kept to its timeout', async (t) => {
  // Plain requests are answered after a client's FIN (the edge allows half-open connections); a held client
  // that closes its side is gone, and keeping it would hold a subscriber nobody reads until the timeout.
  const backend = await longPollBackend(t, 60);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await heldCount(hf, 1);
  client.socket.end();
  await client.waitEnd();
  await until(() => hf.holds.heldCount === 0, 'the hold to be released');
  assert.equal(await metricValue(hf, 'holdfast_held_connections', { transport: 'response' }), 0);
});

test('long-poll: a client whose FIN came with its request is never held', async (t) => {
  const backend = await longPollBackend(t, 60);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.socket.end('GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await client.waitEnd();
  await until(() => backend.seen.length === 1, 'the backend to see the request');
  assert.equal(hf.holds.heldCount, 0);
  assert.equal((await metricValue(hf, 'holdfast_held_connections', { transport: 'response' })) ?? 0, 0);
});
