// HTTP/2 for clients over the TLS listener, with real node:http2 clients and HTTP/1.1 backends.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { validateConfig } from '../../src/config/load.js';
import { connect, createServer, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { H2Request, H2Response } from '../../src/http/h2-compat.js';
import { mock, test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import type { ProxyExchange } from '../../src/proxy/exchange.js';
import { startBackend } from '../helpers/backend.js';
import { certDir, makeCert } from '../helpers/certs.js';
import { h2Connect, h2Request, H2_ERROR, RawH2 } from '../helpers/h2.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { eventually, until, within } from '../helpers/until.js';
import { heldCount, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';

async function startH2(t: TestContext, backends: string[], overrides: Partial<ConfigInput> = {}) {
  const cert = makeCert(certDir(t), 'localhost');
  const hf = await startTestHoldfast(t, backends, { ...overrides, tls: { listen: '127.0.0.1:0', certificates: [cert] } });
  return { hf, origin: `https://localhost:${hf.tlsAddress!.port}`, ca: readFileSync(cert.cert, 'utf8') };
}

/** `/stream/news` holds on channel `news` (SSE with `?sse`); any other path is a plain answer. */
async function holdBackend(t: TestContext) {
  return startGripBackend(t, (req, res) => {
    if (!req.url!.startsWith('/stream/')) {
      res.end(`plain ${req.url}`);
      return;
    }
    const instruct = res.grip.startInstruct();
    instruct.addChannel(req.url!.split('/')[2]!.split('?')[0]!);
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': req.url!.endsWith('?sse') ? 'text/event-stream' : 'text/plain' });
    res.end(req.url!.endsWith('?sse') ? ': open\n\n' : 'open;');
  });
}

interface OpenStream {
  stream: ClientHttp2Stream;
  status: number;
  text: string;
  closed: boolean;
}

function openStream(session: ClientHttp2Session, path: string): OpenStream {
  const stream = session.request({ ':path': path });
  const out: OpenStream = { stream, status: 0, text: '', closed: false };
  stream.setEncoding('utf8');
  stream.on('response', (h) => (out.status = Number(h[':status'])));
  stream.on('data', (chunk: string) => (out.text += chunk));
  stream.on('close', () => (out.closed = true));
  stream.on('error', () => {}); // a reset stream reports RST_STREAM here; the tests read rstCode
  return out;
}

test('h2: ALPN h2; proxied GET and POST with bodies on one connection go to the pooled HTTP/1.1 backend', async (t) => {
  const backend = await startBackend(t, (req, res, body) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'keep-alive': 'timeout=5', 'x-kind': 'echo' });
    res.end(`${req.method} ${req.url} ${body.toString()}`);
  });
  const { hf, origin, ca } = await startH2(t, [backend.url]);
  const session = await h2Connect(t, origin, { ca });
  assert.equal(session.alpnProtocol, 'h2');
  const get = await h2Request(session, { ':path': '/one?x=1', cookie: ['c1=1', 'c2=2'] });
  const post = await h2Request(session, { ':method': 'POST', ':path': '/two', 'content-type': 'text/plain' }, 'hello, backend');
  const unsized = await h2Request(session, { ':method': 'PUT', ':path': '/three' }, Buffer.alloc(100_000, 'x'));
  assert.equal(get.status, 200);
  assert.equal(get.body, 'GET /one?x=1 ');
  assert.equal(post.body, 'POST /two hello, backend');
  assert.equal(unsized.body, `PUT /three ${'x'.repeat(100_000)}`);
  assert.deepEqual(get.headers['set-cookie'], ['a=1', 'b=2'], 'each Set-Cookie kept as its own field');
  assert.equal(get.headers['x-kind'], 'echo');
  for (const name of ['connection', 'keep-alive', 'transfer-encoding']) assert.equal(get.headers[name], undefined, `${name} never on a stream`);

  const seen = backend.seen[0]!;
  assert.equal(seen.httpVersion, '1.1');
  assert.equal(seen.headers.host, `localhost:${hf.tlsAddress!.port}`, ':authority becomes Host');
  assert.equal(seen.headers.cookie, 'c1=1; c2=2', 'cookie crumbs joined (RFC 9113 §8.2.3)');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.ok(!seen.rawHeaders.some((name) => name.startsWith(':')), 'no pseudo-header field reaches the backend');
  assert.equal(backend.seen[2]!.headers['transfer-encoding'], 'chunked', 'a body without a length goes up chunked');
  assert.equal(backend.connections, 1, 'the backend connection is pooled and reused');
  assert.equal(await metricValue(hf, 'holdfast_h2_connections_open'), 1);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_open'), 1, 'one connection however many streams');
  assert.equal(await metricValue(hf, 'holdfast_requests_total'), 3);
});

