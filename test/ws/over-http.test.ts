import assert from 'node:assert/strict';
import { mock, test, type TestContext } from 'node:test';
import { WebSocketMessageFormat } from '@fanoutio/grip';
import { WebSocket } from 'ws';
import { deadPort, startBackend, type RecordingBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { eventually } from '../helpers/until.js';
import { publisherFor, publishRaw } from '../hold/push-helpers.js';
import { E } from '../../src/errors.js';
import { decodeEvents, type WsEvent } from '../../src/ws/websocket-events.js';
import { WsClient, clientFrame, handshake, startRawOverHttpBackend, startWsOverHttpBackend, until } from './ws-helpers.js';

/** Events of every POST the backend received, in order. */
function eventsSeen(backend: RecordingBackend): WsEvent[][] {
  return backend.seen.map((r) => decodeEvents(r.body));
}

function types(backend: RecordingBackend): string[] {
  return eventsSeen(backend).flat().map((e) => e.type);
}

async function overHttp(t: TestContext, backend: RecordingBackend, websocket: Record<string, unknown> = {}): Promise<TestHoldfast> {
  return startTestHoldfast(t, [backend.url], { websocket: { overHttpPaths: ['/ws'], ...websocket } });
}

const url = (hf: TestHoldfast, path = '/ws/chat') => `ws://127.0.0.1:${hf.port}${path}`;

test('over-HTTP with serve-grip: accept, echo, subscribe, publish to the channel, close (code 0 becomes 1000)', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => {
    ws.accept();
    ws.subscribe('room');
  });
  const hf = await overHttp(t, backend);
  const client = await WsClient.open(t, url(hf));
  client.ws.send('hi');
  assert.equal(await client.nextText(), 'echo:hi');

  // The first POST: OPEN, with the protocol's headers and the handshake replayed.
  const open = backend.seen[0]!;
  assert.equal(open.method, 'POST');
  assert.equal(open.url, '/ws/chat');
  assert.equal(open.headers['content-type'], 'application/websocket-events');
  assert.equal(open.headers.accept, 'application/websocket-events');
  assert.equal(open.headers['sec-websocket-extensions'], 'grip');
  assert.match(String(open.headers['connection-id']), /^[0-9a-f-]{36}$/);
  assert.ok(open.headers['grip-sig'], 'signed, so serve-grip trusts it');
  assert.equal(open.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(open.headers.upgrade, undefined);
  assert.deepEqual(decodeEvents(open.body), [{ type: 'OPEN', content: null }]);
  assert.equal(backend.seen[1]!.headers['connection-id'], open.headers['connection-id'], 'one id per connection');

  await until(() => hf.holds.index.holders('room') === 1, 'the subscription');
  await publisherFor(hf).publishFormats('room', new WebSocketMessageFormat('published hello'));
  assert.equal(await client.nextText(), 'published hello');
  await publisherFor(hf).publishFormats('room', new WebSocketMessageFormat(Buffer.from([1, 2, 3])));
  assert.deepEqual(await client.next(), { data: Buffer.from([1, 2, 3]), isBinary: true });

  client.ws.close(1000, 'done');
  assert.equal((await client.closed()).code, 1000);
  await until(() => types(backend).includes('CLOSE'), 'the CLOSE event');
  const close = eventsSeen(backend).flat().find((e) => e.type === 'CLOSE')!;
  assert.equal(close.content!.readUInt16BE(0), 1000);
  assert.equal(close.content!.subarray(2).toString(), 'done');
  await until(() => hf.upgrades.sessions.size === 0 && hf.holds.heldCount === 0, 'the session to end');
});

test('over-HTTP: a backend close with js-grip default code 0 reaches the client as 1000, never a protocol error', async (t) => {
  const backend = await startWsOverHttpBackend(
    t,
    (ws) => ws.accept(),
    (ws, m) => (m === 'bye' ? ws.close() : ws.close(4321)),
  );
  const hf = await overHttp(t, backend);
  const zero = await WsClient.open(t, url(hf));
  zero.ws.send('bye');
  assert.equal((await zero.closed()).code, 1000);
  const custom = await WsClient.open(t, url(hf));
  custom.ws.send('other');
  assert.equal((await custom.closed()).code, 4321);
});

