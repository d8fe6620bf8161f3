import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { trickleUntilCut } from '../helpers/trickle.js';
import { eventually, within } from '../helpers/until.js';

// Small real timeouts, not a fake clock: Node's header deadline is checked by a timer in C++ that fake timers
// cannot move (the body-stall deadline is ours, on a fake clock: body-stall.test.ts). Bounds below are loose on purpose: they prove the cut happens, and happens because of the
// configured limit (not at once), without betting on scheduler precision.
const HEAD_MS = 500;
const IDLE_MS = 300;

test('slowloris: a head trickled a byte at a time is cut with 408 HF_ERR_REQUEST_HEAD_TIMEOUT', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {
    timeouts: { requestHeadMs: HEAD_MS },
    log: { level: 'silent' },
  });
  const client = await RawClient.connect(t, hf.port);
  const head = Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`);
  const { elapsed, sent } = await trickleUntilCut(t, client, head);
  assert.ok(sent < head.length, 'cut before the head was complete');
  const res = await client.readResponse();
  assert.equal(res.status, 408);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_REQUEST_HEAD_TIMEOUT');
  assert.equal(res.headers.connection, 'close');
  assert.ok(elapsed >= HEAD_MS / 2, `not cut before the limit could pass (${elapsed} ms)`);
  assert.ok(elapsed < 2_500, `cut near the limit, not Node's 30 s check interval (${elapsed} ms)`);
  assert.equal(backend.seen.length, 0);
});

test('slowloris on a reused keep-alive connection: the second head is held to timeouts.requestHeadMs too', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {
    timeouts: { requestHeadMs: HEAD_MS, keepAliveIdleMs: 10_000 },
    log: { level: 'silent' },
  });
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  const head = Buffer.from(`GET /second HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`);
  const { elapsed, sent } = await trickleUntilCut(t, client, head);
  assert.ok(sent < head.length, 'cut before the head was complete');
  const res = await client.readResponse();
  assert.equal(res.status, 408);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_REQUEST_HEAD_TIMEOUT');
  assert.ok(elapsed < 2_500, `cut near the limit, not at the 10 s idle limit (${elapsed} ms)`);
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/first'],
  );
});

test('a head timeout behind a request in flight: the earlier answer is delivered first, then the 408', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const holding = new Promise<void>((resolve) => (arrived = resolve));
  const backend = await startBackend(t, async (req, res) => {
    arrived();
    await released;
    res.end(req.url);
  });
  const hf = await startTestHoldfast(t, [backend.url], {
    timeouts: { requestHeadMs: HEAD_MS },
    log: { level: 'silent' },
  });
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n');
  await within(holding, 10_000, 'the first request at the backend');
  // Wait for the edge to have seen the timeout (a counter, polled), then let the first answer go.
  await eventually(
    async () => (await metricValue(hf, 'holdfast_client_errors_total', { code: 'HF_ERR_REQUEST_HEAD_TIMEOUT' })) === 1,
    10_000,
    'the edge to count the head timeout',
  );
  assert.equal(client.pending.length, 0, 'the 408 waits for the response before it');
  release();
  await client.waitEnd();
  const [first, timeout] = await client.readResponses(2);
  assert.equal(first!.status, 200);
  assert.equal(first!.body.toString(), '/slow');
  assert.equal(timeout!.status, 408);
  assert.equal(timeout!.headers['x-holdfast-error'], 'HF_ERR_REQUEST_HEAD_TIMEOUT');
  assert.equal(timeout!.headers.connection, 'close');
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/slow'],
  );
});

test('a connection that sends nothing is closed near timeouts.requestHeadMs', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {
    timeouts: { requestHeadMs: HEAD_MS },
    log: { level: 'silent' },
  });
  const serverSide = new Promise<Socket>((resolve) => hf.edge.server.once('connection', resolve));
  const client = await RawClient.connect(t, hf.port);
  const socket = await serverSide;
  const started = Date.now();
  await client.waitEnd();
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= HEAD_MS / 2, `not cut at once (${elapsed} ms)`);
  assert.ok(elapsed < 2_500, `cut near the limit (${elapsed} ms)`);
  // Nothing was asked, so an answer is optional; if one came it is the 408.
  if (client.pending.length > 0) {
    const res = await client.readResponse();
    assert.equal(res.status, 408);
    assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_REQUEST_HEAD_TIMEOUT');
  }
  if (!socket.destroyed) await within(new Promise((resolve) => socket.once('close', resolve)), 10_000, 'the server side to close');
  assert.equal(hf.edge.registry.size, 0, 'the registry forgot it');
  assert.equal(backend.seen.length, 0);
});

test('an idle keep-alive connection is closed after timeouts.keepAliveIdleMs', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { keepAliveIdleMs: IDLE_MS } });
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /once HTTP/1.1\r\nHost: x\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.notEqual(res.headers.connection, 'close');
  const idleFrom = Date.now();
  await client.waitEnd();
  const elapsed = Date.now() - idleFrom;
  assert.ok(elapsed >= IDLE_MS / 2, `kept while the idle limit had not passed (${elapsed} ms)`);
  assert.ok(elapsed < IDLE_MS + 700, `closed near the idle limit, not a second late (${elapsed} ms)`);
  assert.equal(client.pending.length, 0, 'an idle close sends no bytes');
  assert.equal(backend.seen.length, 1);
});

test('the advertised Keep-Alive timeout is a second under keepAliveIdleMs, and the close comes at keepAliveIdleMs', async (t) => {
  const idleMs = 2_200;
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { keepAliveIdleMs: idleMs } });
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /hint HTTP/1.1\r\nHost: x\r\n\r\n');
  const res = await client.readResponse();
  // A client honouring the hint (1 s) closes before the server does: no request sent into a closing socket.
  assert.match(res.headers['keep-alive'] ?? '', /^timeout=1(,|$)/);
  const idleFrom = Date.now();
  await client.waitEnd();
  const elapsed = Date.now() - idleFrom;
  assert.ok(elapsed >= idleMs - 300, `kept until the idle limit (${elapsed} ms)`);
  assert.ok(elapsed < idleMs + 700, `closed at the idle limit, not a second later (${elapsed} ms)`);
});

test('a keep-alive connection in use is not closed by the idle timeout', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { keepAliveIdleMs: IDLE_MS } });
  const client = await RawClient.connect(t, hf.port);
  // Requests spaced well inside the idle limit, spanning several limits in total.
  const started = Date.now();
  let n = 0;
  while (Date.now() - started < IDLE_MS * 3) {
    client.write(`GET /n${n++} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal((await client.readResponse()).status, 200);
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS / 5));
  }
  assert.equal(client.ended, false);
  assert.equal(backend.seen.length, n);
});

/**
 * Send `head` a byte every 20 ms (the attacker's pace: a 200-byte head would take over 4 s) until the server
 * ends the connection. Returns how long that took and how many bytes went out.
 */
