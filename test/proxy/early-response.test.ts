import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { test, type TestContext } from 'node:test';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { recordConnectionBytes } from '../helpers/connection-bytes.js';
import { listen } from '../helpers/listen.js';
import { RawClient } from '../helpers/raw.js';

/**
 * A backend that answers an upload before reading it (a 413 right after the head), as plain Node http
 * servers do, and counts every byte each of its connections received, so a test can tell how much of an
 * upload was forwarded. `/upload` gets the early answer; anything else is read whole and echoed as a hash.
 */
async function startUploadBackend(t: TestContext, options: { closeAfterEarly?: boolean } = {}) {
  const urls: string[] = [];
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    urls.push(req.url ?? '');
    if (req.url === '/upload') {
      const body = 'upload refused: over the limit\n';
      res.writeHead(413, 'Too Big For Us', {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(body),
        'x-limit-bytes': '1048576',
        ...(options.closeAfterEarly === false ? {} : { connection: 'close' }),
      });
      res.end(body);
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('end', () => {
      const body = `${bytes} ${hash.digest('hex')}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const bytes = recordConnectionBytes(server);
  const port = await listen(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    urls,
    /** Connections accepted so far. */
    get connections() {
      return bytes.count;
    },
    /** Bytes after the first request head on connection `n` (0-based): the upload body as it arrived. */
    bodyBytes: (n: number) => bytes.bodyBytes(n),
    head: (n: number) => bytes.head(n),
  };
}

const DECLARED_BYTES = 10 * 1024 * 1024;
const PIECE = Buffer.alloc(16 * 1024, 0x61);

type Framing = 'content-length' | 'chunked';

function uploadHead(framing: Framing, extra = ''): string {
  const length = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${DECLARED_BYTES}`;
  return `POST /upload HTTP/1.1\r\nHost: example.test\r\n${length}\r\n${extra}\r\n`;
}

function frame(framing: Framing, piece: Buffer): Buffer {
  if (framing === 'content-length') return piece;
  return Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
}

/**
 * Streams body pieces until the connection ends: `slow` is one 16 KiB piece per 10 ms; `fast` keeps 256 KiB
 * in flight every millisecond (what made the backend's reset overtake its answer). Returns the bytes sent.
 */
function streamUntilEnd(t: TestContext, client: RawClient, framing: Framing, pace: 'slow' | 'fast'): { sent: number } {
  const piece = pace === 'slow' ? PIECE : Buffer.concat(Array.from({ length: 16 }, () => PIECE));
  const bytes = frame(framing, piece);
  const progress = { sent: 0 };
  const timer = setInterval(
    () => {
      if (client.ended || progress.sent + piece.length > DECLARED_BYTES) return;
      client.write(bytes);
      progress.sent += piece.length;
    },
    pace === 'slow' ? 10 : 1,
  );
  t.after(() => clearInterval(timer));
  return progress;
}

for (const framing of ['content-length', 'chunked'] as const) {
  for (const pace of ['slow', 'fast'] as const) {
    test(`a backend that answers 413 before reading a ${pace} ${framing} upload: the client gets that answer unchanged, then the connection closes`, async (t) => {
      const backend = await startUploadBackend(t);
      const hf = await startTestHoldfast(t, [backend.url]);
      const client = await RawClient.connect(t, hf.port);
      client.write(Buffer.concat([Buffer.from(uploadHead(framing)), frame(framing, PIECE)]));
      const progress = streamUntilEnd(t, client, framing, pace);
      const res = await client.readResponse();
      assert.equal(res.status, 413, `not a Holdfast error: ${res.headers['x-holdfast-error'] ?? ''}`);
      assert.equal(res.reason, 'Too Big For Us');
      assert.equal(res.headers['x-holdfast-error'], undefined);
      assert.equal(res.headers['content-type'], 'text/plain');
      assert.equal(res.headers['x-limit-bytes'], '1048576');
      assert.equal(res.body.toString(), 'upload refused: over the limit\n');
      assert.equal(res.headers.connection, 'close');
      await client.waitEnd();
      assert.equal(client.pending.length, 0, 'nothing after the answer');

      assert.deepEqual(backend.urls, ['/upload']);
      const forwarded = backend.bodyBytes(0);
      assert.ok(forwarded < DECLARED_BYTES, `forwarded ${forwarded} of ${DECLARED_BYTES} body bytes`);
      assert.ok(progress.sent + PIECE.length < DECLARED_BYTES, 'the client was stopped long before the end of its upload');

      // Not a backend failure: it stays up, and a fresh connection is served by it.
      assert.equal((await metricValue(hf, 'holdfast_upstream_errors_total', { backend: backend.url })) ?? 0, 0);
      const next = await RawClient.connect(t, hf.port);
      next.write('POST /small HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello');
      const ok = await next.readResponse();
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString(), `5 ${createHash('sha256').update('hello').digest('hex')}`);
    });
  }
}

test('a backend that answers early but keeps its connection open: that connection is not used again', async (t) => {
  const backend = await startUploadBackend(t, { closeAfterEarly: false });
  const hf = await startTestHoldfast(t, [backend.url], { upstream: { maxConnectionsPerBackend: 1 } });
  const client = await RawClient.connect(t, hf.port);
  client.write(Buffer.concat([Buffer.from(uploadHead('content-length')), PIECE]));
  streamUntilEnd(t, client, 'content-length', 'slow');
  const res = await client.readResponse();
  assert.equal(res.status, 413);
  assert.equal(res.headers.connection, 'close', 'the client connection closes even though the backend keeps its own');
  await client.waitEnd();

  const next = await RawClient.connect(t, hf.port);
  next.write('POST /small HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello');
  assert.equal((await next.readResponse()).status, 200);
  assert.equal(backend.connections, 2, 'the next request went on a new backend connection');
  assert.ok(backend.head(1).startsWith('POST /small HTTP/1.1'));
});

/** A raw backend that resets each connection as soon as a request head arrives: no response byte at all. */
async function startResettingBackend(t: TestContext) {
  let heads = 0;
  const server = createNetServer((socket) => {
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (chunk: Buffer) => {
      if (socket.destroyed) return;
      buf += chunk.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      heads++;
      socket.resetAndDestroy();
    });
  });
  const port = await listen(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    get heads() {
      return heads;
    },
  };
}

for (const framing of ['content-length', 'chunked'] as const) {
  for (const pace of ['slow', 'fast'] as const) {
    test(`a backend that resets before any response byte of a ${pace} ${framing} upload: still a 502, and the connection closes`, async (t) => {
      const backend = await startResettingBackend(t);
      const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
      const client = await RawClient.connect(t, hf.port);
      client.write(Buffer.concat([Buffer.from(uploadHead(framing)), frame(framing, PIECE)]));
      streamUntilEnd(t, client, framing, pace);
      const res = await client.readResponse();
      assert.equal(res.status, 502);
      assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
      // The rest of the upload has nowhere to go: the connection closes rather than wait for it forever.
      assert.equal(res.headers.connection, 'close');
      await client.waitEnd();
      assert.equal(backend.heads, 1, 'an upload is never sent twice');
    });
  }
}

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a ${framing} upload of 4 MiB to a backend that reads it all arrives whole, on a connection that stays open`, async (t) => {
    const backend = await startUploadBackend(t);
    const hf = await startTestHoldfast(t, [backend.url]);
    const client = await RawClient.connect(t, hf.port);
    const body = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const length = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`;
    client.write(`POST /store HTTP/1.1\r\nHost: example.test\r\n${length}\r\n\r\n`);
    for (let offset = 0; offset < body.length; offset += 256 * 1024) {
      client.write(frame(framing, body.subarray(offset, offset + 256 * 1024)));
    }
    if (framing === 'chunked') client.write('0\r\n\r\n');
    const res = await client.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `${body.length} ${createHash('sha256').update(body).digest('hex')}`);
    assert.notEqual(res.headers.connection, 'close');
    client.write('POST /again HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nok');
    assert.equal((await client.readResponse()).status, 200);
  });
}