test('h2: many held streams on one connection, each with its own lifetime, all reached by a publish', async (t) => {
  const backend = await holdBackend(t);
  const { hf, origin, ca } = await startH2(t, [backend.url]);
  const session = await h2Connect(t, origin, { ca });
  const streams = Array.from({ length: 10 }, (_, i) => openStream(session, i % 2 === 0 ? '/stream/news?sse' : '/stream/news'));
  await heldCount(hf, 10);
  assert.equal(await metricValue(hf, 'holdfast_h2_streams_open'), 10);
  assert.equal((await publishRaw(hf, { items: [streamItem('news', 'data: one\n\n')] })).status, 200);
  await until(() => streams.every((s) => s.text.includes('data: one')), 'every stream to get the publish');
  assert.ok(streams.every((s) => s.status === 200));

  // One stream leaves (RST_STREAM CANCEL from the client): only it is released.
  streams[3]!.stream.close();
  await until(() => hf.holds.heldCount === 9, 'the cancelled stream to be released');
  assert.equal((await publishRaw(hf, { items: [streamItem('news', 'data: two\n\n')] })).status, 200);
  await until(() => streams.filter((s, i) => i !== 3 && s.text.includes('data: two')).length === 9, 'the others to get the next publish');
  assert.ok(!streams[3]!.text.includes('two'));
  assert.equal(session.closed, false);
  assert.equal(await metricValue(hf, 'holdfast_h2_streams_open'), 9);

  // A plain request beside the held streams.
  const plain = await h2Request(session, { ':path': '/plain' });
  assert.equal(plain.body, 'plain /plain');
  assert.equal(hf.holds.heldCount, 9);
});

test('h2: a held stream lets go of what the compatibility objects keep for a request and response in progress, and still streams and ends cleanly', async (t) => {
  const backend = await holdBackend(t);
  const { hf, origin, ca } = await startH2(t, [backend.url]);
  const session = await h2Connect(t, origin, { ca });
  const stream = session.request({ ':path': '/stream/news?sse', 'x-pad': 'p'.repeat(2_000) });
  const held = { text: '', ended: false, rstCode: -1 };
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (held.text += chunk));
  stream.on('end', () => (held.ended = true));
  stream.on('close', () => (held.rstCode = stream.rstCode));
  await heldCount(hf, 1);
  assert.equal(backend.seen[0]!.headers['x-pad'], 'p'.repeat(2_000), 'the backend had the field');

  const [client] = hf.holds.index.snapshot(['news']);
  const res = client!.res as unknown as H2Response;
  const req = res.req;
  assert.ok(res instanceof H2Response);
  assert.equal(req.headers['x-pad'], undefined, "the request's fields are let go of once held");
  assert.equal(req.rawHeaders.includes('x-pad'), true, 'the HTTP/1.1 field list stays, for GRIP links (h2-links.test.ts)');
  assert.equal(req.method, 'GET', 'the pseudo-header fields the getters read stay');
  assert.equal(req.url, '/stream/news?sse');
  assert.equal(res.getHeader('content-type'), 'text/event-stream', "the response's fields are node:http2's sent copy");
  assert.equal(res.stream.listenerCount('timeout'), 0, 'no per-stream timeout closures');
  assert.equal(res.stream.listenerCount('wantTrailers'), 0);
  assert.equal(res.stream.listenerCount('trailers'), 0);
  assert.throws(() => res.addTrailers({ 'x-late': '1' }), TypeError, 'a trailer set on a held response fails loudly');

  assert.equal((await publishRaw(hf, { items: [streamItem('news', 'data: one\n\n')] })).status, 200);
  await until(() => held.text.includes('data: one'), 'the publish to reach the held stream');
  assert.equal((await publishRaw(hf, { items: [{ channel: 'news', formats: { 'http-stream': { action: 'close' } } }] })).status, 200);
  await until(() => held.rstCode !== -1, 'the held stream to close');
  assert.equal(held.ended, true, 'ended by END_STREAM (the empty trailing HEADERS frame), not reset');
  assert.equal(held.rstCode, H2_ERROR.NO_ERROR);
  assert.equal(hf.holds.heldCount, 0);
  assert.equal(session.closed, false);
});

