import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mock, test, type TestContext } from 'node:test';
import { startBackend, type Handler } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { recordConnectionBytes } from '../helpers/connection-bytes.js';
import { listen } from '../helpers/listen.js';
import { RawClient } from '../helpers/raw.js';
import { until, within } from '../helpers/until.js';

/** Echoes method, target and body, with a length so the connection stays persistent. */
const echo: Handler = (req, res, body) => {
  const text = `${req.method} ${req.url} ${body.toString()}`;
  res.writeHead(200, { 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

test('Expect: 100-continue goes to the backend; its 100 reaches the client, then the body reaches the backend', async (t) => {
  // Node's server answers 100 itself when it has no checkContinue listener, as most backends do.
  const backend = await startBackend(t, echo);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  const interim = await client.readResponse();
  assert.equal(interim.status, 100);
  assert.equal(interim.version, 'HTTP/1.1');
  assert.equal(backend.seen.filter((r) => r.body.length > 0).length, 0, 'no body went anywhere before the client sent it');
  client.write('hello');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'POST /upload hello');
  assert.notEqual(res.headers.connection, 'close');
  assert.equal(backend.seen.length, 1);
  assert.equal(backend.seen[0]!.body.toString(), 'hello');
  assert.equal(backend.seen[0]!.headers.expect, '100-continue', 'the backend decides whether it wants the body');
  assert.equal(backend.seen[0]!.headers.via, '1.1 holdfast');

  // The connection stays usable.
  client.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await client.readResponse()).body.toString(), 'GET /next ');
});

test('Expect: 100-continue on a request the edge refuses: the final 400, no 100, nothing forwarded', async (t) => {
  const backend = await startBackend(t, echo);
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /upload HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 400, 'the first thing the client hears is the final answer');
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_DUPLICATE_HOST');
  assert.equal(res.headers.connection, 'close');
  assert.equal(client.pending.length, 0);
  assert.equal(backend.seen.length, 0);
});

test('Expect: 100-continue on a connection refused at a limit: 503, no 100', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const holding = new Promise<void>((resolve) => (arrived = resolve));
  const backend = await startBackend(t, async (_req, res) => {
    arrived();
    await released;
    res.end('held');
  });
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxConnections: 1 }, log: { level: 'silent' } });
  const busy = await RawClient.connect(t, hf.port);
  busy.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
  await within(holding, 10_000, 'the held GET at the backend');
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 503);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_CONNECTION_LIMIT');
  assert.equal(client.pending.length, 0);
  release();
  assert.equal((await busy.readResponse()).status, 200);
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/hold'],
  );
});

test('an expectation other than 100-continue is refused with 417 and not forwarded', async (t) => {
  const backend = await startBackend(t, echo);
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: the-unexpected\r\n\r\nhello');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 417);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_EXPECTATION_FAILED');
  assert.equal(res.headers.connection, 'close');
  assert.equal(client.pending.length, 0);
  assert.equal(backend.seen.length, 0);
});

test('HTTP/1.0 with Expect gets no 100 (RFC 9110 §10.1.1) and is served', async (t) => {
  const backend = await startBackend(t, echo);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /old HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'POST /old hello');
  assert.equal(client.pending.length, 0, 'one response, no interim one before it');
  assert.equal(backend.seen[0]!.headers.expect, undefined);
});

/**
 * A Node backend that decides on `Expect: 100-continue` itself (`checkContinue`), and counts the bytes each
 * of its connections received, to tell whether any of the body was forwarded.
 */
async function startDecidingBackend(
  t: TestContext,
  onExpect: (req: IncomingMessage, res: ServerResponse) => void,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void = () => {},
) {
  const server = createServer(onRequest);
  server.on('checkContinue', onExpect);
  const bytes = recordConnectionBytes(server);
  const port = await listen(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    /** Every connection's bytes: the head of the request on it, and what came after. */
    requests(): { head: string; bodyBytes: number }[] {
      return Array.from({ length: bytes.count }, (_, n) => ({ head: bytes.head(n), bodyBytes: bytes.bodyBytes(n) }));
    },
  };
}

