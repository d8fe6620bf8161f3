import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { eventually } from '../helpers/until.js';

// Client, Holdfast and backend share this process, so the memory measured below bounds all three legs
// together; Holdfast buffering a body would show up as growth of the order of the body.
const GIB = 1024 * 1024 * 1024;
const MIB = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'holdfast streams, it does not buffer. ');
const MAX_GROWTH_BYTES = 200 * MIB;

/** `total` bytes made of one preallocated chunk, yielded lazily: nothing of body size is ever allocated. */
function* body(total: number): Generator<Buffer> {
  for (let sent = 0; sent < total; sent += CHUNK.length) {
    yield total - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, total - sent);
  }
}

const expectedDigests = new Map<number, string>();
function expectedDigest(total: number): string {
  let digest = expectedDigests.get(total);
  if (digest === undefined) {
    const hash = createHash('sha1');
    for (const chunk of body(total)) hash.update(chunk);
    digest = hash.digest('hex');
    expectedDigests.set(total, digest);
  }
  return digest;
}

/** Samples memory while a transfer runs; `stop()` returns the largest growth over the baseline. */
function watchMemory() {
  const base = process.memoryUsage();
  let maxRss = base.rss;
  let maxArrayBuffers = base.arrayBuffers;
  const sample = () => {
    const m = process.memoryUsage();
    maxRss = Math.max(maxRss, m.rss);
    maxArrayBuffers = Math.max(maxArrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 50);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { rssGrowth: maxRss - base.rss, arrayBuffersGrowth: maxArrayBuffers - base.arrayBuffers };
    },
  };
}

