import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBackend, type Handler } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';

/** Echoes method, target and body, with a length so the connection stays persistent. */
const echo: Handler = (req, res, body) => {
  const text = `${req.method} ${req.url} ${body.toString()}`;
  res.writeHead(200, { 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

test('Expect: 100-continue: the client gets 100 Continue, then its body reaches the backend without Expect', async (t) => {
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
  assert.equal(backend.seen[0]!.headers.expect, undefined, 'Expect belongs to the client hop');

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
  await holding;
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