test('over-HTTP: a published close carries its code and reason; ping and pong items become frames', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => {
    ws.accept();
    ws.subscribe('ops');
  });
  const hf = await overHttp(t, backend);
  const client = await WsClient.open(t, url(hf));
  await until(() => hf.holds.index.holders('ops') === 1, 'the subscription');
  const pings: Buffer[] = [];
  client.ws.on('ping', (data: Buffer) => pings.push(data));
  await publishRaw(hf, { items: [{ channel: 'ops', formats: { 'ws-message': { type: 'ping', content: 'are you there' } } }] });
  await until(() => pings.length === 1, 'the ping');
  assert.equal(pings[0]!.toString(), 'are you there');
  await publishRaw(hf, { items: [{ channel: 'ops', formats: { 'ws-message': { action: 'close', code: 4100, reason: 'maintenance' } } }] });
  assert.deepEqual(await client.closed(), { code: 4100, reason: 'maintenance' });
});

test('over-HTTP: a rejection (non-200) is relayed as the answer to the handshake', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(403, { 'content-type': 'text/plain', 'x-reason': 'no-token' });
    res.end('token required\n');
  });
  const hf = await overHttp(t, backend);
  const client = await RawClient.connect(t, hf.port);
  client.write(handshake('/ws/chat'));
  const res = await client.readResponse();
  assert.equal(res.status, 403);
  assert.equal(res.headers['x-reason'], 'no-token');
  assert.equal(res.body.toString(), 'token required\n');
  await client.waitEnd();
});

test('over-HTTP: an answer to OPEN that does not start with OPEN, or is garbage, is a 502 to the handshake', async (t) => {
  for (const body of ['TEXT 2\r\nhi\r\n', 'OPEN\r\nTEXT ff\r\nshort\r\n', 'nonsense']) {
    const backend = await startBackend(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/websocket-events' });
      res.end(body);
    });
    const hf = await overHttp(t, backend);
    const client = await RawClient.connect(t, hf.port);
    client.write(handshake('/ws/chat'));
    const res = await client.readResponse();
    assert.equal(res.status, 502, JSON.stringify(body));
  }
});

test('over-HTTP: content-type parameters are accepted; Set-Meta-* comes back as Meta-*; m: prefix stripped', async (t) => {
  let posts = 0;
  const backend = await startBackend(t, (req, res, body) => {
    posts++;
    const events = decodeEvents(body);
    const headers: Record<string, string> = { 'content-type': 'application/websocket-events; charset=utf-8' };
    if (events[0]?.type === 'OPEN') {
      headers['set-meta-user'] = 'alice';
      headers['sec-websocket-extensions'] = 'grip';
      headers['set-cookie'] = 'seen=1';
      res.writeHead(200, headers);
      res.end('OPEN\r\n');
      return;
    }
    res.writeHead(200, headers);
    res.end(`TEXT ${Buffer.byteLength(`m:user=${String(req.headers['meta-user'])}`).toString(16)}\r\nm:user=${String(req.headers['meta-user'])}\r\n`);
  });
  const hf = await overHttp(t, backend);
  const client = await WsClient.open(t, url(hf));
  client.ws.send('who am i');
  assert.equal(await client.nextText(), 'user=alice');
  assert.equal(posts, 2);
});

test('over-HTTP: client messages keep their order; those that arrive while a POST is in flight are batched', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => ws.accept());
  const hf = await overHttp(t, backend);
  const client = await WsClient.open(t, url(hf));
  const n = 200;
  for (let i = 0; i < n; i++) client.ws.send(`m${i}`);
  const got: string[] = [];
  for (let i = 0; i < n; i++) got.push(await client.nextText());
  assert.deepEqual(got, Array.from({ length: n }, (_, i) => `echo:m${i}`));
  assert.ok(backend.seen.length < n, `${backend.seen.length} POSTs for ${n} messages: batched`);
  const inflight = backend.seen.map((r) => r.headers['connection-id']);
  assert.equal(new Set(inflight).size, 1);
});

