import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { until } from '../helpers/until.js';

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

/**
 * A backend that holds each answer until the test says so, so the client's FIN provably reaches Holdfast
 * before any answer exists (the edge's connection records it).
 */
async function startGatedBackend(t: TestContext) {
  const waiting: (() => void)[] = [];
  const backend = await startBackend(t, async (req, res) => {
    await new Promise<void>((resolve) => waiting.push(resolve));
    res.end(`${req.method} ${req.url}\n`);
  });
  return { backend, waiting };
}


for (const { name, bytes, answers } of [
  { name: 'an HTTP/1.1 request', bytes: 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n', answers: ['GET /a\n'] },
  { name: 'an HTTP/1.0 request', bytes: 'GET /a HTTP/1.0\r\n\r\n', answers: ['GET /a\n'] },
  { name: 'a POST with its body', bytes: 'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', answers: ['POST /p\n'] },
  {
    name: 'two pipelined requests',
    bytes: 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n',
    answers: ['GET /a\n', 'GET /b\n'],
  },
]) {
  test(`a client that half-closes after ${name} still gets every answer, the last saying Connection: close`, async (t) => {
    // RFC 9112 §9.6: a FIN ends what the client sends, not what it may read. Node's server, left to itself,
    // aborted the pending requests and ended the socket: the client got nothing (HAProxy answers; nginx does not).
    const { backend, waiting } = await startGatedBackend(t);
    const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
    const client = await RawClient.connect(t, hf.port);
    client.socket.end(bytes);
    await until(() => [...hf.edge.registry.connections()].some((c) => 'clientEnded' in c && c.clientEnded));
    for (let i = 0; i < answers.length; i++) {
      await until(() => waiting.length >= 1);
      waiting.shift()!();
    }
    await client.waitEnd();
    const responses = await client.readResponses(answers.length);
    assert.deepEqual(
      responses.map((r) => r.body.toString()),
      answers,
    );
    assert.equal(responses.at(-1)!.headers.connection, 'close', 'the last answer says the connection ends');
    for (const r of responses.slice(0, -1)) assert.notEqual(r.headers.connection, 'close');
    assert.equal(client.pending.length, 0);
  });
}

test('a client that half-closes inside its request head gets 400, and nothing is forwarded', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  client.socket.end('GET /a HTTP/1.1\r\nHost: x\r\n');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 400);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_MALFORMED_REQUEST');
  assert.equal(backend.seen.length, 0);
});