for (const framing of ['Content-Length: 10485760', 'Transfer-Encoding: chunked']) {
  test(`a backend that answers 100-continue with a final 413 (${framing}): the client gets it and no 100, no body byte goes up, the connection closes`, async (t) => {
    const backend = await startDecidingBackend(t, (_req, res) => {
      res.writeHead(413, { 'content-type': 'text/plain', 'content-length': 9, 'x-limit-bytes': '1048576' });
      res.end('too big!\n');
    });
    const hf = await startTestHoldfast(t, [backend.url]);
    const client = await RawClient.connect(t, hf.port);
    client.write(`PUT /big HTTP/1.1\r\nHost: x\r\n${framing}\r\nExpect: 100-continue\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 413, 'the final answer is the first thing the client hears');
    assert.equal(res.headers['x-holdfast-error'], undefined);
    assert.equal(res.headers['x-limit-bytes'], '1048576');
    assert.equal(res.body.toString(), 'too big!\n');
    assert.equal(res.headers.connection, 'close');
    await client.waitEnd();
    assert.equal(client.pending.length, 0);

    const [request, ...more] = backend.requests();
    assert.equal(more.length, 0);
    assert.ok(request!.head.startsWith('PUT /big HTTP/1.1\r\n'));
    assert.match(request!.head, /\r\nexpect: 100-continue(\r\n|$)/i);
    assert.equal(request!.bodyBytes, 0, 'not a byte of the body was forwarded');
  });
}

test('Expect: 100-continue with a 4 MiB body: the backend says 100, the body arrives whole', async (t) => {
  const backend = await startDecidingBackend(
    t,
    (req, res) => {
      res.writeContinue();
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      req.on('end', () => res.end(`${bytes} ${hash.digest('hex')}`));
    },
  );
  const hf = await startTestHoldfast(t, [backend.url]);
  const body = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  for (const framing of ['content-length', 'chunked']) {
    const client = await RawClient.connect(t, hf.port);
    const length = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`;
    client.write(`POST /store HTTP/1.1\r\nHost: x\r\n${length}\r\nExpect: 100-continue\r\n\r\n`);
    assert.equal((await client.readResponse()).status, 100);
    for (let offset = 0; offset < body.length; offset += 256 * 1024) {
      const piece = body.subarray(offset, offset + 256 * 1024);
      client.write(framing === 'chunked' ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
    }
    if (framing === 'chunked') client.write('0\r\n\r\n');
    const res = await client.readResponse();
    assert.equal(res.status, 200, framing);
    assert.equal(res.body.toString(), `${body.length} ${createHash('sha256').update(body).digest('hex')}`, framing);
    assert.notEqual(res.headers.connection, 'close');
  }
});

test('a backend that says 100, then answers 413 partway through the body: the client gets 100, then the 413, and the connection closes', async (t) => {
  let bodyBytesRead = 0;
  const backend = await startDecidingBackend(t, (req, res) => {
    res.writeContinue();
    req.once('data', (chunk: Buffer) => {
      bodyBytesRead += chunk.length;
      req.pause();
      res.writeHead(413, { 'content-length': 9, connection: 'close' });
      res.end('too big!\n');
    });
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n');
  assert.equal((await client.readResponse()).status, 100);
  const piece = Buffer.alloc(16 * 1024, 0x62);
  client.write(piece);
  const timer = setInterval(() => {
    if (!client.ended) client.write(piece);
  }, 10);
  t.after(() => clearInterval(timer));
  const res = await client.readResponse();
  assert.equal(res.status, 413);
  assert.equal(res.body.toString(), 'too big!\n');
  assert.equal(res.headers.connection, 'close');
  await client.waitEnd();
  assert.ok(bodyBytesRead > 0);
  assert.ok(backend.requests()[0]!.bodyBytes < 10485760);
});

test('a backend that never answers 100-continue: 504 after timeouts.upstreamResponseMs, and the waiting client is not blamed', async (t) => {
  const backend = await startDecidingBackend(t, () => {
    /* neither 100 nor a final answer */
  });
  const stallMs = 10_000;
  const hf = await startTestHoldfast(t, [backend.url], {
    timeouts: { upstreamResponseMs: 2_000, requestBodyStallMs: stallMs },
    log: { level: 'silent' },
  });
  // The body-stall watch's clock (setInterval, Date) is faked; undici's response deadline (setTimeout) is
  // real. Three stall limits pass on the fake clock well before the backend's deadline on the real one.
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  await until(() => backend.requests().length === 1, 'the head to reach the backend');
  for (let passed = 0; passed < 3 * stallMs; passed += 1_000) {
    mock.timers.tick(1_000);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const res = await client.readResponse();
  assert.equal(res.status, 504, 'not the 408 a client silent after our 100 would get');
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_TIMEOUT');
  assert.equal(res.headers.connection, 'close');
  assert.equal(backend.requests()[0]!.bodyBytes, 0);
});

test('a backend that resets on an Expect: 100-continue head: 502, nothing resent', async (t) => {
  const backend = await startDecidingBackend(t, (req) => {
    req.socket.resetAndDestroy();
  });
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
  assert.equal(backend.requests().length, 1);
});