test('over-HTTP: a backend that is down gets the client an HTTP 502 answer to the handshake', async (t) => {
  // Before the 101 there is no WebSocket to close: the handshake gets an HTTP answer, as for passthrough, and
  // the browser reports a failed connection. (After the 101 a dead backend closes the socket with 1011.)
  const hf = await startTestHoldfast(t, [`http://127.0.0.1:${await deadPort()}`], { websocket: { mode: 'over-http' } });
  const client = await RawClient.connect(t, hf.port);
  client.write(handshake('/any'));
  const res = await client.readResponse();
  assert.equal(res.status, 502);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_REFUSED');
});

/** A backend that accepts the OPEN and gives every later POST `later`'s answer. */
async function backendFailingAfterOpen(t: TestContext, later: { status: number; type: string; body: string }): Promise<RecordingBackend> {
  let posts = 0;
  return startBackend(t, (_req, res) => {
    posts++;
    if (posts === 1) {
      res.writeHead(200, { 'content-type': 'application/websocket-events' });
      res.end('OPEN\r\n');
      return;
    }
    res.writeHead(later.status, { 'content-type': later.type });
    res.end(later.body);
  });
}

// A failure after the 101 ends the socket with its entry's close code (errors.ts) and is counted under its
// code, as a failed POST is; each case names the code the failure must be counted under.
for (const { name, later, code } of [
  { name: 'answers an error status', later: { status: 500, type: 'text/plain', body: 'boom' }, code: E.WS_EVENTS_REFUSED },
  { name: 'sends a second OPEN', later: { status: 200, type: 'application/websocket-events', body: 'OPEN\r\n' }, code: E.WS_EVENTS },
]) {
  test(`over-HTTP: a backend that ${name} after the open closes the client with ${code.code}'s close code`, async (t) => {
    const backend = await backendFailingAfterOpen(t, later);
    const hf = await overHttp(t, backend);
    const client = await WsClient.open(t, url(hf));
    client.ws.send('anything');
    assert.equal((await client.closed()).code, code.wsCloseCode);
    await until(() => hf.upgrades.sessions.size === 0, 'the session to end');
    assert.equal(await metricValue(hf, 'holdfast_upstream_errors_total', { code: code.code }), 1);
    assert.deepEqual(types(backend), ['OPEN', 'TEXT'], 'nothing more is sent to a backend that broke the session');
  });
}

test('over-HTTP: a POST whose answer breaks off mid-body reached the backend and is never sent again (issue 12)', async (t) => {
  // The backend answers the OPEN, then answers the next POST's head and part of its body and resets. That
  // POST arrived: resending it would deliver the client's message twice. The client is closed with 1011.
  const backend = await startRawOverHttpBackend(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/websocket-events\r\ncontent-length: 100\r\n\r\nTEXT 5\r\nhe', () =>
      socket.resetAndDestroy(),
    );
  });
  const hf = await startTestHoldfast(t, [backend.url], { websocket: { overHttpPaths: ['/ws'] } });
  const client = await WsClient.open(t, url(hf));
  client.ws.send('once only');
  // Either the close (the right build) or a resent POST (the wrong one, after Pushpin's 1-2 s backoff).
  await eventually(() => client.closeCode !== undefined || backend.posts > 2, 10_000, 'the close, or a resent POST');
  assert.equal(client.closeCode, 1011);
  await eventually(() => hf.upgrades.sessions.size === 0, 5_000, 'the session to end');
  assert.equal(backend.posts, 2, 'the OPEN and the one message, each sent once');
});

test('over-HTTP: a message over websocket.maxMessageBytes is closed with 1009 and never forwarded', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => ws.accept());
  const hf = await overHttp(t, backend, { maxMessageBytes: 1024 });
  const client = await WsClient.open(t, url(hf));
  client.ws.send('x'.repeat(1025));
  assert.equal((await client.closed()).code, 1009);
  await until(() => hf.upgrades.sessions.size === 0, 'the session to end');
  assert.ok(!types(backend).includes('TEXT'), `forwarded: ${types(backend).join(',')}`);
  assert.ok(types(backend).includes('DISCONNECT'), 'the backend heard the connection was cut');
  assert.equal(await metricValue(hf, 'holdfast_ws_closed_total', { code: '1009' }), 1);
});