/** Two held streams on one connection (channels `slow` and `fast`); the client stops reading `slow`. */
async function slowAndFast(t: TestContext, overrides: Partial<ConfigInput>) {
  const backend = await holdBackend(t);
  const { hf, origin, ca } = await startH2(t, [backend.url], overrides);
  // A connection window far above the stream windows: what the slow stream withholds is its own window only.
  const session = await h2Connect(t, origin, { ca });
  session.setLocalWindowSize(32 * 1024 * 1024);
  const slow = openStream(session, '/stream/slow');
  const fast = openStream(session, '/stream/fast');
  await heldCount(hf, 2);
  await until(() => slow.text === 'open;', 'the slow stream to open');
  slow.stream.pause(); // no more reads: no WINDOW_UPDATE for this stream
  return { hf, session, slow, fast };
}

test('h2: a stream whose client stops reading does not stall its siblings, and is dropped by the byte bound alone', async (t) => {
  const { hf, session, slow, fast } = await slowAndFast(t, { push: { maxQueuedBytesPerConnection: 256 * 1024 } });

  const chunk = 'x'.repeat(32 * 1024);
  // 160 KiB: the stream's 64 KiB window fills, the rest queues on the server under the 256 KiB bound.
  for (let i = 0; i < 5; i++) assert.equal((await publishRaw(hf, { items: [streamItem('slow', chunk)] })).status, 200);
  assert.equal((await publishRaw(hf, { items: [streamItem('fast', 'sibling;')] })).status, 200);
  await until(() => fast.text.includes('sibling;'), 'the sibling to get its publish');
  assert.equal(slow.closed, false, 'the slow stream is still held');
  assert.equal(hf.holds.heldCount, 2);

  // Past the bound: that stream alone is reset (CANCEL); the connection and the sibling go on.
  for (let i = 0; i < 6; i++) await publishRaw(hf, { items: [streamItem('slow', chunk)] });
  await until(() => slow.closed, 'the slow stream to be reset');
  assert.equal(slow.stream.rstCode, H2_ERROR.CANCEL);
  assert.equal(await metricValue(hf, 'holdfast_drops_total', { reason: 'slow_consumer' }), 1);
  assert.equal((await publishRaw(hf, { items: [streamItem('fast', 'still;')] })).status, 200);
  await until(() => fast.text.includes('still;'), 'the sibling to go on');
  assert.equal(session.closed, false);
  assert.equal((await h2Request(session, { ':path': '/plain' })).status, 200);
});

test('h2: a stream whose queue stops draining is cut at timeouts.sendStallMs, its siblings are not', async (t) => {
  const { hf, slow, fast } = await slowAndFast(t, { timeouts: { sendStallMs: 200 } });
  for (let i = 0; i < 3; i++) await publishRaw(hf, { items: [streamItem('slow', 'y'.repeat(32 * 1024))] });
  await eventually(() => slow.closed, 10_000, 'the stalled stream to be cut');
  assert.equal(slow.stream.rstCode, H2_ERROR.CANCEL);
  assert.equal(await metricValue(hf, 'holdfast_drops_total', { reason: 'drain_timeout' }), 1);
  await publishRaw(hf, { items: [streamItem('fast', 'alive;')] });
  await until(() => fast.text.includes('alive;'), 'the sibling to get its publish');
  assert.equal(fast.closed, false);
});

