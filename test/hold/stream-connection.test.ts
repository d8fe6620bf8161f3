import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { HttpStreamFormat } from '@fanoutio/grip';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { HeldStream, heldCount, publisherFor, startGripBackend, until } from './push-helpers.js';

/**
 * The connection under a held stream once Node's request parser is released from it (http/stream-takeover):
 * the client leaving, the client sending bytes anyway, the stream ending, and a pipelined request behind a
 * stream. What the client sees and what the backend saw must be what they were with the parser attached.
 */

async function streamBackend(t: Parameters<typeof startGripBackend>[0], channel: string) {
  return startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel(channel);
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(':open\n\n');
  });
}

test('held stream: the client half-closing ends the hold and the connection', async (t) => {
  const backend = await streamBackend(t, 'leave');
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/leave');
  await client.waitForText(':open\n\n');
  await heldCount(hf, 1);
  client.socket.end();
  await client.waitFinished();
  assert.equal(client.closed, true, 'Holdfast closed the connection after the client FIN');
  await until(() => hf.holds.heldCount === 0, 'the hold to be released');
  await publisherFor(hf).publishHttpStream('leave', 'nobody\n');
  assert.equal(backend.seen.length, 1);
});

test('held stream: bytes the client sends on it are dropped, never parsed or forwarded, and the stream goes on', async (t) => {
  const backend = await streamBackend(t, 'chatty');
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/chatty');
  await client.waitForText(':open\n\n');
  await heldCount(hf, 1);
  client.socket.write('GET /second HTTP/1.1\r\nHost: app.test\r\n\r\n');
  client.socket.write(Buffer.alloc(64 * 1024, 0x41));
  await publisherFor(hf).publishHttpStream('chatty', 'data: still here\n\n');
  await client.waitForText('data: still here\n\n');
  assert.equal(client.closed, false);
  assert.equal(backend.seen.length, 1, 'the bytes after the held request never reached the backend');
});

test('held stream: a close action ends the response with its last chunk, then the connection closes', async (t) => {
  const backend = await streamBackend(t, 'ending');
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/ending');
  await client.waitForText(':open\n\n');
  await heldCount(hf, 1);
  const publisher = publisherFor(hf);
  await publisher.publishHttpStream('ending', 'data: last\n\n');
  await publisher.publishHttpStream('ending', new HttpStreamFormat(null, true));
  await client.waitFinished();
  assert.equal(client.body, ':open\n\ndata: last\n\n');
  await until(() => client.closed, 'the connection to close after the stream ended');
  assert.equal(hf.holds.heldCount, 0);
});

test('held stream: a request pipelined behind the stream is still parsed and answered after the stream ends', async (t) => {
  const backend = await startGripBackend(t, (req, res) => {
    if (req.url === '/after') {
      res.end('after\n');
      return;
    }
    const instruct = res.grip.startInstruct();
    instruct.addChannel('piped');
    instruct.setHoldStream();
    res.end('[stream]\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/piped');
  // Sent with the first request's bytes still in flight: Node parses it as a pipelined request.
  client.socket.write('GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await client.waitForText('[stream]\n');
  await heldCount(hf, 1);
  await publisherFor(hf).publishHttpStream('piped', new HttpStreamFormat(null, true));
  await until(() => client.rawReceived.includes('after\n'), 'the pipelined answer');
  assert.match(client.rawReceived, /0\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.deepEqual(
    backend.seen.map((s) => s.url),
    ['/piped', '/after'],
  );
});

test('draining ends held streams with their last chunk and closes their connections before the deadline', async (t) => {
  const backend = await streamBackend(t, 'draining');
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { drainMs: 10_000 } });
  const clients = await Promise.all([HeldStream.open(t, hf.port, '/a'), HeldStream.open(t, hf.port, '/b')]);
  for (const client of clients) await client.waitForText(':open\n\n');
  await heldCount(hf, 2);
  const started = Date.now();
  await hf.drain();
  assert.ok(Date.now() - started < 5_000, 'held streams did not wait for the drain deadline');
  for (const client of clients) {
    await until(() => client.closed, 'the stream connection to close');
    assert.match(client.rawReceived, /0\r\n\r\n$/, 'the stream ended with its last chunk, not a cut');
  }
  assert.equal(hf.holds.heldCount, 0);
});

test('held stream to an HTTP/1.0 client: close-delimited, published content arrives, a close action ends the connection', async (t) => {
  const backend = await streamBackend(t, 'old');
  const hf = await startTestHoldfast(t, [backend.url]);
  const socket = connect(hf.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write('GET /old HTTP/1.0\r\nHost: app.test\r\n\r\n');
  await until(() => received.includes(':open\n\n'), 'the stream head and initial body');
  await heldCount(hf, 1);
  const publisher = publisherFor(hf);
  await publisher.publishHttpStream('old', 'data: one\n\n');
  await until(() => received.includes('data: one\n\n'), 'the published event');
  await publisher.publishHttpStream('old', new HttpStreamFormat(null, true));
  await ended;
  assert.match(received, /^HTTP\/1\.[01] 200 /);
  assert.doesNotMatch(received, /transfer-encoding: chunked/i, 'an HTTP/1.0 client gets no chunked framing');
  assert.ok(received.endsWith(':open\n\ndata: one\n\n'), JSON.stringify(received));
  assert.equal(hf.holds.heldCount, 0);
});
