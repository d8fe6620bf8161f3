import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { startBackend, type RecordingBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { until } from '../helpers/until.js';

/** A backend that holds every `/hold` request until `release()`, and says when `n` of them have arrived. */
async function holdingBackend(t: TestContext): Promise<{
  backend: RecordingBackend;
  arrived: (n: number) => Promise<void>;
  release: () => void;
}> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held = 0;
  let waiters: { n: number; resolve: () => void }[] = [];
  const backend = await startBackend(t, async (req, res) => {
    if (req.url === '/hold') {
      held++;
      waiters = waiters.filter((w) => (held >= w.n ? (w.resolve(), false) : true));
      await released;
    }
    res.end(req.url);
  });
  const arrived = (n: number) =>
    held >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }));
  return { backend, arrived, release };
}

/** A served keep-alive connection, idle after one exchange. */
async function idleConnection(t: TestContext, hf: TestHoldfast, path: string): Promise<RawClient> {
  const client = await RawClient.connect(t, hf.port);
  client.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.notEqual(res.headers.connection, 'close');
  return client;
}

test('at limits.maxConnections the longest-idle keep-alive connection is closed to admit a newcomer', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxConnections: 2 } });
  const oldest = await idleConnection(t, hf, '/a');
  const younger = await idleConnection(t, hf, '/b');
  // Touch `younger` again so the order of idleness is certain, not only the order of connecting.
  younger.write('GET /b2 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await younger.readResponse()).status, 200);

  const newcomer = await RawClient.connect(t, hf.port);
  newcomer.write('GET /new HTTP/1.1\r\nHost: x\r\n\r\n');
  const res = await newcomer.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'GET /new\n');
  await oldest.waitEnd();
  assert.equal(younger.ended, false, 'only one connection was reclaimed');
  younger.write('GET /b3 HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await younger.readResponse()).status, 200);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_reclaimed_total'), 1);
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/a', '/b', '/b2', '/new', '/b3'],
  );
});

test('at limits.maxConnections with nothing idle the newcomer gets 503 HF_ERR_CONNECTION_LIMIT and is closed', async (t) => {
  const { backend, arrived, release } = await holdingBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxConnections: 2 }, log: { level: 'silent' } });
  const busy = [await RawClient.connect(t, hf.port), await RawClient.connect(t, hf.port)];
  for (const c of busy) c.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
  await arrived(2);

  const newcomer = await RawClient.connect(t, hf.port);
  newcomer.write('GET /refused HTTP/1.1\r\nHost: x\r\n\r\n');
  await newcomer.waitEnd();
  const res = await newcomer.readResponse();
  assert.equal(res.status, 503);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_CONNECTION_LIMIT');
  assert.equal(res.headers.connection, 'close');
  assert.match(res.headers['retry-after'] ?? '', /^\d+$/);
  assert.equal(newcomer.pending.length, 0);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_rejected_total', { limit: 'global' }), 1);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_reclaimed_total'), 0);

  // The busy connections were not touched and finish normally.
  release();
  for (const c of busy) {
    const ok = await c.readResponse();
    assert.equal(ok.status, 200);
    assert.equal(c.ended, false);
  }
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/hold', '/hold'],
    'the refused request was never forwarded',
  );
});

test('refusals at limits.maxConnections: one log line per second with the count, counted by code in metrics', async (t) => {
  const { backend, arrived, release } = await holdingBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxConnections: 2 }, log: { level: 'warn' } });
  t.after(release);
  const busy = [await RawClient.connect(t, hf.port), await RawClient.connect(t, hf.port)];
  for (const c of busy) c.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
  await arrived(2);
  // Only the window timer is faked; the sockets are real.
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  const refuseSome = async (n: number) => {
    const newcomers = await Promise.all(Array.from({ length: n }, () => RawClient.connect(t, hf.port)));
    for (const c of newcomers) c.write('GET /refused HTTP/1.1\r\nHost: x\r\n\r\n');
    for (const c of newcomers) {
      await c.waitEnd();
      const res = await c.readResponse();
      assert.equal(res.status, 503);
      assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_CONNECTION_LIMIT');
    }
  };
  const refusalLines = () => hf.logs.lines.filter((l) => l.kind === 'HF_ERR_CONNECTION_LIMIT');

  await refuseSome(25);
  assert.equal(refusalLines().length, 0, 'no line per refusal');
  t.mock.timers.tick(1_000);
  assert.equal(refusalLines().length, 1);
  assert.equal(refusalLines()[0]!.count, 25);
  assert.equal(refusalLines()[0]!.limit, 'global');

  await refuseSome(3);
  t.mock.timers.tick(1_000);
  assert.deepEqual(
    refusalLines().map((l) => l.count),
    [25, 3],
  );
  assert.equal(await metricValue(hf, 'holdfast_client_connections_rejected_total', { limit: 'global', code: 'HF_ERR_CONNECTION_LIMIT' }), 28);
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/hold', '/hold'],
    'no refused request was forwarded',
  );
});

