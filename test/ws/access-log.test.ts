import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { until, within } from '../helpers/until.js';
import { WsClient, startWsEchoBackend, startWsOverHttpBackend } from './ws-helpers.js';

test('access log: a passthrough WebSocket gets one line when it ends (101, its duration, the backend)', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await WsClient.open(t, `ws://127.0.0.1:${hf.port}/chat?room=1`);
  client.ws.send('hello');
  await client.next();
  client.ws.close(1000);
  const line = await within(hf.logs.waitFor({ msg: 'access', target: '/chat?room=1' }), 10_000, 'the WebSocket\'s access line');
  assert.equal(line.method, 'GET');
  assert.equal(line.status, 101);
  assert.equal(line.websocket, 'passthrough');
  assert.equal(line.backend, backend.url);
  assert.equal(line.client, '127.0.0.1');
  assert.equal(typeof line.ms, 'number');
});

test('access log: a WebSocket-over-HTTP session and a refused handshake get their lines', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => ws.accept());
  const hf = await startTestHoldfast(t, [backend.url], { websocket: { mode: 'over-http' } });
  const client = await WsClient.open(t, `ws://127.0.0.1:${hf.port}/socket`);
  client.ws.send('hi');
  await client.next();
  client.ws.close(1000);
  const session = await within(hf.logs.waitFor({ msg: 'access', target: '/socket' }), 10_000, 'the session\'s access line');
  assert.equal(session.status, 101);
  assert.equal(session.websocket, 'over-http');

  const raw = await RawClient.connect(t, hf.port);
  raw.write('GET /old HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 8\r\n\r\n');
  const refused = await within(hf.logs.waitFor({ msg: 'access', target: '/old' }), 10_000, 'the refusal\'s access line');
  assert.equal(refused.status, 426);
  assert.equal(refused.code, 'HF_ERR_WS_VERSION');
});

test('access log: log.accessExcludePaths leaves those paths out, WebSockets included', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { log: { accessExcludePaths: ['/quiet'] } });
  const quiet = await WsClient.open(t, `ws://127.0.0.1:${hf.port}/quiet?x=1`);
  quiet.ws.close(1000);
  // The tunnel gone (both sides closed): its access line would have been written by now.
  await until(() => hf.upgrades.tunnels.size === 0, 'the quiet tunnel to end');
  const loud = await WsClient.open(t, `ws://127.0.0.1:${hf.port}/loud`);
  loud.ws.close(1000);
  await within(hf.logs.waitFor({ msg: 'access', target: '/loud' }), 10_000, 'the /loud access line');
  assert.deepEqual(hf.logs.lines.filter((l) => l.msg === 'access').map((l) => l.target), ['/loud']);
});
