import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { mock, test } from 'node:test';
import { deadPort } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { WsClient, clientFrame, handshake, listen, startWsEchoBackend, until } from './ws-helpers.js';

const wsUrl = (port: number, path = '/chat') => `ws://127.0.0.1:${port}${path}`;

test('passthrough: text and binary echo through the tunnel, with the handshake and hygiene the backend expects', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await WsClient.open(t, wsUrl(hf.port, '/chat?room=1'), [], {
    headers: { Origin: 'https://app.test', Cookie: 'sid=abc', 'Grip-Sig': 'forged', 'X-Forwarded-For': '10.0.0.1' },
  });
  client.ws.send('hello');
  assert.deepEqual(await client.next(), { data: Buffer.from('hello'), isBinary: false });
  const bytes = Buffer.from([0, 1, 2, 255, 254]);
  client.ws.send(bytes);
  assert.deepEqual(await client.next(), { data: bytes, isBinary: true });

  const seen = backend.handshakes[0]!;
  assert.equal(seen.url, '/chat?room=1');
  assert.equal(seen.headers.origin, 'https://app.test');
  assert.equal(seen.headers.cookie, 'sid=abc');
  assert.equal(seen.headers.upgrade, 'websocket');
  assert.match(seen.headers.connection ?? '', /upgrade/i);
  assert.equal(seen.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers.via, '1.1 holdfast');
  assert.notEqual(seen.headers['grip-sig'], 'forged', 'a client-sent Grip-Sig never reaches the backend');
  assert.equal(await metricValue(hf, 'holdfast_ws_connections', { mode: 'passthrough' }), 1);
});

test('passthrough: a message sent in fragments arrives as one message; a 16 MB message makes the round trip', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await WsClient.open(t, wsUrl(hf.port));
  client.ws.send('frag-', { fin: false });
  client.ws.send('men-', { fin: false });
  client.ws.send('ted', { fin: true });
  assert.equal(await client.nextText(), 'frag-men-ted');
  assert.equal(backend.received.length, 1, 'the backend got one message, not three');

  const big = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  client.ws.send(big);
  const echoed = await client.next();
  assert.equal(echoed.isBinary, true);
  assert.equal(echoed.data.length, big.length);
  assert.ok(echoed.data.equals(big));
});

test('passthrough: permessage-deflate is negotiated end to end (and only when the backend offers it)', async (t) => {
  const deflating = await startWsEchoBackend(t, { perMessageDeflate: { threshold: 0 } });
  const plain = await startWsEchoBackend(t, { perMessageDeflate: false });
  const hfDeflate = await startTestHoldfast(t, [deflating.url]);
  const hfPlain = await startTestHoldfast(t, [plain.url]);
  const compressed = await WsClient.open(t, wsUrl(hfDeflate.port), [], { perMessageDeflate: true });
  assert.match(compressed.ws.extensions, /permessage-deflate/);
  assert.match(String(deflating.handshakes[0]!.headers['sec-websocket-extensions']), /permessage-deflate/);
  const text = 'compress me '.repeat(1000);
  compressed.ws.send(text);
  assert.equal(await compressed.nextText(), text);

  const uncompressed = await WsClient.open(t, wsUrl(hfPlain.port), [], { perMessageDeflate: true });
  assert.equal(uncompressed.ws.extensions, '', 'the backend declined, so the client has no extension');
  uncompressed.ws.send('x');
  assert.equal(await uncompressed.nextText(), 'x');
});