test('a refused connection frees nothing it never held: once a busy one closes, a newcomer is admitted', async (t) => {
  const { backend, arrived, release } = await holdingBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxConnections: 1 }, log: { level: 'silent' } });
  const busy = await RawClient.connect(t, hf.port);
  busy.write('GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await arrived(1);
  const refused = await RawClient.connect(t, hf.port);
  refused.write('GET /refused HTTP/1.1\r\nHost: x\r\n\r\n');
  await refused.waitEnd();
  assert.equal((await refused.readResponse()).status, 503);
  release();
  await busy.waitEnd();
  assert.equal((await busy.readResponse()).status, 200);

  // The registry forgot both; wait for the server side of `busy` to be gone before connecting again.
  await until(() => hf.edge.registry.size === 0, 'the registry to forget both connections');
  const next = await RawClient.connect(t, hf.port);
  next.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await next.readResponse()).status, 200);
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/hold', '/next'],
  );
});

test('at limits.maxConnectionsPerClient that client\'s longest-idle connection is reclaimed', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxConnectionsPerClient: 2 } });
  const oldest = await idleConnection(t, hf, '/a');
  const younger = await idleConnection(t, hf, '/b');
  const newcomer = await RawClient.connect(t, hf.port);
  newcomer.write('GET /new HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await newcomer.readResponse()).status, 200);
  await oldest.waitEnd();
  assert.equal(younger.ended, false);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_reclaimed_total'), 1);
});

test('at limits.maxConnectionsPerClient with nothing idle: 503 HF_ERR_CLIENT_CONNECTION_LIMIT, other addresses still served', async (t) => {
  const { backend, arrived, release } = await holdingBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {
    limits: { maxConnectionsPerClient: 2 },
    log: { level: 'silent' },
  });
  const busy = [await RawClient.connect(t, hf.port), await RawClient.connect(t, hf.port)];
  for (const c of busy) c.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
  await arrived(2);

  const newcomer = await RawClient.connect(t, hf.port);
  newcomer.write('GET /refused HTTP/1.1\r\nHost: x\r\n\r\n');
  await newcomer.waitEnd();
  const res = await newcomer.readResponse();
  assert.equal(res.status, 503);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_CLIENT_CONNECTION_LIMIT');
  assert.equal(res.headers.connection, 'close');
  assert.match(res.headers['retry-after'] ?? '', /^\d+$/);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_rejected_total', { limit: 'per-client' }), 1);

  // Another loopback address is another client (Linux routes all of 127/8 to lo).
  const other = await requestFrom('127.0.0.2', hf.port, 'GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(other, /^HTTP\/1\.1 200 /);

  release();
  for (const c of busy) assert.equal((await c.readResponse()).status, 200);
  assert.deepEqual(backend.seen.map((r) => r.url).sort(), ['/hold', '/hold', '/other']);
});

test('limits.maxRequestsPerConnection: the Nth response says Connection: close and the connection ends', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxRequestsPerConnection: 3 } });
  const client = await RawClient.connect(t, hf.port);
  for (let i = 1; i <= 2; i++) {
    client.write(`GET /r${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 200);
    assert.notEqual(res.headers.connection, 'close');
  }
  client.write('GET /r3 HTTP/1.1\r\nHost: x\r\n\r\n');
  const third = await client.readResponse();
  assert.equal(third.status, 200);
  assert.equal(third.body.toString(), 'GET /r3\n');
  assert.equal(third.headers.connection, 'close');
  await client.waitEnd();
  assert.equal(backend.seen.length, 3);
});

test('limits.maxRequestsPerConnection counts HTTP/1.0 keep-alive requests too', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxRequestsPerConnection: 2 } });
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /k1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const first = await client.readResponse();
  assert.equal(first.headers.connection?.toLowerCase(), 'keep-alive');
  client.write('GET /k2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await client.waitEnd();
  const second = await client.readResponse();
  assert.equal(second.status, 200);
  assert.equal(second.headers.connection?.toLowerCase(), 'close');
  assert.equal(backend.seen.length, 2);
});

test('limits.maxRequestsPerConnection with a longer pipeline: N answers, the last closes, nothing beyond is forwarded', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxRequestsPerConnection: 2 } });
  const client = await RawClient.connect(t, hf.port);
  client.write(
    'GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /p3 HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  await client.waitEnd();
  const [first, second] = await client.readResponses(2);
  assert.equal(first!.status, 200);
  assert.notEqual(first!.headers.connection, 'close');
  assert.equal(second!.status, 200);
  assert.equal(second!.headers.connection, 'close');
  assert.equal(client.pending.length, 0, 'nothing after the closing response');
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/p1', '/p2'],
  );
});

/** One request over a socket bound to `localAddress`; resolves with everything received until the close. */
function requestFrom(localAddress: string, port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    const chunks: Buffer[] = [];
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}