test('h2: connections count against limits.maxConnections; streams past limits.maxConcurrentStreams wait their turn', async (t) => {
  const backend = await holdBackend(t);
  const { hf, origin, ca } = await startH2(t, [backend.url], { limits: { maxConnections: 1, maxConcurrentStreams: 3 } });
  const session = await h2Connect(t, origin, { ca });
  assert.equal(session.remoteSettings.maxConcurrentStreams, 3);
  assert.equal(session.remoteSettings.enableConnectProtocol, true);
  const held = Array.from({ length: 4 }, () => openStream(session, '/stream/news'));
  await heldCount(hf, 3);
  // The client keeps the fourth until a stream ends (nghttp2 queues it): the server never sees four at once.
  held[0]!.stream.close();
  await heldCount(hf, 3);
  await until(() => held[3]!.text === 'open;', 'the fourth stream once one closed');
  assert.equal(backend.seen.length, 4);

  // A second connection: over the limit, its request is answered 503 and it is sent GOAWAY.
  const second = await h2Connect(t, origin, { ca });
  const refused = await h2Request(second, { ':path': '/stream/news' });
  assert.equal(refused.status, 503);
  assert.equal(refused.headers['x-holdfast-error'], 'HF_ERR_CONNECTION_LIMIT');
  await until(() => second.closed || second.destroyed, 'GOAWAY to close the refused connection');
  assert.equal(backend.seen.length, 4, 'nothing of the refused connection was forwarded');
});

test('h2: an idle connection is closed with GOAWAY after keepAliveIdleMs; one with a held stream is not', async (t) => {
  const backend = await holdBackend(t);
  const { hf, origin, ca } = await startH2(t, [backend.url], { timeouts: { keepAliveIdleMs: 300 } });
  const idle = await h2Connect(t, origin, { ca });
  const goaway = new Promise<number>((resolve) => idle.once('goaway', (code: number) => resolve(code)));
  assert.equal((await h2Request(idle, { ':path': '/plain' })).status, 200);
  const busy = await h2Connect(t, origin, { ca });
  const held = openStream(busy, '/stream/news');
  await heldCount(hf, 1);
  await until(() => held.text === 'open;', 'the held stream to open');
  assert.equal(await goaway, H2_ERROR.NO_ERROR);
  await eventually(() => idle.closed || idle.destroyed, 10_000, 'the idle connection to close');
  assert.equal(busy.closed, false, 'the connection with a held stream stays');
  await publishRaw(hf, { items: [streamItem('news', 'later;')] });
  await until(() => held.text.includes('later;'), 'the held stream to go on');
});

test('h2: drain sends GOAWAY and lets a proxied stream in progress finish', async (t) => {
  let answer!: () => void;
  const gate = new Promise<void>((resolve) => (answer = resolve));
  const backend = await startBackend(t, async (_req, res) => {
    await gate;
    res.end('finished');
  });
  const { hf, origin, ca } = await startH2(t, [backend.url]);
  const session = await h2Connect(t, origin, { ca });
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const pending = h2Request(session, { ':path': '/slow' });
  await until(() => backend.seen.length === 1, 'the request to reach the backend');
  const drained = hf.drain();
  await goaway;
  answer();
  const res = await pending;
  assert.equal(res.status, 200);
  assert.equal(res.body, 'finished');
  assert.equal(await drained, 0, 'nothing was cut');
});

test('h2: SNI picks the certificate; a reload swaps it for new connections while streams on an old one stay', async (t) => {
  const dir = certDir(t);
  const other = makeCert(dir, 'other.test');
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  const first = makeCert(join(dir, 'v1'), 'localhost');
  const second = makeCert(join(dir, 'v2'), 'localhost');
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const backend = await holdBackend(t);
  const config = { listen: '127.0.0.1:0', control: '127.0.0.1:0', backends: [backend.url], tls: { listen: '127.0.0.1:0', certificates: [live, other] } };
  const hf = await startTestHoldfast(t, [backend.url], { tls: config.tls }, { loadConfig: () => validateConfig(config) });
  const origin = `https://127.0.0.1:${hf.tlsAddress!.port}`;
  const peerCn = (session: ClientHttp2Session) => (session.socket as TLSSocket).getPeerCertificate().subject.CN;
  const fingerprint = (session: ClientHttp2Session) => (session.socket as TLSSocket).getPeerCertificate().fingerprint256;

  const named = await h2Connect(t, origin, { servername: 'other.test' });
  assert.equal(peerCn(named), 'other.test');
  assert.equal(named.alpnProtocol, 'h2');
  const before = await h2Connect(t, origin, { ca: readFileSync(first.cert, 'utf8'), servername: 'localhost' });
  const held = openStream(before, '/stream/news?sse');
  await heldCount(hf, 1);

  copyFileSync(second.cert, live.cert);
  copyFileSync(second.key, live.key);
  hf.reload();
  const after = await h2Connect(t, origin, { ca: readFileSync(second.cert, 'utf8'), servername: 'localhost' });
  assert.notEqual(fingerprint(after), fingerprint(before), 'a new connection gets the new certificate');
  assert.equal((await h2Request(after, { ':path': '/plain' })).body, 'plain /plain');
  await publishRaw(hf, { items: [streamItem('news', 'data: still here\n\n')] });
  await until(() => held.text.includes('still here'), 'the stream opened before the reload to go on');
  assert.equal(before.closed, false);
});

