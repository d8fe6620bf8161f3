import assert from 'node:assert/strict';
import { createSecretKey } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { PublishException, Publisher } from '@fanoutio/grip';
import { SignJWT } from 'jose';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { trickleUntilCut } from '../helpers/trickle.js';
import { within } from '../helpers/until.js';
import { HeldStream, heldCount, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';
import type { ConfigInput } from '../../src/config/schema.js';

async function gateway(t: TestContext, overrides: Partial<ConfigInput> = {}): Promise<TestHoldfast> {
  const backend = await startGripBackend(t, (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
    if (req.headers['x-long-poll'] === '1') instruct.setHoldLongPoll(30);
    else instruct.setHoldStream();
    res.end();
  });
  return startTestHoldfast(t, [backend.url], overrides);
}

test('publish: Pushpin\'s answers, text and JSON, with the count of deliveries on this node', async (t) => {
  const hf = await gateway(t);
  const a = await HeldStream.open(t, hf.port, '/room');
  const b = await HeldStream.open(t, hf.port, '/room');
  await heldCount(hf, 2);
  const text = await publishRaw(hf, { items: [streamItem('room', 'x')] });
  assert.equal(text.status, 200);
  assert.equal(text.text, 'Published\n');
  assert.match(text.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal(text.headers.get('x-holdfast-delivered'), '2');
  const json = await publishRaw(hf, { items: [streamItem('room', 'y'), streamItem('nobody', 'z')] }, { accept: 'application/json' });
  assert.equal(json.status, 200);
  assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(JSON.parse(json.text).message, 'Published');
  assert.equal(json.headers.get('x-holdfast-delivered'), '2');
  await a.waitForText('xy');
  await b.waitForText('xy');
  // No trailing slash is the same endpoint; an empty list is accepted, as Pushpin does.
  const bare = await fetch(`${hf.controlUrl}/publish`, { method: 'POST', body: '{"items":[]}' });
  assert.equal(bare.status, 200);
  assert.equal(bare.headers.get('x-holdfast-delivered'), '0');
  assert.equal(await metricValue(hf, 'holdfast_messages_published_total'), 3);
});

test('publish: 405 for other methods, 404 for other paths, a banner at /', async (t) => {
  const hf = await gateway(t);
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const res = await fetch(`${hf.controlUrl}/publish/`, { method });
    assert.equal(res.status, 405, method);
    assert.match(res.headers.get('allow') ?? '', /POST/);
    await res.arrayBuffer();
  }
  for (const path of ['/publishx', '/publish/extra', '/nope']) {
    const res = await fetch(`${hf.controlUrl}${path}`, { method: 'POST', body: '{"items":[]}' });
    assert.equal(res.status, 404, path);
    await res.arrayBuffer();
  }
  const banner = await fetch(`${hf.controlUrl}/`);
  assert.equal(banner.status, 200);
  assert.ok((await banner.text()).length > 0);
});

const BAD_BODIES: [string, string, string][] = [
  ['not JSON', '{"items": [', 'HF_ERR_PUBLISH_JSON'],
  ['empty body', '', 'HF_ERR_PUBLISH_JSON'],
  ['a list, not an object', '[]', 'HF_ERR_PUBLISH_ITEMS'],
  ['no items key', '{}', 'HF_ERR_PUBLISH_ITEMS'],
  ['items not a list', '{"items": {"channel": "c"}}', 'HF_ERR_PUBLISH_ITEMS'],
  ['items null', '{"items": null}', 'HF_ERR_PUBLISH_ITEMS'],
];

const BAD_ITEMS: [string, unknown][] = [
  ['item not an object', 1],
  ['missing channel', { formats: { 'http-stream': { content: 'x' } } }],
  ['empty channel', { channel: '', formats: { 'http-stream': { content: 'x' } } }],
  ['channel not a string', { channel: 42, formats: { 'http-stream': { content: 'x' } } }],
  ['formats not an object', { channel: 'c', formats: 'http-stream' }],
  ['no format at all', { channel: 'c', formats: {} }],
  ['format not an object', { channel: 'c', formats: { 'http-stream': 'x' } }],
  ['bad http-stream action', { channel: 'c', formats: { 'http-stream': { content: 'x', action: 'explode' } } }],
  ['http-response cannot close', { channel: 'c', formats: { 'http-response': { body: 'x', action: 'close' } } }],
  ['bad ws-message action', { channel: 'c', formats: { 'ws-message': { content: 'x', action: 'hint' } } }],
  ['http-stream content missing', { channel: 'c', formats: { 'http-stream': {} } }],
  ['http-stream content not a string', { channel: 'c', formats: { 'http-stream': { content: 5 } } }],
  ['content-bin not a string', { channel: 'c', formats: { 'http-stream': { 'content-bin': [1] } } }],
  ['ws-message content missing', { channel: 'c', formats: { 'ws-message': { type: 'text' } } }],
  ['bad ws-message type', { channel: 'c', formats: { 'ws-message': { content: 'x', type: 'blob' } } }],
  ['code not a number', { channel: 'c', formats: { 'http-response': { code: 'abc' } } }],
  ['code too small', { channel: 'c', formats: { 'http-response': { code: 99 } } }],
  ['code too large', { channel: 'c', formats: { 'http-response': { code: 1000 } } }],
  ['code 100 (interim: the client would take its next answer as this one)', { channel: 'c', formats: { 'http-response': { code: 100 } } }],
  ['code 101 as a string', { channel: 'c', formats: { 'http-response': { code: '101' } } }],
  ['content-bin not base64', { channel: 'c', formats: { 'http-stream': { 'content-bin': 'not base64!' } } }],
  ['content-bin with a stray character', { channel: 'c', formats: { 'http-stream': { 'content-bin': 'aGVsbG8*' } } }],
  ['content-bin of impossible length', { channel: 'c', formats: { 'http-stream': { 'content-bin': 'aGVsb' } } }],
  ['body-bin not base64', { channel: 'c', formats: { 'http-response': { 'body-bin': '%%%' } } }],
  ['ws content-bin not base64', { channel: 'c', formats: { 'ws-message': { 'content-bin': 'x y' } } }],
  ['code fractional', { channel: 'c', formats: { 'http-response': { code: 200.5 } } }],
  ['code a boolean', { channel: 'c', formats: { 'http-response': { code: true } } }],
  ['reason not a string', { channel: 'c', formats: { 'http-response': { reason: 7 } } }],
  ['reason with a control character', { channel: 'c', formats: { 'http-response': { reason: 'O\u0001K' } } }],
  ['header name with a space', { channel: 'c', formats: { 'http-response': { headers: { 'Bad Name': 'v' } } } }],
  ['header value with a line break (response splitting)', { channel: 'c', formats: { 'http-response': { headers: [['X-A', 'a\r\nX-Injected: 1']] } } }],
  ['headers not an object', { channel: 'c', formats: { 'http-response': { headers: 'x: y' } } }],
  ['header value not a string', { channel: 'c', formats: { 'http-response': { headers: { a: 1 } } } }],
  ['header pair too short', { channel: 'c', formats: { 'http-response': { headers: [['a']] } } }],
  ['body not a string', { channel: 'c', formats: { 'http-response': { body: { a: 1 } } } }],
  ['non-string meta value', { channel: 'c', meta: { user: 1 }, formats: { 'http-stream': { content: 'x' } } }],
  ['meta not an object', { channel: 'c', meta: 'user=a', formats: { 'http-stream': { content: 'x' } } }],
  ['id an object', { channel: 'c', id: { a: 1 }, formats: { 'http-stream': { content: 'x' } } }],
  ['prev-id a list', { channel: 'c', 'prev-id': ['1'], formats: { 'http-stream': { content: 'x' } } }],
  ['no-seq not a boolean', { channel: 'c', 'no-seq': 'yes', formats: { 'http-stream': { content: 'x' } } }],
  ['ws close code out of range', { channel: 'c', formats: { 'ws-message': { action: 'close', code: 70000 } } }],
];

test('publish: malformed bodies and items are 400 with the error code, and publish nothing', async (t) => {
  const hf = await gateway(t);
  const client = await HeldStream.open(t, hf.port, '/c');
  await heldCount(hf, 1);
  for (const [name, body, code] of BAD_BODIES) {
    const res = await publishRaw(hf, body);
    assert.equal(res.status, 400, name);
    assert.equal(res.headers.get('x-holdfast-error'), code, name);
  }
  for (const [name, item] of BAD_ITEMS) {
    // The bad item follows a good one: a request is all or nothing.
    const res = await publishRaw(hf, { items: [streamItem('c', 'LEAK'), item] }, { accept: 'application/json' });
    assert.equal(res.status, 400, name);
    assert.equal(res.headers.get('x-holdfast-error'), 'HF_ERR_PUBLISH_ITEM', name);
    assert.equal(JSON.parse(res.text).error, 'HF_ERR_PUBLISH_ITEM', name);
  }
  await publishRaw(hf, { items: [streamItem('c', 'ok')] });
  await client.waitForText('ok');
  assert.equal(client.body, 'ok', 'nothing from a refused request reached the client');
  assert.equal(await metricValue(hf, 'holdfast_messages_published_total'), 1);
});

test('publish: Pushpin\'s leniencies: code as a string, format keys directly in the item, a numeric id', async (t) => {
  const hf = await gateway(t);
  const poll = await RawClient.connect(t, hf.port);
  poll.write('GET /lp HTTP/1.1\r\nHost: app.test\r\nX-Long-Poll: 1\r\n\r\n');
  const stream = await HeldStream.open(t, hf.port, '/direct');
  await heldCount(hf, 2);
  const res = await publishRaw(hf, {
    items: [
      { channel: 'lp', formats: { 'http-response': { code: '404', body: 'gone' } } },
      { channel: 'direct', id: 7, 'http-stream': { content: 'flat' } },
    ],
  });
  assert.equal(res.status, 200, res.text);
  const answered = await poll.readResponse();
  assert.equal(answered.status, 404);
  assert.equal(answered.body.toString(), 'gone');
  await stream.waitForText('flat');
  assert.equal((await hf.bus.history('direct', '7')).found, true, 'a numeric id is kept as the string 7');
});

test('publish: 413 for a body over publish.maxBodyBytes (declared or streamed) and a message over publish.maxMessageBytes', async (t) => {
  const hf = await gateway(t, { publish: { maxBodyBytes: 2048, maxMessageBytes: 100 } });
  // Declared: answered from the head alone, without waiting for a body that may never come.
  const raw = await RawClient.connect(t, hf.controlAddress.port);
  raw.write('POST /publish HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n');
  const declared = await raw.readResponse();
  assert.equal(declared.status, 413);
  assert.equal(declared.headers['x-holdfast-error'], 'HF_ERR_PUBLISH_TOO_LARGE');
  await raw.waitEnd();
  // Streamed (chunked, no length): counted as it arrives.
  const chunked = await RawClient.connect(t, hf.controlAddress.port);
  const big = JSON.stringify({ items: [streamItem('c', 'x'.repeat(3000))] });
  chunked.write(`POST /publish HTTP/1.1\r\nHost: control\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`);
  const streamed = await chunked.readResponse();
  assert.equal(streamed.status, 413);
  assert.equal(streamed.headers['x-holdfast-error'], 'HF_ERR_PUBLISH_TOO_LARGE');

  const over = await publishRaw(hf, { items: [streamItem('c', 'x'.repeat(101))] });
  assert.equal(over.status, 413);
  assert.equal(over.headers.get('x-holdfast-error'), 'HF_ERR_PUBLISH_MESSAGE_TOO_LARGE');
  const overResponse = await publishRaw(hf, { items: [{ channel: 'c', formats: { 'http-response': { 'body-bin': Buffer.alloc(101).toString('base64') } } }] });
  assert.equal(overResponse.status, 413);
  assert.equal(overResponse.headers.get('x-holdfast-error'), 'HF_ERR_PUBLISH_MESSAGE_TOO_LARGE');
  const exact = await publishRaw(hf, { items: [streamItem('c', 'x'.repeat(100))] });
  assert.equal(exact.status, 200);
});

test('publish: a 413 reaches a publisher that reads only after writing its whole oversized body (curl)', async (t) => {
  const hf = await gateway(t, { publish: { maxBodyBytes: 2048 } });
  const client = await HeldStream.open(t, hf.port, '/c');
  await heldCount(hf, 1);
  const body = JSON.stringify({ items: [streamItem('c', 'LEAK'.repeat(1_000_000))] });
  for (const framing of ['length', 'chunked'] as const) {
    const head =
      framing === 'length'
        ? `POST /publish/ HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
        : 'POST /publish/ HTTP/1.1\r\nHost: control\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const request = framing === 'length' ? head + body : `${head}${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const socket = connect(hf.controlAddress.port, '127.0.0.1');
    t.after(() => socket.destroy());
    socket.pause();
    // Like curl: the whole upload first, then the answer. A reset while writing loses the answer.
    const writeError = await new Promise<Error | null | undefined>((resolve) => socket.write(request, resolve));
    assert.equal(writeError ?? null, null, `${framing}: the upload was not cut`);
    socket.resume();
    let received = '';
    socket.setEncoding('latin1').on('data', (s: string) => (received += s));
    await within(once(socket, 'end'), 10_000, `${framing}: the end after the 413`);
    assert.match(received, /^HTTP\/1\.1 413 /, framing);
    assert.match(received, /\r\nx-holdfast-error: HF_ERR_PUBLISH_TOO_LARGE\r\n/i, framing);
    assert.match(received, /\r\nconnection: close\r\n/i, framing);
  }
  await publishRaw(hf, { items: [streamItem('c', 'ok')] });
  await client.waitForText('ok');
  assert.equal(client.body, 'ok', 'nothing of the refused bodies was published');
});

test('publish auth: js-grip\'s Bearer key, JWT (control_iss + key) and Basic are accepted; anything else is 401', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { publish: { key: 'sekrit', iss: 'publisher-app' } });
  const accepted: [string, Publisher][] = [
    ['bearer key', new Publisher({ control_uri: hf.controlUrl, key: 'sekrit' })],
    ['jwt', new Publisher({ control_uri: hf.controlUrl, control_iss: 'publisher-app', key: 'sekrit' })],
    ['basic', new Publisher({ control_uri: hf.controlUrl, user: 'anyone', pass: 'sekrit' })],
  ];
  for (const [name, publisher] of accepted) await assert.doesNotReject(publisher.publishHttpStream('c', name), name);
  assert.equal(await metricValue(hf, 'holdfast_messages_published_total'), 3);

  const refused: [string, Publisher][] = [
    ['no auth', new Publisher({ control_uri: hf.controlUrl })],
    ['wrong bearer key', new Publisher({ control_uri: hf.controlUrl, key: 'wrong' })],
    ['jwt with the wrong key', new Publisher({ control_uri: hf.controlUrl, control_iss: 'publisher-app', key: 'wrong' })],
    ['jwt with the wrong iss', new Publisher({ control_uri: hf.controlUrl, control_iss: 'intruder', key: 'sekrit' })],
    ['basic with the wrong password', new Publisher({ control_uri: hf.controlUrl, user: 'anyone', pass: 'wrong' })],
  ];
  for (const [name, publisher] of refused) {
    await assert.rejects(publisher.publishHttpStream('c', name), (err: unknown) => {
      assert.ok(err instanceof PublishException, name);
      assert.equal(err.context.statusCode, 401, name);
      return true;
    });
  }
  const key = createSecretKey(Buffer.from('sekrit'));
  const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('publisher-app').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(key);
  for (const authorization of [`Bearer ${expired}`, 'Bearer', 'Basic !!!', 'Digest sekrit', 'sekrit', `Bearer ${expired.split('.').slice(0, 2).join('.')}.`]) {
    const res = await publishRaw(hf, { items: [streamItem('c', 'x')] }, { authorization });
    assert.equal(res.status, 401, authorization);
    assert.equal(res.headers.get('x-holdfast-error'), 'HF_ERR_PUBLISH_UNAUTHORIZED', authorization);
  }
  assert.equal(await metricValue(hf, 'holdfast_messages_published_total'), 3);
});

