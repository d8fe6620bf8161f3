import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { H1Server } from '../../src/edge/h1-server.js';
import { H1BodyRequest, H1Request } from '../../src/http/h1-request.js';
import { H1Response, type ResponseWire } from '../../src/http/h1-response.js';
import { llhttpMissing } from '../../src/http/llhttp.js';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { until } from '../helpers/until.js';
import { HeldStream, heldCount, startGripBackend } from '../hold/push-helpers.js';

/**
 * The edge's own HTTP/1 engine (edge/h1-server.ts on Node's llhttp binding): that it is the one running,
 * never the node:http fallback, and that it keeps what it was built for: no IncomingMessage or
 * ServerResponse per request, no stream for a request without a body, one write per small answer, and no
 * parser kept under a held stream. Everything else it must do is the rest of test/edge, unchanged.
 */

test("the llhttp engine runs: the start-up check finds every part of Node's binding, so nothing falls back", async (t) => {
  assert.deepEqual(llhttpMissing(), [], 'the parts of _http_common the engine needs are all there');
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  assert.equal(hf.edge.engine, 'llhttp');
  assert.ok(hf.edge.server instanceof H1Server);
});

test('a request is answered without IncomingMessage, ServerResponse or a stream for a body it does not have', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const seen: { req: unknown; res: unknown }[] = [];
  hf.edge.server.on('request', (req: unknown, res: unknown) => seen.push({ req, res }));
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /plain HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  client.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
  const posted = await client.readResponse();
  assert.equal(posted.body.toString(), 'POST /upload\n');
  assert.equal(backend.seen[1]!.body.toString(), 'hello', 'the body went through the engine to the backend');
  assert.equal(seen.length, 2);
  const [get, post] = seen;
  assert.ok(get!.req instanceof H1Request && !(get!.req instanceof Readable), 'a GET is a plain object');
  assert.ok(post!.req instanceof H1BodyRequest && post!.req instanceof Readable, 'a body is a stream');
  for (const { req, res } of seen) {
    assert.ok(!(req instanceof IncomingMessage));
    assert.ok(res instanceof H1Response && !(res instanceof ServerResponse));
  }
});

test('a small answer leaves in one write: head and body together (writev)', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
    res.end('small body\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const accepted = new Promise<Socket>((resolve) => hf.edge.server.once('connection', resolve));
  const client = await RawClient.connect(t, hf.port);
  const socket = await accepted;
  // Every write that reaches the socket's handle goes through _write (one buffer) or _writev (corked ones).
  let writes = 0;
  const handleWrites = socket as Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = handleWrites._write.bind(socket);
  const writev = handleWrites._writev.bind(socket);
  handleWrites._write = (...a: unknown[]) => {
    writes++;
    write(...a);
  };
  handleWrites._writev = (...a: unknown[]) => {
    writes++;
    writev(...a);
  };
  for (let i = 0; i < 3; i++) {
    client.write(`GET /s${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.body.toString(), 'small body\n');
    assert.equal(writes, i + 1, `answer ${i + 1} took one write`);
  }
});

test('a held stream keeps no request parser; a connection waiting for a request has one', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('parserless');
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(':open\n\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const server = hf.edge.server as H1Server;
  for (let i = 0; i < 3; i++) {
    const stream = await HeldStream.open(t, hf.port, '/parserless');
    await stream.waitForText(':open\n\n');
  }
  await heldCount(hf, 3);
  await until(() => server.parsingConnections === 0, 'the held streams to give their parsers back');
  // A connection that has sent nothing yet is waiting for a request: it has a parser, the streams still none.
  await RawClient.connect(t, hf.port);
  await until(() => server.parsingConnections === 1, 'the new connection to be given a parser');
  assert.equal(hf.holds.heldCount, 3);
});

test('trailer fields of a chunked upload never become fields of the next pipelined request', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  // The next head has more fields than llhttp hands over at once (32), so it arrives in parts too.
  const many = Array.from({ length: 40 }, (_, i) => `X-F${i}: ${i}\r\n`).join('');
  client.write(
    'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: sneaked\r\n\r\n' +
      `GET /next HTTP/1.1\r\nHost: x\r\n${many}\r\n`,
  );
  const [up, next] = await client.readResponses(2);
  assert.equal(up!.status, 200);
  assert.equal(next!.status, 200);
  const seen = backend.seen[1]!;
  assert.equal(seen.url, '/next');
  assert.equal(seen.headers['x-trailer'], undefined, 'the trailer stayed with the upload');
  assert.equal(seen.headers['x-f39'], '39', 'every field of the next head arrived');
});

test('an upgrade that is not a WebSocket is served as a plain request, and the engine forgets the connection when it closes', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const server = hf.edge.server as H1Server;
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(backend.seen[0]!.headers.upgrade, undefined, 'the upgrade was not forwarded');
  client.socket.destroy();
  await until(() => server.connectionCount === 0, 'the engine to forget the connection');
});

test('a head refused for a bad field leaves the response answerable: the error goes out framed by its own fields', async (t) => {
  // A socket pair over real TCP: the response writes to one end, the test reads the other.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const socket = await accepted;
  t.after(() => {
    client.destroy();
    socket.destroy();
  });
  const ended: H1Response[] = [];
  const wire: ResponseWire = {
    socket,
    keepAliveLine: '',
    releaseParser: () => false,
    responseEnded: (res) => void ended.push(res),
    endWritten: () => {},
    awaitEndWritten: () => {},
  };
  const res = new H1Response(new H1Request('GET', '/', ['Host', 'x'], 1, 1, socket), wire, true, false);
  res.socket = socket;
  assert.throws(() => res.writeHead(200, ['transfer-encoding', 'chunked', 'x-bad', 'a\u0001b']), { code: 'ERR_INVALID_CHAR' });
  assert.equal(res.headersSent, false, 'nothing was sent');
  res.writeHead(502, ['content-length', '4']);
  res.end('bad\n');
  let received = '';
  client.setEncoding('latin1');
  client.on('data', (chunk: string) => (received += chunk));
  await until(() => received.endsWith('bad\n'), 'the error answer');
  assert.match(received, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  assert.doesNotMatch(received, /transfer-encoding|x-bad/i);
  assert.ok(received.endsWith('\r\n\r\nbad\n'), `framed by Content-Length, not as chunks: ${JSON.stringify(received)}`);
  assert.deepEqual(ended, [res]);
});
