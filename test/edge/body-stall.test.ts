import assert from 'node:assert/strict';
import { mock, test, type TestContext } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { until, within } from '../helpers/until.js';
import type { ProxyExchange } from '../../src/proxy/exchange.js';

/**
 * timeouts.requestBodyStallMs: a request body that stops arriving while Holdfast waits for it is answered
 * 408 HF_ERR_BODY_TIMEOUT. The watch (src/edge/body-stall.ts) sweeps on setInterval and reads Date.now():
 * both are faked, so each test moves time by whole sweeps and checks the watch's verdict right after the
 * sweep that makes it (a cut ends the response synchronously). The sockets, the backend and undici's own
 * timers (setTimeout) stay real.
 */
const STALL_MS = 10_000;
/** The watch sweeps every min(1 s, stall). */
const SWEEP_MS = 1_000;

function fakeClock(t: TestContext): void {
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
}

/** Move the fake clock by `ms`, one sweep at a time, with a turn of real I/O after each. */
async function advance(ms: number): Promise<void> {
  for (let passed = 0; passed < ms; passed += SWEEP_MS) {
    mock.timers.tick(SWEEP_MS);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The exchange of the one client connection's request, once the edge has it (and watches its body). */
async function currentExchange(hf: TestHoldfast): Promise<ProxyExchange> {
  const exchange = (): ProxyExchange | null => [...hf.edge.registry.connections()][0]?.lastExchange ?? null;
  await until(() => exchange() !== null, 'the edge to start the exchange');
  return exchange()!;
}

test('a stalled request body gets 408 HF_ERR_BODY_TIMEOUT at timeouts.requestBodyStallMs, not before, and its backend connection is released', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {
    timeouts: { requestBodyStallMs: STALL_MS },
    // One pooled backend connection: the next request can only pass if the stalled one gave it back.
    upstream: { maxConnectionsPerBackend: 1 },
    log: { level: 'silent' },
  });
  fakeClock(t);
  const client = await RawClient.connect(t, hf.port);
  const head = 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n';
  client.write(`${head}${'x'.repeat(10)}`);
  const exchange = await currentExchange(hf);
  // Silent from here: everything sent was read, and the request went to the backend, which waits for more.
  await until(
    () => exchange.req.socket.bytesRead === head.length + 10 && exchange.bodyInvited && exchange.req.readableLength === 0,
    'the sent part of the body to be read and forwarded',
  );
  // The watch may count the silence from the request's start or from its first sweep: either way, two
  // sweeps short of the limit is not a stall.
  await advance(STALL_MS - 2 * SWEEP_MS);
  assert.equal(exchange.res.writableEnded, false, 'not answered before timeouts.requestBodyStallMs');
  for (let sweeps = 0; sweeps < 3 && !exchange.res.writableEnded; sweeps++) await advance(SWEEP_MS);
  assert.equal(exchange.res.writableEnded, true, 'answered within a sweep of timeouts.requestBodyStallMs');

  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 408);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_BODY_TIMEOUT');
  assert.equal(res.headers.connection, 'close');
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
  fakeClock(t);
  const client = await RawClient.connect(t, hf.port);
  const parts = 8;
  const head = `POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: ${parts * 10}\r\n\r\n`;
  client.write(head);
  const exchange = await currentExchange(hf);
  const socket = exchange.req.socket;
  // 8 parts, half a stall limit apart: four stall limits in total, never a silence of one.
  for (let i = 1; i <= parts; i++) {
    await advance(STALL_MS / 2);
    assert.equal(exchange.res.writableEnded, false, `not cut before part ${i}`);
    client.write('y'.repeat(10));
    await until(() => socket.bytesRead === head.length + i * 10, `part ${i} to be read`);
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
  fakeClock(t);
  const client = await RawClient.connect(t, hf.port);
  // The POST waits behind the GET (RFC 9112 §9.3.2) and its client waits for our 100 Continue: the client
  // is doing what it must, so the stall clock must not run against it.
  client.write(
    'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
  );
  await within(holding, 10_000, 'the GET at the backend');
  const post = await until(
    () => [...hf.edge.registry.connections()][0]?.lastExchange?.method === 'POST',
    'the edge to start the POST behind the GET',
  ).then(() => [...hf.edge.registry.connections()][0]!.lastExchange!);
  // Three stall limits pass while the backend holds the GET.
  await advance(3 * STALL_MS);
  assert.equal(post.res.writableEnded, false, 'the waiting POST was not answered 408');
  release();
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
  let startReading!: () => void;
  const reading = new Promise<void>((resolve) => (startReading = resolve));
  const backend = await startBackend(
    t,
    async (req, res) => {
      // Read nothing until the test says so (after three stall limits), then everything.
      req.pause();
      await reading;
      let received = 0;
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => res.end(String(received)));
      req.resume();
    },
    { bufferBody: false },
  );
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { requestBodyStallMs: STALL_MS } });
  fakeClock(t);
  const client = await RawClient.connect(t, hf.port);
  client.write(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  client.write(Buffer.alloc(size, 0x61));
  const exchange = await currentExchange(hf);
  // Backpressure reached the client side: Node stopped reading the socket with body bytes unread in the
  // request, so from here on the socket's bytesRead holds still, as for a client that stopped sending.
  await until(
    () => exchange.req.socket.isPaused() && exchange.req.readableLength > 0,
    'the edge to stop reading the client for the backend',
  );
  await advance(3 * STALL_MS);
  assert.equal(exchange.res.writableEnded, false, 'no 408 while the backend is the one not reading');
  startReading();
  const res = await client.readResponse();
  assert.equal(res.status, 200, `got ${res.status} ${res.headers['x-holdfast-error'] ?? ''}`);
  assert.equal(res.body.toString(), String(size));
});
