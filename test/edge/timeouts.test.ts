import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { trickleUntilCut } from '../helpers/trickle.js';

// Small real timeouts, not a fake clock: Node's header deadline is checked by a timer in C++ that fake timers
// cannot move. Bounds below are loose on purpose: they prove the cut happens, and happens because of the
// configured limit (not at once), without betting on scheduler precision.
const HEAD_MS = 500;
const IDLE_MS = 300;
const STALL_MS = 300;

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
  await holding;
  // Wait for the edge to have seen the timeout (a counter, polled), then let the first answer go.
  while ((await metricValue(hf, 'holdfast_client_errors_total', { code: 'HF_ERR_REQUEST_HEAD_TIMEOUT' })) !== 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
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
  if (!socket.destroyed) await new Promise((resolve) => socket.once('close', resolve));
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

test('a stalled request body gets 408 HF_ERR_BODY_TIMEOUT and its backend connection is released', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {
    timeouts: { requestBodyStallMs: STALL_MS },
    // One pooled backend connection: the next request can only pass if the stalled one gave it back.
    upstream: { maxConnectionsPerBackend: 1 },
    log: { level: 'silent' },
  });
  const client = await RawClient.connect(t, hf.port);
  client.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n${'x'.repeat(10)}`);
  const started = Date.now();
  await client.waitEnd();
  const elapsed = Date.now() - started;
  const res = await client.readResponse();
  assert.equal(res.status, 408);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_BODY_TIMEOUT');
  assert.equal(res.headers.connection, 'close');
  assert.ok(elapsed >= STALL_MS / 2, `not cut at once (${elapsed} ms)`);
  assert.ok(elapsed < 3_000, `cut near the stall limit (${elapsed} ms)`);
  // The backend got at most a head and a part of the body, never a complete 100-byte request.
  assert.ok(backend.seen.every((r) => r.body.length === 0));

  const next = await RawClient.connect(t, hf.port);
  next.write('POST /after HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok');
  const after = await next.readResponse();
  assert.equal(after.status, 200);
  assert.equal(after.body.toString(), 'POST /after\n');
  assert.equal(backend.seen.at(-1)!.body.toString(), 'ok');
});

test('a slow but moving request body is not cut by the stall timeout', async (t) => {
  const backend = await startBackend(t, (_req, res, body) => {
    res.end(String(body.length));
  });
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { requestBodyStallMs: STALL_MS } });
  const client = await RawClient.connect(t, hf.port);
  const parts = 8;
  client.write(`POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: ${parts * 10}\r\n\r\n`);
  // 8 parts, STALL_MS / 4 apart: twice the stall limit in total, never a stall of half of it.
  for (let i = 0; i < parts; i++) {
    await new Promise((resolve) => setTimeout(resolve, STALL_MS / 4));
    client.write('y'.repeat(10));
  }
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), String(parts * 10));
});

test('a body nobody reads yet is not a stall: Expect 100-continue queued behind a slow pipelined request', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const holding = new Promise<void>((resolve) => (arrived = resolve));
  const backend = await startBackend(t, async (req, res, body) => {
    if (req.url === '/slow') {
      arrived();
      await released;
    }
    res.end(`${req.url} ${body.toString()}`);
  });
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { requestBodyStallMs: STALL_MS } });
  const client = await RawClient.connect(t, hf.port);
  // The POST waits behind the GET (RFC 9112 §9.3.2) and its client waits for our 100 Continue: the client
  // is doing what it must, so the stall clock must not run against it.
  client.write(
    'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
  );
  await holding;
  // The backend takes three stall limits over the GET (the scenario, not a wait for Holdfast).
  setTimeout(release, STALL_MS * 3);
  const first = await client.readResponse();
  assert.equal(first.status, 200);
  assert.equal(first.body.toString(), '/slow ');
  const interim = await client.readResponse();
  assert.equal(interim.status, 100);
  client.write('hello');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), '/upload hello');
});

test('a backend reading an upload slowly is not the client stalling: no 408', async (t) => {
  const size = 32 * 1024 * 1024;
  const backend = await startBackend(
    t,
    (req, res) => {
      // Read nothing for three stall limits, then everything.
      req.pause();
      setTimeout(() => {
        let received = 0;
        req.on('data', (chunk: Buffer) => (received += chunk.length));
        req.on('end', () => res.end(String(received)));
        req.resume();
      }, STALL_MS * 3);
    },
    { bufferBody: false },
  );
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { requestBodyStallMs: STALL_MS } });
  const client = await RawClient.connect(t, hf.port);
  client.write(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  client.write(Buffer.alloc(size, 0x61));
  const res = await client.readResponse();
  assert.equal(res.status, 200, `got ${res.status} ${res.headers['x-holdfast-error'] ?? ''}`);
  assert.equal(res.body.toString(), String(size));
});

/**
 * Send `head` a byte every 20 ms (the attacker's pace: a 200-byte head would take over 4 s) until the server
 * ends the connection. Returns how long that took and how many bytes went out.
 */
