// WebSocket over HTTP/2 (RFC 8441): node:http2 clients open extended CONNECT streams on Holdfast's TLS
// listener; ws's own frame code speaks WebSocket over each stream.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import type { ConfigInput } from '../../src/config/schema.js';
import { certDir, makeCert } from '../helpers/certs.js';
import { h2Connect, h2Request, H2WebSocket } from '../helpers/h2.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { listen } from '../helpers/listen.js';
import { until, within } from '../helpers/until.js';
import { publisherFor } from '../hold/push-helpers.js';
import { startWsEchoBackend, startWsOverHttpBackend } from './ws-helpers.js';

async function startH2(t: TestContext, backends: string[], overrides: Partial<ConfigInput> = {}) {
  const cert = makeCert(certDir(t), 'localhost');
  const hf = await startTestHoldfast(t, backends, { ...overrides, tls: { listen: '127.0.0.1:0', certificates: [cert] } });
  const session = await h2Connect(t, `https://localhost:${hf.tlsAddress!.port}`, { ca: readFileSync(cert.cert, 'utf8') });
  return { hf, session };
}

test('h2 websocket: passthrough over extended CONNECT to an HTTP/1.1 backend upgrade; several on one connection beside requests', async (t) => {
  const backend = await startWsEchoBackend(t);
  const { hf, session } = await startH2(t, [backend.url]);
  assert.equal(session.remoteSettings.enableConnectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL advertised');
  const first = await H2WebSocket.open(session, '/echo?a=1', { 'sec-websocket-protocol': 'chat', origin: 'https://app.test' });
  const second = await H2WebSocket.open(session, '/echo?b=2');
  assert.equal(first.status, 200, 'RFC 8441 §5: 200 opens it');
  assert.equal(first.headers['sec-websocket-accept'], undefined, 'the HTTP/1.1 handshake fields stay on the backend hop');
  first.send('hello');
  second.send('world');
  assert.equal(await first.message(0), 'hello');
  assert.equal(await second.message(0), 'world');
  assert.equal((await h2Request(session, { ':path': '/plain' })).status, 426, 'a plain request on the same connection');

  const handshake = backend.handshakes[0]!;
  assert.equal(handshake.method, 'GET');
  assert.equal(handshake.url, '/echo?a=1');
  assert.equal(handshake.headers.upgrade, 'websocket');
  assert.match(handshake.headers['sec-websocket-key'] ?? '', /^[+/0-9A-Za-z]{21}[AQgw]==$/);
  assert.equal(handshake.headers.origin, 'https://app.test');
  assert.equal(handshake.headers['x-forwarded-proto'], 'https');
  assert.equal(await metricValue(hf, 'holdfast_ws_connections', { mode: 'passthrough' }), 2);

  // The backend closes one: its close frame reaches the client, the other goes on.
  first.send('close:4000');
  await until(() => first.closeFrame !== null, 'the close frame');
  assert.equal(first.closeFrame!.code, 4000);
  await until(() => first.stream.closed, 'the stream to end');
  second.send('again');
  assert.equal(await second.message(1), 'again');
  assert.equal(session.closed, false);
  await until(() => hf.upgrades.tunnels.size === 1, 'the first tunnel to end');
});

test('h2 websocket: a backend refusing the upgrade is relayed with its status; an unknown :protocol is 501', async (t) => {
  const backend = await startWsEchoBackend(t, { verifyClient: (_info, done) => done(false, 403, 'no entry') });
  const { session } = await startH2(t, [backend.url]);
  const refused = await H2WebSocket.open(session, '/echo');
  assert.equal(refused.status, 403);
  let body = '';
  refused.stream.setEncoding('utf8');
  refused.stream.on('data', (c: string) => (body += c));
  await until(() => refused.stream.readableEnded, 'the refusal to end (END_STREAM)');
  assert.equal(body, 'no entry');
  assert.equal(refused.headers.connection, undefined);

  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'chat', ':path': '/x', ':scheme': 'https' }, { endStream: false });
  const status = await within(
    new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status'])))),
    10_000,
    'the answer to an unknown :protocol',
  );
  assert.equal(status, 501);
  stream.close();
});

test('h2 websocket: WebSocket-over-HTTP over a stream, a publish reaches it, and HTTP/1.1 upgrades still work beside it', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => {
    ws.accept();
    ws.subscribe('room');
  });
  const { hf, session } = await startH2(t, [backend.url], { websocket: { overHttpPaths: ['/ws'] } });
  const h2ws = await H2WebSocket.open(session, '/ws/chat');
  assert.equal(h2ws.status, 200);
  h2ws.send('hi');
  assert.equal(await h2ws.message(0), 'echo:hi');
  await until(() => hf.holds.heldCount === 1, 'the socket to be subscribed');

  const plain = new WebSocket(`ws://127.0.0.1:${hf.port}/ws/chat`);
  t.after(() => plain.terminate());
  const plainMessages: string[] = [];
  plain.on('message', (data: Buffer) => plainMessages.push(data.toString()));
  await within(once(plain, 'open'), 10_000, 'the HTTP/1.1 socket to open');
  await until(() => hf.holds.heldCount === 2, 'both sockets to be subscribed');
  await publisherFor(hf).publishFormats('room', new (await import('@fanoutio/grip')).WebSocketMessageFormat('to everyone'));
  assert.equal(await h2ws.message(1), 'to everyone');
  await until(() => plainMessages.includes('to everyone'), 'the HTTP/1.1 socket to get it too');

  h2ws.close(1000, 'bye');
  await until(() => h2ws.closeFrame !== null, 'the close handshake');
  assert.equal(h2ws.closeFrame!.code, 1000);
  await until(() => hf.upgrades.sessions.size === 1, 'the h2 session to end');
});

test('h2 websocket: a chunked refusal is relayed as its content (DATA carries no chunk framing)', async (t) => {
  const server = createServer();
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    socket.end('HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\nWWW-Authenticate: Bearer\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n');
  });
  await listen(t, server);
  const { session } = await startH2(t, [`http://127.0.0.1:${(server.address() as AddressInfo).port}`]);
  const refused = await H2WebSocket.open(session, '/echo');
  assert.equal(refused.status, 401);
  assert.equal(refused.headers['www-authenticate'], 'Bearer');
  assert.equal(refused.headers['transfer-encoding'], undefined);
  let body = '';
  refused.stream.setEncoding('utf8');
  refused.stream.on('data', (c: string) => (body += c));
  await until(() => refused.stream.readableEnded, 'the refusal to end (END_STREAM)');
  assert.equal(body, 'hello, world');
});