test('control listener: a slowloris head and a stalled publish body are cut by deadlines set from the client-side ones, publishing nothing', async (t) => {
  const HEAD_MS = 500;
  const STALL_MS = 300;
  const hf = await gateway(t, { timeouts: { requestHeadMs: HEAD_MS, requestBodyStallMs: STALL_MS }, log: { level: 'silent' } });
  // Node's own defaults here were 60 s for a head and 300 s for a request, checked every 30 s. Node keeps
  // these deadlines on a clock no test can fake, so what we set is read back, and each cut below is awaited
  // with a bound far under Node's 30 s check instead of timed.
  // connectionsCheckingInterval is an own field of Node's http.Server that @types/node does not declare.
  const server = hf.control.server as typeof hf.control.server & { connectionsCheckingInterval: number };
  assert.equal(server.headersTimeout, HEAD_MS);
  assert.equal(server.requestTimeout, HEAD_MS + STALL_MS);
  assert.ok(server.connectionsCheckingInterval <= HEAD_MS, `checked every ${server.connectionsCheckingInterval} ms`);
  const port = Number(new URL(hf.controlUrl).port);
  const slowHead = await RawClient.connect(t, port);
  const head = Buffer.from(`POST /publish/ HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`);
  // A byte every 20 ms: the whole head would take over 4 s, eight head limits.
  const cut = await within(trickleUntilCut(t, slowHead, head), 10_000, 'the slow head to be cut');
  assert.ok(cut.sent < head.length, 'cut before the head was complete');
  assert.equal((await slowHead.readResponse()).status, 408);

  const stalled = await RawClient.connect(t, port);
  const item = JSON.stringify({ items: [streamItem('c', 'LEAK')] });
  stalled.write(`POST /publish/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${item.length}\r\n\r\n`);
  stalled.write(item.slice(0, 10));
  await within(stalled.waitEnd(), 10_000, 'the stalled body to be cut');
  assert.equal((await metricValue(hf, 'holdfast_messages_published_total')) ?? 0, 0);
});