test('passthrough: the backend selects the subprotocol', async (t) => {
  const backend = await startWsEchoBackend(t, {
    handleProtocols: (offered) => (offered.has('chat.v1') ? 'chat.v1' : false),
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await WsClient.open(t, wsUrl(hf.port), ['chat.v2', 'chat.v1']);
  assert.equal(client.ws.protocol, 'chat.v1');
  assert.equal(backend.handshakes[0]!.headers['sec-websocket-protocol'], 'chat.v2,chat.v1');
});

test('passthrough: close codes and reasons cross both ways', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const byClient = await WsClient.open(t, wsUrl(hf.port));
  byClient.ws.close(4001, 'client says bye');
  assert.deepEqual(await byClient.closed(), { code: 4001, reason: 'client says bye' });
  await until(() => backend.closes.length === 1, 'the backend to see the close');
  assert.deepEqual(backend.closes[0], { code: 4001, reason: 'client says bye' });

  const byBackend = await WsClient.open(t, wsUrl(hf.port));
  byBackend.ws.send('close:4002');
  assert.deepEqual(await byBackend.closed(), { code: 4002, reason: 'from backend' });
  await until(() => hf.upgrades.tunnels.size === 0, 'the tunnels to end');
  assert.equal(await metricValue(hf, 'holdfast_ws_connections', { mode: 'passthrough' }), 0);
});

test('passthrough: a refused handshake is relayed as the backend sent it, and the connection closed', async (t) => {
  const body = 'no entry for you\n';
  const server = createHttpServer();
  server.on('upgrade', (_req, socket: Socket) => {
    socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Why: origin\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
  await listen(t, server);
  const port = (server.address() as { port: number }).port;
  const hf = await startTestHoldfast(t, [`http://127.0.0.1:${port}`]);
  const client = await RawClient.connect(t, hf.port);
  client.write(handshake('/chat', ['Origin: https://evil.test']));
  await client.waitEnd();
  // Byte for byte, but for the one field of our own hop: the connection closes after it.
  assert.equal(
    client.pending.toString('latin1'),
    `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Why: origin\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
  assert.equal(await metricValue(hf, 'holdfast_ws_handshakes_rejected_total', { code: 'HF_ERR_WS_REFUSED' }), 1);
});

test('passthrough: a chunked refusal keeps its chunked framing', async (t) => {
  const server = createHttpServer();
  server.on('upgrade', (_req, socket: Socket) => {
    socket.end('HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nlogin\r\n6\r\n first\r\n0\r\n\r\n');
  });
  await listen(t, server);
  const port = (server.address() as { port: number }).port;
  const hf = await startTestHoldfast(t, [`http://127.0.0.1:${port}`]);
  const client = await RawClient.connect(t, hf.port);
  client.write(handshake('/chat'));
  const res = await client.readResponse();
  assert.equal(res.status, 401);
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  assert.equal(res.body.toString(), 'login first');
});

test('passthrough: frames sent in the same packet as the handshake reach the backend after its 101', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write(Buffer.concat([Buffer.from(handshake('/chat')), clientFrame(0x1, 'early bird')]));
  await until(() => backend.received.length === 1, 'the early frame at the backend');
  assert.equal(backend.received[0]!.data.toString(), 'early bird');
  // And the echo came back through the tunnel after the 101 head.
  await until(() => client.pending.includes(Buffer.from('early bird')), 'the echo');
  assert.match(client.pending.toString('latin1'), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
});

test('passthrough: a backend that is down gets the client a 502 answer to its handshake', async (t) => {
  const hf = await startTestHoldfast(t, [`http://127.0.0.1:${await deadPort()}`]);
  const client = await RawClient.connect(t, hf.port);
  client.write(handshake('/chat'));
  const res = await client.readResponse();
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_REFUSED');
  await client.waitEnd();
});

test('passthrough: a backend answering garbage gets the client a 502', async (t) => {
  const server = createNetServer((s) => {
    s.on('data', () => s.end('SSH-2.0-OpenSSH_9.0\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const hf = await startTestHoldfast(t, [`http://127.0.0.1:${(server.address() as { port: number }).port}`]);
  const client = await RawClient.connect(t, hf.port);
  client.write(handshake('/chat'));
  const res = await client.readResponse();
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_BAD_RESPONSE');
});

test('a bad handshake is refused before any backend sees it', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const noKey = await RawClient.connect(t, hf.port);
  noKey.write('GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const r1 = await noKey.readResponse();
  assert.equal(r1.status, 400);
  assert.equal(r1.headers['x-holdfast-error'], 'HF_ERR_WS_BAD_HANDSHAKE');
  const oldVersion = await RawClient.connect(t, hf.port);
  oldVersion.write(handshake('/chat').replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8'));
  const r2 = await oldVersion.readResponse();
  assert.equal(r2.status, 426);
  assert.equal(r2.headers['sec-websocket-version'], '13');
  const noHost = await RawClient.connect(t, hf.port);
  noHost.write(handshake('/chat').replace('Host: app.test\r\n', ''));
  const r3 = await noHost.readResponse();
  assert.equal(r3.status, 400);
  assert.equal(r3.headers['x-holdfast-error'], 'HF_ERR_MISSING_HOST', 'the same request checks as HTTP');
  assert.equal(backend.handshakes.length, 0);
});

test('an Upgrade other than websocket (h2c) is served as plain HTTP, without the Upgrade', async (t) => {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(String(req.headers.upgrade));
    res.end('plain answer');
  });
  await listen(t, server);
  const hf = await startTestHoldfast(t, [`http://127.0.0.1:${(server.address() as { port: number }).port}`]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /page HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'plain answer');
  assert.deepEqual(seen, ['undefined']);
  // The connection stays an HTTP/1.1 keep-alive connection.
  client.write('GET /again HTTP/1.1\r\nHost: app.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
});

test('passthrough: a half-open tunnel is cleaned up by the idle timeout (fake clock)', async (t) => {
  // A backend that accepts the upgrade and then never says anything, nor closes.
  const upstreamClosed: boolean[] = [];
  const server = createHttpServer();
  server.on('upgrade', (_req, socket: Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
    socket.on('data', () => undefined);
    // Its own side stays half-open (Node's HTTP server allows it); what matters is that Holdfast hung up.
    socket.once('end', () => upstreamClosed.push(true));
  });
  server.on('connection', (s: Socket) => s.setNoDelay(true));
  await listen(t, server);
  const hf = await startTestHoldfast(t, [`http://127.0.0.1:${(server.address() as { port: number }).port}`], {
    websocket: { tunnelIdleTimeoutMs: 60_000 },
  });
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
  const client = await RawClient.connect(t, hf.port);
  client.write(handshake('/chat'));
  await client.readResponse({ head: true });
  await until(() => hf.upgrades.tunnels.size === 1 && [...hf.upgrades.tunnels][0]!.open, 'the tunnel');
  client.socket.end(); // half-close: the client is done, the backend never answers
  mock.timers.tick(30_000);
  assert.equal(hf.upgrades.tunnels.size, 1, 'not idle long enough yet');
  mock.timers.tick(31_000);
  await until(() => hf.upgrades.tunnels.size === 0 && upstreamClosed.length === 1, 'both sides closed');
  await client.waitEnd();
  assert.equal(await metricValue(hf, 'holdfast_ws_dead_peers_total', { mode: 'passthrough' }), 1);
});

test('passthrough: when one side dies the other is destroyed with it', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await WsClient.open(t, wsUrl(hf.port));
  client.ws.send('ping?');
  await client.next();
  backend.sockets[0]!.terminate(); // RST-like: no close frame
  const closed = await client.closed();
  assert.equal(closed.code, 1006, 'no close frame, the TCP connection was cut');
  await until(() => hf.upgrades.tunnels.size === 0, 'the tunnel gone');
});