test('over-HTTP: malformed frames (unmasked, bad opcode, bad UTF-8) close with 1002/1007 and forward nothing', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => ws.accept());
  const hf = await overHttp(t, backend);
  const unmasked = Buffer.from([0x81, 0x02, 0x68, 0x69]); // a text frame "hi" without the mask bit
  const cases: [string, Buffer, number][] = [
    ['unmasked', unmasked, 1002],
    ['reserved opcode', clientFrame(0x3, 'x'), 1002],
    ['rsv bits without an extension', clientFrame(0x1, 'x', { rsv: 4 }), 1002],
    ['invalid UTF-8 text', clientFrame(0x1, Buffer.from([0xc3, 0x28])), 1007],
  ];
  for (const [name, frame, code] of cases) {
    const client = await RawClient.connect(t, hf.port);
    client.write(handshake('/ws/chat'));
    await client.readResponse({ head: true });
    client.write(frame);
    await client.waitEnd();
    // The server's close frame: FIN + opcode 8, length, 2-byte code.
    const bytes = client.pending;
    const at = bytes.indexOf(Buffer.from([0x88]));
    assert.ok(at >= 0, `${name}: a close frame`);
    assert.equal(bytes.readUInt16BE(at + 2), code, name);
  }
  await until(() => hf.upgrades.sessions.size === 0, 'the sessions to end');
  assert.ok(!types(backend).includes('TEXT'));
});

test('liveness: a client that stops answering pings is closed within the deadline (fake clock)', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => ws.accept());
  const hf = await overHttp(t, backend, { pingIntervalMs: 10_000, pongTimeoutMs: 5_000 });
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
  const silent = await WsClient.open(t, url(hf), [], { autoPong: false });
  const answering = await WsClient.open(t, url(hf));
  const pings: number[] = [];
  silent.ws.on('ping', () => pings.push(Date.now()));
  // The wheel runs inside tick(), so what Holdfast decides at a fake time is seen at once on its side of the
  // socket; the client would only hear of it after real I/O, which one turn of the loop does not prove.
  const [session, answeringSession] = [...hf.upgrades.sessions];
  const serverPings = t.mock.method(session!.ws!, 'ping');
  const pongsHeard = t.mock.method(answeringSession!, 'onClientPong');
  mock.timers.tick(9_000);
  assert.equal(serverPings.mock.callCount(), 0, 'no ping before the interval');
  mock.timers.tick(1_250);
  assert.equal(serverPings.mock.callCount(), 1, 'the ping at the interval');
  await until(() => pings.length === 1, 'the ping');
  // The answering client's pong must be in before its deadline passes on the fake clock.
  await until(() => pongsHeard.mock.callCount() === 1, 'the answering client\'s pong at Holdfast');
  mock.timers.tick(4_000);
  assert.equal((await metricValue(hf, 'holdfast_ws_dead_peers_total', { mode: 'over-http' })) ?? 0, 0, 'still inside the pong deadline');
  assert.equal(session!.state, 'open');
  mock.timers.tick(1_250);
  assert.equal((await silent.closed()).code, 1006, 'cut, not closed politely: a dead peer would not answer');
  assert.equal(answering.ws.readyState, WebSocket.OPEN, 'the client that answers pings stays');
  assert.equal(await metricValue(hf, 'holdfast_ws_dead_peers_total', { mode: 'over-http' }), 1);
  await until(() => types(backend).includes('DISCONNECT'), 'the backend told');
});

test('drain: terminated sockets tell the backend (DISCONNECT) and close with 1001', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => ws.accept());
  const hf = await overHttp(t, backend);
  const client = await WsClient.open(t, url(hf));
  client.ws.send('before');
  assert.equal(await client.nextText(), 'echo:before');
  const drained = hf.drain();
  assert.equal((await client.closed()).code, 1001);
  await drained;
  const all = types(backend);
  assert.equal(all[all.length - 1], 'DISCONNECT');
  assert.equal(await metricValue(hf, 'holdfast_ws_closed_total', { code: '1001' }), 1);
});