test('h2: a long-poll hold answered by a publish; Expect: 100-continue; limits.maxRequestsPerConnection ends with GOAWAY', async (t) => {
  const backend = await startGripBackend(t, (req, res, body) => {
    if (req.url === '/poll') {
      const instruct = res.grip.startInstruct();
      instruct.addChannel('poll');
      instruct.setHoldLongPoll(30);
      res.end('timed out');
    } else res.end(`${req.method} ${req.url} ${body.length}`);
  });
  const { hf, origin, ca } = await startH2(t, [backend.url], { limits: { maxRequestsPerConnection: 4 } });
  const session = await h2Connect(t, origin, { ca });
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const poll = h2Request(session, { ':path': '/poll' });
  await heldCount(hf, 1);
  await publishRaw(hf, { items: [{ channel: 'poll', formats: { 'http-response': { code: 201, reason: 'Made', headers: { 'x-from': 'publish' }, body: 'published answer' } } }] });
  const answer = await poll;
  assert.equal(answer.status, 201);
  assert.equal(answer.headers['x-from'], 'publish');
  assert.equal(answer.body, 'published answer');

  // The backend's 100 reaches the client before it sends its body.
  const upload = session.request({ ':method': 'PUT', ':path': '/upload', expect: '100-continue' }, { endStream: false });
  await within(new Promise<void>((resolve) => upload.once('continue', () => resolve())), 10_000, "the backend's 100");
  upload.end(Buffer.alloc(1000, 'u'));
  let uploaded = '';
  upload.setEncoding('utf8');
  upload.on('data', (c: string) => (uploaded += c));
  await within(new Promise<void>((resolve) => upload.once('end', () => resolve())), 10_000, 'the upload answer to end');
  assert.equal(uploaded, 'PUT /upload 1000');

  assert.equal((await h2Request(session, { ':path': '/three' })).status, 200);
  assert.equal((await h2Request(session, { ':path': '/four' })).body, 'GET /four 0', 'the last stream allowed is served');
  await goaway;
  await until(() => session.closed || session.destroyed, 'the connection to close');
});

test('h2: an upload that stops is answered 408 at requestBodyStallMs while a sibling upload keeps the connection busy', async (t) => {
  // The body-stall watch sweeps on setInterval and reads Date.now(): both are faked and moved a sweep (1 s)
  // at a time, with the verdict read right after each sweep (a cut ends the response synchronously). The
  // sockets, node:http2 and the backend stay real.
  const STALL_MS = 8_000;
  const SWEEP_MS = 1_000;
  const backend = await startBackend(t, (req, res, body) => {
    res.end(`${req.url} ${body.length}`);
  });
  const { hf, origin, ca } = await startH2(t, [backend.url], { timeouts: { requestBodyStallMs: STALL_MS } });
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
  const session = await h2Connect(t, origin, { ca });
  const started = (path: string): ProxyExchange => {
    const exchange = [...hf.edge.registry.connections()][0]?.lastExchange;
    if (exchange?.req.url !== path) throw new Error(`${path} is not the connection's last exchange`);
    return exchange;
  };
  const isStarted = (path: string) => [...hf.edge.registry.connections()][0]?.lastExchange?.req.url === path;
  const stalled = session.request({ ':method': 'POST', ':path': '/stalled' }, { endStream: false });
  stalled.write('first bytes, then nothing');
  let stalledStatus = 0;
  stalled.on('response', (h) => (stalledStatus = Number(h[':status'])));
  stalled.resume();
  await until(() => isStarted('/stalled'), 'the stalled upload to start');
  const stalledExchange = started('/stalled');
  const busy = session.request({ ':method': 'POST', ':path': '/busy' }, { endStream: false });
  busy.resume();
  await until(() => isStarted('/busy'), 'the sibling upload to start');
  const busyRequest = started('/busy').req;
  assert.ok(busyRequest instanceof H2Request, 'an HTTP/2 request counts its own body bytes');
  // One sibling byte before every sweep, read by Holdfast before the sweep runs: the connection is never
  // quiet, only the stalled stream is.
  const sweep = async () => {
    const before = busyRequest.bodyBytesRead;
    busy.write('x');
    await until(() => busyRequest.bodyBytesRead > before, 'the sibling byte to be read');
    mock.timers.tick(SWEEP_MS);
  };
  // Whether the watch counts from the upload's start or its first sweep, two sweeps short is not a stall.
  for (let passed = 0; passed < STALL_MS - 2 * SWEEP_MS; passed += SWEEP_MS) await sweep();
  assert.equal(stalledExchange.res.writableEnded, false, 'not answered before requestBodyStallMs');
  for (let sweeps = 0; sweeps < 3 && !stalledExchange.res.writableEnded; sweeps++) await sweep();
  assert.equal(stalledExchange.res.writableEnded, true, 'answered within a sweep of requestBodyStallMs');
  await until(() => stalledStatus !== 0, 'the stalled upload to be answered');
  assert.equal(stalledStatus, 408);
  assert.equal(await metricValue(hf, 'holdfast_client_errors_total', { code: 'HF_ERR_BODY_TIMEOUT' }), 1);
  busy.end();
  let busyText = '';
  busy.setEncoding('utf8');
  busy.on('data', (c: string) => (busyText += c));
  await within(new Promise<void>((resolve) => busy.once('end', () => resolve())), 10_000, 'the sibling answer to end');
  assert.match(busyText, /^\/busy \d+$/, 'the sibling upload completes');
  assert.equal(session.closed, false);
});