/** Writes `total` bytes to a response honouring backpressure; reports how far it got. */
function streamTo(res: ServerResponse, total: number, progress: { written: number; waitingForDrain: boolean }) {
  const chunks = body(total);
  const pump = (): void => {
    progress.waitingForDrain = false;
    for (;;) {
      const next = chunks.next();
      if (next.done === true) {
        res.end();
        return;
      }
      progress.written += next.value.length;
      if (!res.write(next.value)) {
        progress.waitingForDrain = true;
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

function mib(bytes: number): string {
  return `${Math.round(bytes / MIB)} MiB`;
}

test('a 1 GiB upload streams through with bounded memory', { timeout: 60_000 }, async (t) => {
  const size = GIB;
  const expected = expectedDigest(size);
  const received = { bytes: 0, digest: '' };
  const backend = await startBackend(
    t,
    (req, res) => {
      const hash = createHash('sha1');
      req.on('data', (chunk: Buffer) => {
        received.bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => {
        received.digest = hash.digest('hex');
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${received.bytes}\n`);
      });
    },
    { bufferBody: false },
  );
  const hf = await startTestHoldfast(t, [backend.url]);
  const memory = watchMemory();
  const startedAt = performance.now();
  const res = await request(`${hf.url}/upload`, {
    method: 'PUT',
    headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' },
    body: Readable.from(body(size), { objectMode: false }),
  });
  const text = await res.body.text();
  const { rssGrowth, arrayBuffersGrowth } = memory.stop();
  t.diagnostic(`upload: ${Math.round(performance.now() - startedAt)} ms, rss +${mib(rssGrowth)}, arrayBuffers +${mib(arrayBuffersGrowth)}`);
  assert.equal(res.statusCode, 200);
  assert.equal(text, `${size}\n`);
  assert.equal(received.bytes, size);
  assert.equal(received.digest, expected, 'the backend got the exact bytes');
  assert.equal(backend.seen.length, 1);
  assert.equal(backend.seen[0]!.headers['content-length'], String(size), 'the length went through, no re-chunking');
  assert.ok(rssGrowth < MAX_GROWTH_BYTES, `rss grew ${mib(rssGrowth)}`);
  assert.ok(arrayBuffersGrowth < MAX_GROWTH_BYTES, `arrayBuffers grew ${mib(arrayBuffersGrowth)}`);
});

test('a 1 GiB download streams through with bounded memory', { timeout: 60_000 }, async (t) => {
  const size = GIB;
  const expected = expectedDigest(size);
  const progress = { written: 0, waitingForDrain: false };
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    streamTo(res, size, progress);
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const memory = watchMemory();
  const startedAt = performance.now();
  const res = await request(`${hf.url}/download`);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-length'], String(size));
  const hash = createHash('sha1');
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  const { rssGrowth, arrayBuffersGrowth } = memory.stop();
  t.diagnostic(`download: ${Math.round(performance.now() - startedAt)} ms, rss +${mib(rssGrowth)}, arrayBuffers +${mib(arrayBuffersGrowth)}`);
  assert.equal(bytes, size);
  assert.equal(hash.digest('hex'), expected, 'the client got the exact bytes');
  assert.equal(progress.written, size);
  assert.equal(backend.seen.length, 1);
  assert.ok(rssGrowth < MAX_GROWTH_BYTES, `rss grew ${mib(rssGrowth)}`);
  assert.ok(arrayBuffersGrowth < MAX_GROWTH_BYTES, `arrayBuffers grew ${mib(arrayBuffersGrowth)}`);
});

test('a client that stops reading stalls the backend instead of making Holdfast buffer', { timeout: 60_000 }, async (t) => {
  const size = 256 * MIB;
  const progress = { written: 0, waitingForDrain: false };
  let stalled: () => void = () => {};
  const backendStalled = new Promise<void>((resolve) => (stalled = resolve));
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    streamTo(res, size, progress);
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const agent = new Agent();
  t.after(() => agent.close());
  const memory = watchMemory();
  const res = await request(`${hf.url}/slow-reader`, { dispatcher: agent });
  assert.equal(res.statusCode, 200);
  // Read one chunk, then stop reading: undici stops reading its socket once its buffer is full.
  const iterator = res.body[Symbol.asyncIterator]();
  const first = await iterator.next();
  let read = (first.value as Buffer).length;

  // Quiescence, not a guess: the backend has been waiting for 'drain' with no byte written for 500 ms
  // straight. If Holdfast buffered the body, the backend would never wait and would write all 256 MiB.
  let lastWritten = -1;
  let quietSinceMs = performance.now();
  const poll = setInterval(() => {
    if (progress.written !== lastWritten || !progress.waitingForDrain) {
      lastWritten = progress.written;
      quietSinceMs = performance.now();
    } else if (performance.now() - quietSinceMs >= 500) stalled();
    if (progress.written >= size) stalled();
  }, 25);
  await backendStalled;
  clearInterval(poll);
  const writtenWhileStalled = progress.written;
  t.diagnostic(`backend got ${mib(writtenWhileStalled)} ahead of a client that read ${read} bytes`);
  assert.ok(writtenWhileStalled < 64 * MIB, `the backend wrote ${mib(writtenWhileStalled)} of ${mib(size)} unread`);

  // Resume: everything arrives, the stall cost nothing.
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
    read += (next.value as Buffer).length;
  }
  const { rssGrowth } = memory.stop();
  assert.equal(read, size);
  assert.equal(progress.written, size);
  assert.ok(rssGrowth < MAX_GROWTH_BYTES, `rss grew ${mib(rssGrowth)}`);
  assert.equal(backend.seen.length, 1);
});

test('a backend that streams slowly reaches the client chunk by chunk, not at the end', async (t) => {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const backend = await startBackend(t, async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    await released;
    res.end('second\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const res = await request(`${hf.url}/trickle`);
  assert.equal(res.statusCode, 200);
  const iterator = res.body[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal((first.value as Buffer).toString(), 'first\n', 'the first chunk arrived while the backend still held the rest');
  release();
  let rest = '';
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) rest += (next.value as Buffer).toString();
  assert.equal(rest, 'second\n');
  assert.equal(backend.seen.length, 1);
});

test('a backend that stops reading an upload stalls the client instead of making Holdfast buffer', { timeout: 60_000 }, async (t) => {
  const size = 256 * MIB;
  let received = 0;
  let backendReq: IncomingMessage | undefined;
  let arrived: () => void = () => {};
  const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
  const backend = await startBackend(
    t,
    (req, res) => {
      backendReq = req;
      req.pause(); // read nothing until told
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${received}\n`);
      });
      arrived();
    },
    { bufferBody: false },
  );
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write(`PUT /slow-upload HTTP/1.1\r\nHost: s.test\r\nContent-Length: ${size}\r\n\r\n`);
  const progress = { written: 0, waitingForDrain: false };
  const chunks = body(size);
  const pump = (): void => {
    progress.waitingForDrain = false;
    for (let next = chunks.next(); next.done !== true; next = chunks.next()) {
      progress.written += next.value.length;
      if (!client.socket.write(next.value)) {
        progress.waitingForDrain = true;
        client.socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
  await requestArrived;

  // Quiescence as above: the client has waited for 'drain' with no progress for 500 ms.
  let stalled: () => void = () => {};
  const clientStalled = new Promise<void>((resolve) => (stalled = resolve));
  let lastWritten = -1;
  let quietSinceMs = performance.now();
  const poll = setInterval(() => {
    if (progress.written !== lastWritten || !progress.waitingForDrain) {
      lastWritten = progress.written;
      quietSinceMs = performance.now();
    } else if (performance.now() - quietSinceMs >= 500) stalled();
    if (progress.written >= size) stalled();
  }, 25);
  await clientStalled;
  clearInterval(poll);
  t.diagnostic(`client got ${mib(progress.written)} ahead of a backend that read nothing`);
  assert.ok(progress.written < 64 * MIB, `the client wrote ${mib(progress.written)} of ${mib(size)} unread`);
  assert.equal(received, 0);

  backendReq!.resume();
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), `${size}\n`);
  assert.equal(received, size);
});

test('a client that hangs up mid-download frees the backend exchange', async (t) => {
  const size = 256 * MIB;
  const progress = { written: 0, waitingForDrain: false };
  let backendClosed: (finished: boolean) => void = () => {};
  const closed = new Promise<boolean>((resolve) => (backendClosed = resolve));
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    res.once('close', () => backendClosed(res.writableFinished));
    streamTo(res, size, progress);
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /big HTTP/1.1\r\nHost: s.test\r\n\r\n');
  await eventually(() => client.pending.length >= 1 * MIB, 30_000, 'the first MiB of the answer');
  client.socket.destroy();
  assert.equal(await closed, false, 'the backend response was cut short, not drained into a void');
  assert.ok(progress.written < size);
  assert.equal(backend.seen.length, 1);
});