test('over-HTTP: Keep-Alive-Interval makes Holdfast poll the backend, whose answer reaches the client (fake clock)', async (t) => {
  let polls = 0;
  const backend = await startBackend(t, (_req, res, body) => {
    const events = decodeEvents(body);
    if (events[0]?.type === 'OPEN') {
      res.writeHead(200, { 'content-type': 'application/websocket-events', 'keep-alive-interval': '20' });
      res.end('OPEN\r\n');
      return;
    }
    if (events.length === 0) polls++;
    res.writeHead(200, { 'content-type': 'application/websocket-events', 'keep-alive-interval': '20' });
    res.end(events.length === 0 ? 'TEXT 4\r\ntick\r\n' : '');
  });
  const hf = await overHttp(t, backend, { pingIntervalMs: 0 });
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
  const client = await WsClient.open(t, url(hf));
  await until(() => hf.upgrades.wheel.size === 1, 'the keep-alive armed');
  // A poll starts inside tick() (the wheel runs there): counted on Holdfast's side at once, where the backend
  // would only see it after real I/O.
  const sends = t.mock.method(hf.upgrades.sender, 'request');
  mock.timers.tick(19_000);
  assert.equal(sends.mock.callCount(), 0, 'no poll before Keep-Alive-Interval');
  mock.timers.tick(1_250);
  assert.equal(sends.mock.callCount(), 1, 'the poll at Keep-Alive-Interval');
  assert.equal(await client.nextText(), 'tick');
  assert.equal(polls, 1);
});

test('GRIP over WebSocket: unsubscribe, filters with set-meta (skip-self), detach keeps the client subscribed', async (t) => {
  const backend = await startWsOverHttpBackend(
    t,
    (ws) => {
      ws.accept();
      ws.sendControl(JSON.stringify({ type: 'set-meta', name: 'user', value: 'alice' }));
      ws.sendControl(JSON.stringify({ type: 'subscribe', channel: 'news', filters: ['skip-self'] }));
      ws.subscribe('sports');
    },
    (ws, m) => {
      if (m === 'unsub') ws.unsubscribe('sports');
      else if (m === 'detach') ws.detach();
      ws.send(`ok:${m}`);
    },
  );
  const hf = await overHttp(t, backend);
  const client = await WsClient.open(t, url(hf));
  await until(() => hf.holds.index.holders('news') === 1 && hf.holds.index.holders('sports') === 1, 'two subscriptions');
  await publishRaw(hf, { items: [{ channel: 'news', meta: { sender: 'alice' }, formats: { 'ws-message': { content: 'own post' } } }] });
  await publishRaw(hf, { items: [{ channel: 'news', meta: { sender: 'bob' }, formats: { 'ws-message': { content: 'from bob' } } }] });
  assert.equal(await client.nextText(), 'from bob', "skip-self dropped alice's own post");
  client.ws.send('unsub');
  assert.equal(await client.nextText(), 'ok:unsub');
  assert.equal(hf.holds.index.holders('sports'), 0);
  client.ws.send('detach');
  assert.equal(await client.nextText(), 'ok:detach');
  const posts = backend.seen.length;
  client.ws.send('nobody listens');
  await publishRaw(hf, { items: [{ channel: 'news', formats: { 'ws-message': { content: 'still here' } } }] });
  assert.equal(await client.nextText(), 'still here');
  assert.equal(backend.seen.length, posts, 'detached: the backend hears nothing more');
});

test('over-HTTP: a backend that falls behind closes the client with 1008 once websocket.maxQueuedBytes is queued', async (t) => {
  const backend = await startBackend(t, (_req, res, body) => {
    if (decodeEvents(body)[0]?.type !== 'OPEN') return; // every later POST hangs: the backend is stuck
    res.writeHead(200, { 'content-type': 'application/websocket-events' });
    res.end('OPEN\r\n');
  });
  const hf = await overHttp(t, backend, { maxQueuedBytes: 1024 });
  const client = await WsClient.open(t, url(hf));
  client.ws.send('a'.repeat(600)); // in flight
  await until(() => backend.seen.length === 2, 'the second POST');
  client.ws.send('b'.repeat(600)); // queued
  client.ws.send('c'.repeat(600)); // over the limit
  assert.equal((await client.closed()).code, 1008);
  assert.equal(await metricValue(hf, 'holdfast_ws_closed_total', { code: '1008' }), 1);
});