test('h2: a client that leaves with streams queued for a full backend: the queued ones are never sent, and the proxy serves on', async (t) => {
  // One backend connection: the first stream holds it (its answer waits), the next two queue in the group.
  const waiting: ServerResponse[] = [];
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/slow') waiting.push(res);
    else res.end(`answer ${req.url}`);
  });
  t.after(() => {
    for (const res of waiting) res.destroy();
  });
  const { hf, origin, ca } = await startH2(t, [backend.url], { upstream: { maxConnectionsPerBackend: 1 } });
  // A raw client, so the connection drops with no RST_STREAM first: the server tears down every stream at
  // once, before any of their close events run, and freeing the first one's backend slot dequeues a sibling
  // whose stream (and session) is already gone.
  const raw = await RawH2.connect(t, hf.tlsAddress!.port, true);
  for (const [id, path] of [[1, '/slow'], [3, '/queued-1'], [5, '/queued-2']] as const) {
    raw.headers(id, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', path]]);
  }
  await eventually(async () => backend.seen.length === 1 && (await metricValue(hf, 'holdfast_queue_length')) === 2, 10_000, 'one stream at the backend, two queued');
  raw.socket.destroy();
  await eventually(async () => (await metricValue(hf, 'holdfast_queue_length')) === 0 && hf.edge.h2.size === 0, 10_000, 'the queue emptied and the connection gone');

  const again = await h2Connect(t, origin, { ca });
  const answer = await h2Request(again, { ':path': '/after' });
  assert.equal(answer.status, 200);
  assert.equal(answer.body, 'answer /after');
  assert.deepEqual(backend.seen.map((s) => s.url), ['/slow', '/after'], 'nothing of a stream already gone was forwarded');
});

test('h2: a request whose stream is gone still answers req.socket (the connection), as HTTP/1 does', async (t) => {
  const seen: H2Request[] = [];
  const server = createServer({ Http2ServerRequest: H2Request, Http2ServerResponse: H2Response }, (req) => {
    seen.push(req);
    req.stream.close();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const client = connect(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  t.after(() => client.destroy());
  const stream = client.request({ ':path': '/' });
  stream.on('error', () => undefined); // the server closed it; that is the point
  await eventually(() => seen.length === 1 && seen[0]!.stream.destroyed, 5_000, 'the stream to be gone');
  const req = seen[0]!;
  assert.equal(req.stream.session, undefined, "Node has let go of the stream's session");
  assert.equal(req.socket, req.connectionSocket, 'the connection socket, not a throw');
  assert.equal(typeof req.socket.remoteAddress, 'string');
});
