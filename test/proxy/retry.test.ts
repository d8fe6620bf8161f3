import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test, type TestContext } from 'node:test';
import { deadPort, startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { listen } from '../helpers/listen.js';
import { RawClient } from '../helpers/raw.js';

/** One request as a raw backend parsed it off the wire. */
interface RawSeen {
  /** 1-based backend connection, in order of accept. */
  connection: number;
  /** 1-based position of the request on its connection. */
  index: number;
  method: string;
  target: string;
  head: string;
  body: Buffer;
}

/** What the raw backend does with a request: answer it, or close without a byte of response. */
type RawAction = 'answer' | 'fin' | 'rst';

/**
 * A backend on a raw `net` server, so the test decides exactly when and how a connection dies: with a FIN
 * (`end()`) or an RST (`resetAndDestroy()`), after reading the whole request and before answering it.
 * Requests carry Content-Length bodies (or none); that is all this parser needs.
 */
async function startRawBackend(t: TestContext, decide: (seen: RawSeen) => RawAction) {
  const seen: RawSeen[] = [];
  let connections = 0;
  const server = createServer((socket) => {
    socket.on('error', () => {});
    const connection = ++connections;
    let index = 0;
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = buf.subarray(0, headEnd).toString('latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < headEnd + 4 + length) return;
        const body = buf.subarray(headEnd + 4, headEnd + 4 + length);
        buf = buf.subarray(headEnd + 4 + length);
        const [method = '', target = ''] = head.split(' ');
        const request: RawSeen = { connection, index: ++index, method, target, head, body };
        seen.push(request);
        const action = decide(request);
        if (action === 'fin') return void socket.end();
        if (action === 'rst') return void socket.resetAndDestroy();
        const text = `${method} ${target} #${connection}.${request.index}\n`;
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\nKeep-Alive: timeout=30\r\n\r\n${text}`,
        );
      }
    });
  });
  const port = await listen(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    get connections() {
      return connections;
    },
  };
}

/** Answers the first request on every connection; kills the second one (the keep-alive race). */
function killSecondOnConnection(how: 'fin' | 'rst') {
  return (seen: RawSeen): RawAction => (seen.index === 1 ? 'answer' : how);
}

for (const how of ['fin', 'rst'] as const) {
  test(`a GET on a reused pooled socket the backend closed (${how}) is retried on a fresh connection`, async (t) => {
    const backend = await startRawBackend(t, killSecondOnConnection(how));
    const hf = await startTestHoldfast(t, [backend.url]);
    const client = await RawClient.connect(t, hf.port);

    client.write('GET /warm HTTP/1.1\r\nHost: retry.test\r\n\r\n');
    const first = await client.readResponse();
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), 'GET /warm #1.1\n');

    client.write('GET /again HTTP/1.1\r\nHost: retry.test\r\n\r\n');
    const second = await client.readResponse();
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-holdfast-error'], undefined);
    assert.equal(second.body.toString(), 'GET /again #2.1\n', 'answered on a fresh backend connection');
    assert.equal(client.ended, false, 'the client connection survives the retry');

    // The backend saw the GET twice: once on the reused socket (killed), once on the fresh one.
    assert.deepEqual(
      backend.seen.map((s) => `${s.method} ${s.target} #${s.connection}.${s.index}`),
      ['GET /warm #1.1', 'GET /again #1.2', 'GET /again #2.1'],
    );
    assert.equal(backend.connections, 2);
    assert.equal(await metricValue(hf, 'holdfast_upstream_retries_total', { backend: backend.url }), 1);
    assert.equal(await metricValue(hf, 'holdfast_backend_up', { backend: backend.url }), 1, 'a stale socket is not a health failure');
  });

  test(`a POST on a reused pooled socket the backend closed (${how}) is not resent: 502`, async (t) => {
    const backend = await startRawBackend(t, killSecondOnConnection(how));
    const hf = await startTestHoldfast(t, [backend.url]);
    const client = await RawClient.connect(t, hf.port);

    client.write('GET /warm HTTP/1.1\r\nHost: retry.test\r\n\r\n');
    assert.equal((await client.readResponse()).status, 200);

    client.write('POST /order HTTP/1.1\r\nHost: retry.test\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nbuy 1 share');
    const res = await client.readResponse();
    assert.equal(res.status, 502);
    assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
    assert.ok(res.body.toString().includes(backend.url), 'the body names the backend');

    const posts = backend.seen.filter((s) => s.method === 'POST');
    assert.equal(posts.length, 1, 'the backend saw exactly one copy of the POST');
    assert.equal(posts[0]!.body.toString(), 'buy 1 share');
    assert.equal(posts[0]!.connection, 1, 'it went on the reused socket');
    assert.equal(backend.connections, 1, 'no fresh connection was opened to resend it');
    assert.equal((await metricValue(hf, 'holdfast_upstream_retries_total', { backend: backend.url })) ?? 0, 0);
  });
}

test('a POST without a body on a reused socket that died is not resent either', async (t) => {
  const backend = await startRawBackend(t, killSecondOnConnection('fin'));
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /warm HTTP/1.1\r\nHost: retry.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  client.write('POST /poke HTTP/1.1\r\nHost: retry.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
  assert.equal(backend.seen.filter((s) => s.method === 'POST').length, 1);
  assert.equal(backend.connections, 1);
});

test('a GET that fails on a fresh connection is not retried: 502', async (t) => {
  // Every connection dies on its first request: a fresh socket failing is the backend's fault, not a race.
  const backend = await startRawBackend(t, () => 'fin');
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /doomed HTTP/1.1\r\nHost: retry.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
  assert.equal(backend.seen.length, 1, 'sent once');
  assert.equal(backend.connections, 1);
  assert.equal((await metricValue(hf, 'holdfast_upstream_retries_total', { backend: backend.url })) ?? 0, 0);
});

test('a GET whose retry also dies on its reused socket stops after upstream.retries attempts', async (t) => {
  // Connection 1 answers once and then kills; every later connection dies on its first request, so the retry
  // (on a fresh connection) fails for real and the client gets 502, not an endless loop.
  const backend = await startRawBackend(t, (s) => (s.connection === 1 && s.index === 1 ? 'answer' : 'rst'));
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /warm HTTP/1.1\r\nHost: retry.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  client.write('GET /twice HTTP/1.1\r\nHost: retry.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
  assert.deepEqual(
    backend.seen.map((s) => `${s.target} #${s.connection}.${s.index}`),
    ['/warm #1.1', '/twice #1.2', '/twice #2.1'],
  );
});

test('a refused connection sends even a POST to the other backend, and the refused one is then skipped', async (t) => {
  const dead = `http://127.0.0.1:${await deadPort()}`;
  const live = await startBackend(t, (req, res, body) => {
    const text = `${req.method} ${req.url} ${body.toString()}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  // The dead backend is first, so round-robin tries it first.
  const hf = await startTestHoldfast(t, [dead, live.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /pay HTTP/1.1\r\nHost: retry.test\r\nContent-Length: 5\r\n\r\n10eur');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'POST /pay 10eur\n');
  assert.equal(live.seen.length, 1);
  assert.equal(live.seen[0]!.body.toString(), '10eur', 'the body arrived whole: it had never been sent');

  for (let i = 0; i < 4; i++) {
    client.write(`GET /next${i} HTTP/1.1\r\nHost: retry.test\r\n\r\n`);
    assert.equal((await client.readResponse()).status, 200);
  }
  assert.equal(live.seen.length, 5, 'everything went to the live backend');
  assert.equal(await metricValue(hf, 'holdfast_upstream_requests_total', { backend: dead }), 1, 'the dead one was tried once');
  assert.equal(await metricValue(hf, 'holdfast_upstream_errors_total', { backend: dead, code: 'HF_ERR_UPSTREAM_REFUSED' }), 1);
  assert.equal(await metricValue(hf, 'holdfast_backend_up', { backend: dead }), 0, 'passive health took it out');
  assert.equal(await metricValue(hf, 'holdfast_upstream_requests_total', { backend: live.url }), 5);
});
