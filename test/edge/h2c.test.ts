// h2c with prior knowledge on the plain listener (`h2c: true`), beside HTTP/1.x on the same port.
import assert from 'node:assert/strict';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { parseCommandLine } from '../../src/cli/args.js';
import { loadConfig } from '../../src/config/load.js';
import { startBackend } from '../helpers/backend.js';
import { routeByPreface } from '../../src/edge/h2c-preface.js';
import { listen } from '../helpers/listen.js';
import { h2Connect, h2Request, H2WebSocket } from '../helpers/h2.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { until } from '../helpers/until.js';
import { heldCount, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';
import { startWsEchoBackend } from '../ws/ws-helpers.js';

test('h2c: node:http2 with prior knowledge and HTTP/1.1 on the same plain port', async (t) => {
  const backend = await startGripBackend(t, (req, res) => {
    if (req.url!.startsWith('/stream/')) {
      const instruct = res.grip.startInstruct();
      instruct.addChannel('news');
      instruct.setHoldStream();
      res.end('open;');
    } else res.end(`plain ${req.url}`);
  });
  const hf = await startTestHoldfast(t, [backend.url], { h2c: true });
  let tcp: Socket | null = null;
  const session = await h2Connect(t, hf.url, { createConnection: () => (tcp = netConnect(hf.port, '127.0.0.1')) });
  const answer = await h2Request(session, { ':path': '/one' });
  assert.equal(answer.body, 'plain /one');
  assert.equal(backend.seen[0]!.headers['x-forwarded-proto'], 'http');
  assert.equal(backend.seen[0]!.httpVersion, '1.1');
  const held = session.request({ ':path': '/stream/a' });
  let text = '';
  held.setEncoding('utf8');
  held.on('data', (c: string) => (text += c));
  await heldCount(hf, 1);
  await publishRaw(hf, { items: [streamItem('news', 'hello;')] });
  await until(() => text === 'open;hello;', 'the publish on the h2c stream');

  const http1 = await fetch(`${hf.url}/two`);
  assert.equal(await http1.text(), 'plain /two');
  assert.equal(await metricValue(hf, 'holdfast_h2_connections_open'), 1);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_open'), 2, 'both protocols count as connections');

  // The client's connection cut mid-stream (no GOAWAY, no FIN first): released, and the process goes on.
  tcp!.destroy();
  await until(() => hf.holds.heldCount === 0, 'the held stream to be released');
  await until(() => hf.edge.h2.size === 0, 'the connection to leave');
  assert.equal((await h2Request(await h2Connect(t, hf.url), { ':path': '/three' })).body, 'plain /three');
});

test('h2c: a preface split across reads is still HTTP/2, handed over paused with every byte pushed back; anything else goes to HTTP/1 as it came', async (t) => {
  const routed: { kind: string; socket: Socket; first?: string }[] = [];
  const server = createNetServer((socket) => {
    t.after(() => socket.destroy());
    serverSockets.push(socket);
    routeByPreface(socket, 10_000, {
      h2: (s) => routed.push({ kind: 'h2', socket: s }),
      http1: (s) => s.once('data', (chunk: Buffer) => routed.push({ kind: 'http1', socket: s, first: chunk.toString('latin1') })),
    });
  });
  const serverSockets: Socket[] = [];
  await listen(t, server);
  const port = (server.address() as AddressInfo).port;
  const split = netConnect(port, '127.0.0.1');
  t.after(() => split.destroy());
  split.write('PRI * HT');
  // The server has read the first part on its own before the rest is sent.
  await until(() => serverSockets[0]?.bytesRead === 8, 'the first 8 bytes to be read');
  split.write('TP/2.0\r\n\r\nSM\r\n\r\nrest');
  await until(() => routed.length === 1, 'the connection to be routed');
  const plain = netConnect(port, '127.0.0.1');
  t.after(() => plain.destroy());
  plain.write('PRIX / HTTP/1.1\r\n');
  await until(() => routed.length === 2, 'the second connection to be routed');
  assert.deepEqual({ kind: routed[1]!.kind, first: routed[1]!.first }, { kind: 'http1', first: 'PRIX / HTTP/1.1\r\n' });
  // node:http2 reads what is pushed back on the tick after it takes the socket (h2c-preface.ts): the bytes
  // must still be there, the socket paused, several I/O turns later (the second connection was served since).
  const h2 = routed[0]!;
  assert.equal(h2.kind, 'h2');
  assert.equal(h2.socket, serverSockets[0], 'the socket itself, not a stream around it');
  assert.equal(h2.socket.isPaused(), true);
  assert.equal((h2.socket.read() as Buffer | null)?.toString('latin1'), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest');
});

test('h2c: a request line is answered by the HTTP/1 server; WebSockets over h2c', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { h2c: true });
  // A request line starting like the preface is HTTP/1 (the method PRI is not one Node's parser knows).
  const raw = netConnect(hf.port, '127.0.0.1');
  t.after(() => raw.destroy());
  let reply = '';
  raw.on('data', (c: Buffer) => (reply += c.toString('latin1')));
  raw.write('PRIX / HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => reply.includes('\r\n\r\n'), 'an HTTP/1 answer');
  assert.match(reply, /^HTTP\/1\.1 501 /);
  assert.equal(backend.seen.length, 0);

  const ws = await startWsEchoBackend(t);
  const hfWs = await startTestHoldfast(t, [ws.url], { h2c: true });
  const session = await h2Connect(t, hfWs.url);
  const socketOverH2c = await H2WebSocket.open(session, '/echo', { ':scheme': 'http' });
  assert.equal(socketOverH2c.status, 200);
  socketOverH2c.send('over h2c');
  assert.equal(await socketOverH2c.message(0), 'over h2c');
  assert.equal(ws.handshakes[0]!.headers['x-forwarded-proto'], 'http');
});

test('h2c: --h2c turns it on (default off, where the preface is an HTTP/1 error)', async (t) => {
  assert.equal(loadConfig({ flags: { backend: ['http://127.0.0.1:1'], ...parseCommandLine(['--h2c']).values }, env: {} }).h2c, true);
  assert.equal(loadConfig({ flags: { backend: ['http://127.0.0.1:1'] }, env: { HOLDFAST_H2C: 'true' } }).h2c, true);
  assert.equal(loadConfig({ flags: { backend: ['http://127.0.0.1:1'] }, env: {} }).h2c, false);
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const socket = netConnect(hf.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let reply = '';
  socket.on('data', (c: Buffer) => (reply += c.toString('latin1')));
  socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  await until(() => reply.includes('\r\n\r\n'), 'an HTTP/1 answer');
  assert.match(reply, /^HTTP\/1\.1 (400|505) /);
});
