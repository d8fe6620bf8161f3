import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { startRawBackend } from '../helpers/raw-backend.js';
import { RawClient } from '../helpers/raw.js';

/**
 * Interim (1xx) answers a backend sends before its final one (issue 15, defect 9): RFC 9110 §15.2, a proxy
 * forwards them except to an HTTP/1.0 client, and the final answer must arrive. undici refused an unasked
 * 100 outright (a 502); src/proxy/unasked-continue.ts makes it parse one as it parses 102 and 103.
 */
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';

test('an unasked 100 Continue before the final answer: the client gets both, and the backend connection is kept', async (t) => {
  const backend = await startRawBackend(t, (socket) => socket.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`));
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  for (const path of ['/a', '/b']) {
    client.write(`GET ${path} HTTP/1.1\r\nHost: h.test\r\n\r\n`);
    const interim = await client.readResponse();
    assert.equal(interim.status, 100);
    const final = await client.readResponse();
    assert.equal(final.status, 200, `${path}: the final answer, not a 502`);
    assert.equal(final.body.toString(), 'hello');
  }
  assert.equal(backend.connections, 1, 'the interim answer did not cost the pooled connection');
});

test('102 Processing and 103 Early Hints are relayed (with the hints) before the final answer', async (t) => {
  const backend = await startRawBackend(t, (socket) =>
    socket.write(
      'HTTP/1.1 102 Processing\r\n\r\n' +
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nConnection: X-Hop\r\nX-Hop: no\r\n\r\n' +
        OK,
    ),
  );
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET / HTTP/1.1\r\nHost: h.test\r\n\r\n');
  const processing = await client.readResponse();
  assert.equal(processing.status, 102);
  const hints = await client.readResponse();
  assert.equal(hints.status, 103);
  assert.equal(hints.headers.link, '</style.css>; rel=preload; as=style');
  assert.equal(hints.headers['x-hop'], undefined, 'fields named in Connection stay on the backend hop');
  const final = await client.readResponse();
  assert.equal(final.status, 200);
  assert.equal(final.body.toString(), 'hello');
});

test('an HTTP/1.0 client gets only the final answer (RFC 9110 §15.2: no 1xx to HTTP/1.0)', async (t) => {
  const backend = await startRawBackend(t, (socket) =>
    socket.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\n${OK}`),
  );
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET / HTTP/1.0\r\nHost: h.test\r\n\r\n');
  const final = await client.readResponse();
  assert.equal(final.status, 200);
  assert.equal(final.body.toString(), 'hello');
  await client.waitEnd();
  assert.equal(client.pending.length, 0, 'nothing else was sent');
});

test('an interim answer with no final answer after it is a 502', async (t) => {
  const backend = await startRawBackend(t, (socket) => socket.end('HTTP/1.1 100 Continue\r\n\r\n'));
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET / HTTP/1.1\r\nHost: h.test\r\n\r\n');
  const interim = await client.readResponse();
  assert.equal(interim.status, 100);
  const final = await client.readResponse();
  assert.equal(final.status, 502);
  assert.equal(final.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
});