test('publish: the answer says which items were duplicates, queued for a predecessor or dropped, per item in JSON', async (t) => {
  const hf = await gateway(t, { push: { sequenceMaxPending: 1 } });
  const a = await HeldStream.open(t, hf.port, '/out');
  await heldCount(hf, 1);
  const first = await publishRaw(hf, { items: [streamItem('out', '1', '1')] });
  assert.equal(first.headers.get('x-holdfast-duplicates'), null, 'no duplicate header when there is none');
  const mixed = await publishRaw(
    hf,
    { items: [streamItem('out', '1', '1'), streamItem('out', '3', '3', '2'), streamItem('out', '9', '9', '8'), streamItem('out', 'n')] },
    { accept: 'application/json' },
  );
  assert.equal(mixed.status, 200, 'Pushpin answers 200 whatever became of the items; the details are extra');
  assert.equal(mixed.headers.get('x-holdfast-duplicates'), '1');
  assert.equal(mixed.headers.get('x-holdfast-queued'), '1');
  assert.equal(mixed.headers.get('x-holdfast-dropped'), '1');
  assert.equal(mixed.headers.get('x-holdfast-delivered'), '1', 'only the id-less item went out');
  assert.deepEqual(
    (JSON.parse(mixed.text) as { items: { status: string }[] }).items.map((i) => i.status),
    ['duplicate', 'queued', 'dropped', 'published'],
  );
  await a.waitForText('1n');
  assert.equal(a.body, '1n');
});
