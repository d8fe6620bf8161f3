import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { within } from '../helpers/until.js';

const JSON_10K = JSON.stringify(
  Array.from({ length: 120 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'], price: i * 1.5 })),
).slice(0, 10_240);
/** Text that compresses but not trivially: words with random hex between them. */
const BIG_TEXT = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${randomBytes(4).toString('hex')}\n`).join('');

function compressed(url: string): Partial<ConfigInput> {
  return { backends: undefined, groups: { web: { servers: [{ url }], compression: {} } }, routes: [{ group: 'web' }] };
}

async function startApp(t: Parameters<typeof startBackend>[0]) {
  const backend = await startBackend(t, (req, res) => {
    const send = (status: number, headers: Record<string, string>, body?: string | Buffer) => {
      res.writeHead(status, headers);
      res.end(body);
    };
    switch (req.url) {
      case '/json':
        return send(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(JSON_10K.length), etag: '"v1"', 'accept-ranges': 'bytes', vary: 'Origin' }, JSON_10K);
      case '/chunked': {
        // Streamed in pieces without a length (chunked), bigger than any buffer on the way.
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (let i = 0; i < BIG_TEXT.length; i += 50_000) res.write(BIG_TEXT.slice(i, i + 50_000));
        return void res.end();
      }
      case '/small':
        return send(200, { 'content-type': 'text/plain', 'content-length': '5' }, 'small');
      case '/png':
        return send(200, { 'content-type': 'image/png', 'content-length': String(JSON_10K.length) }, JSON_10K);
      case '/encoded':
        return send(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, gzipSync(JSON_10K));
      case '/no-transform':
        return send(200, { 'content-type': 'application/json', 'cache-control': 'public, no-transform' }, JSON_10K);
      case '/empty':
        return send(204, {});
      case '/not-modified':
        return send(304, { etag: '"v1"' });
      case '/partial':
        return send(206, { 'content-type': 'text/plain', 'content-range': `bytes 0-4999/${JSON_10K.length}` }, JSON_10K.slice(0, 5_000));
      default:
        return send(404, { 'content-type': 'text/plain' }, JSON_10K);
    }
  });
  return backend;
}

async function fetchRaw(url: string, headers: Record<string, string>, method = 'GET') {
  const res = await request(url, { method, headers });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

test('gzip and brotli on the fly: byte for byte after decompression, Vary, weak ETag, no Content-Length or Accept-Ranges', async (t) => {
  const app = await startApp(t);
  const hf = await startTestHoldfast(t, [], compressed(app.url));

  const cases: [string, 'gzip' | 'br' | undefined][] = [
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1.0, br;q=0.5', 'gzip'],
    ['br;q=0, gzip;q=0.1', 'gzip'],
    ['*', 'br'],
    ['*;q=0.5, br;q=0', 'gzip'],
    ['identity', undefined],
    ['gzip;q=0, br;q=0', undefined],
    ['x-gzip', 'gzip'],
  ];
  for (const [acceptEncoding, expected] of cases) {
    const res = await fetchRaw(`${hf.url}/json`, { 'accept-encoding': acceptEncoding });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], expected, acceptEncoding);
    assert.equal(res.headers.vary, 'Origin, Accept-Encoding', 'Vary added to the backend’s');
    if (expected === undefined) {
      assert.equal(res.body.toString(), JSON_10K);
      assert.equal(res.headers.etag, '"v1"');
      continue;
    }
    const plain = expected === 'br' ? brotliDecompressSync(res.body) : gunzipSync(res.body);
    assert.equal(plain.toString(), JSON_10K, `${acceptEncoding}: identical after decompression`);
    assert.ok(res.body.length < JSON_10K.length / 3, `${expected} compressed ${JSON_10K.length} to ${res.body.length}`);
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['accept-ranges'], undefined);
    assert.equal(res.headers.etag, 'W/"v1"', 'strong ETag weakened');
  }
  // A streamed (chunked) body bigger than every buffer, both encodings.
  for (const encoding of ['gzip', 'br'] as const) {
    const res = await fetchRaw(`${hf.url}/chunked`, { 'accept-encoding': encoding });
    assert.equal(res.headers['content-encoding'], encoding);
    const plain = encoding === 'br' ? brotliDecompressSync(res.body) : gunzipSync(res.body);
    assert.ok(plain.equals(Buffer.from(BIG_TEXT)), `${encoding}: ${plain.length} bytes back of ${BIG_TEXT.length}`);
  }
  assert.equal(await metricValue(hf, 'holdfast_compressed_responses_total', { encoding: 'br' }), 4);
});

test('left alone: already encoded, no-transform, HEAD, 204, 304, 206, below minBytes, types not listed', async (t) => {
  const app = await startApp(t);
  const hf = await startTestHoldfast(t, [], compressed(app.url));
  const ae = { 'accept-encoding': 'gzip, br' };
  for (const path of ['/encoded', '/no-transform', '/empty', '/not-modified', '/partial', '/small', '/png']) {
    const res = await fetchRaw(`${hf.url}${path}`, ae);
    assert.notEqual(res.headers['content-encoding'], 'br', path);
    assert.notEqual(res.headers.vary, 'Accept-Encoding', `${path}: not compressible, so no Vary`);
  }
  const encoded = await fetchRaw(`${hf.url}/encoded`, ae);
  assert.equal(encoded.headers['content-encoding'], 'gzip', 'the backend’s own encoding passes untouched');
  const head = await fetchRaw(`${hf.url}/json`, ae, 'HEAD');
  assert.equal(head.headers['content-encoding'], undefined);
  assert.equal(head.headers['content-length'], String(JSON_10K.length));
  assert.equal(head.headers.vary, 'Origin, Accept-Encoding');
  const notFound = await fetchRaw(`${hf.url}/missing`, ae);
  assert.equal(notFound.status, 404);
  assert.equal(notFound.headers['content-encoding'], 'br', 'an error page is compressed like any other');
});

test('an SSE stream through compression delivers each event at once (flushed, not buffered)', async (t) => {
  let opened: (res: ServerResponse) => void = () => {};
  const app = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    opened(res);
  });
  const hf = await startTestHoldfast(t, [], compressed(app.url));
  for (const encoding of ['gzip', 'br'] as const) {
    const streamOpened = new Promise<ServerResponse>((resolve) => (opened = resolve));
    const res = await request(`${hf.url}/events`, { headers: { 'accept-encoding': encoding } });
    assert.equal(res.headers['content-encoding'], encoding);
    const stream = await streamOpened;
    const decoder = encoding === 'gzip' ? createGunzip() : createBrotliDecompress();
    res.body.pipe(decoder);
    let text = '';
    const waiters: (() => void)[] = [];
    decoder.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      for (const w of waiters.splice(0)) w();
    });
    const received = async (needle: string) => {
      while (!text.includes(needle)) await within(new Promise<void>((resolve) => waiters.push(resolve)), 10_000, `${needle} decoded at the client`);
    };
    // Each event is written only after the previous one arrived decoded at the client: a compressor that
    // buffered would stall here (and the test time out).
    for (let i = 0; i < 5; i++) {
      stream.write(`id: ${i}\ndata: event ${i} ${'x'.repeat(40)}\n\n`);
      await received(`data: event ${i} `);
    }
    assert.equal(text.split('\n\n').length - 1, 5);
    stream.end();
    await within(new Promise((resolve) => decoder.once('end', resolve)), 10_000, 'the decoded stream to end');
  }
});
