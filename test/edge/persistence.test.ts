import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';

test('HTTP/1.1 is persistent by default: many requests, one client connection, one backend connection', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  for (let i = 0; i < 5; i++) {
    client.write(`GET /r${i} HTTP/1.1\r\nHost: example.test\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `GET /r${i}\n`);
    assert.notEqual(res.headers.connection, 'close');
  }
  assert.equal(client.ended, false);
  assert.equal(backend.seen.length, 5);
  assert.equal(backend.connections, 1, 'all five went over one pooled backend connection');
});

test('Connection: close from the client ends the connection after that response', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.headers.connection, 'close');
  await client.waitEnd();
  assert.equal(backend.seen[0]!.headers.connection, 'keep-alive', 'the backend hop stays persistent');
});

test('Connection: close from the backend does not close the client connection', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { connection: 'close', 'content-length': '2' });
    res.end('ok');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n');
  const [a, b] = await client.readResponses(2);
  assert.equal(a!.status, 200);
  assert.equal(b!.status, 200);
  assert.notEqual(a!.headers.connection, 'close');
  assert.equal(backend.connections, 2, 'the backend closed after each response, so each needed a new connection');
});

test('HTTP/1.0 without keep-alive is closed after the response', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /old HTTP/1.0\r\n\r\n');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'GET /old\n');
  assert.equal(backend.seen[0]!.httpVersion, '1.1', 'the backend hop is HTTP/1.1');
  assert.match(String(backend.seen[0]!.headers.via), /^1\.0 holdfast$/);
});

test('HTTP/1.0 with Connection: keep-alive stays open when the length is known, answered in kind', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  for (let i = 0; i < 3; i++) {
    client.write(`GET /k${i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.headers.connection?.toLowerCase(), 'keep-alive');
    assert.equal(res.body.toString(), `GET /k${i}\n`);
  }
  assert.equal(client.ended, false);
});

test('HTTP/1.0 keep-alive with a body of unknown length is closed after the response', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }); // chunked to us, no length
    res.write('part one, ');
    res.end('part two');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.body.toString(), 'part one, part two');
  assert.equal(res.headers['transfer-encoding'], undefined, 'never chunked to an HTTP/1.0 client');
  assert.equal(res.headers.connection?.toLowerCase(), 'close');
});
