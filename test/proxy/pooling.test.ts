import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { eventually, until } from '../helpers/until.js';

test('200 requests from 20 client connections reach the backend over a handful of pooled connections', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const clients: RawClient[] = [];
  for (let i = 0; i < 20; i++) clients.push(await RawClient.connect(t, hf.port));

  // Each client connection sends 10 requests one after another; the 20 connections run concurrently.
  const statuses = await Promise.all(
    clients.map(async (client, c) => {
      const out: number[] = [];
      for (let i = 0; i < 10; i++) {
        client.write(`GET /c${c}/r${i} HTTP/1.1\r\nHost: pool.test\r\n\r\n`);
        const res = await client.readResponse();
        assert.equal(res.body.toString(), `GET /c${c}/r${i}\n`);
        out.push(res.status);
      }
      return out;
    }),
  );
  assert.deepEqual(statuses.flat(), new Array<number>(200).fill(200));
  for (const client of clients) assert.equal(client.ended, false, 'client connections stay open');

  assert.equal(backend.seen.length, 200);
  // At most one backend connection per concurrently active client connection, and in practice far fewer
  // connections than requests: the pool reuses them.
  assert.ok(backend.connections >= 1 && backend.connections <= 20, `backend connections: ${backend.connections}`);
  assert.ok(backend.connections < 200 / 5, 'most requests reused a pooled connection');
  assert.equal(await metricValue(hf, 'holdfast_upstream_connections_total', { backend: backend.url }), backend.connections);
  assert.equal(await metricValue(hf, 'holdfast_upstream_requests_total', { backend: backend.url }), 200);
  assert.equal(await metricValue(hf, 'holdfast_requests_total'), 200);
});

test('sequential requests from many client connections share one backend connection', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  for (let c = 0; c < 10; c++) {
    const client = await RawClient.connect(t, hf.port);
    client.write(`GET /seq${c} HTTP/1.1\r\nHost: pool.test\r\nConnection: close\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 200);
    await client.waitEnd();
  }
  assert.equal(backend.seen.length, 10);
  assert.equal(backend.connections, 1, 'client connections come and go, the backend connection stays');
  assert.equal(await metricValue(hf, 'holdfast_upstream_connections_total', { backend: backend.url }), 1);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_total'), 10);
});

test('HEAD requests reuse the pooled backend connection like any other (undici would close it after each)', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  for (let i = 0; i < 20; i++) {
    const method = i % 2 === 0 ? 'HEAD' : 'GET';
    client.write(`${method} /h${i} HTTP/1.1\r\nHost: pool.test\r\n\r\n`);
    const res = await client.readResponse({ head: method === 'HEAD' });
    assert.equal(res.status, 200);
    if (method === 'HEAD') assert.equal(res.body.length, 0);
    else assert.equal(res.body.toString(), `GET /h${i}\n`);
  }
  assert.equal(client.ended, false);
  assert.deepEqual(
    backend.seen.map((r) => `${r.method} ${r.url}`),
    Array.from({ length: 20 }, (_, i) => `${i % 2 === 0 ? 'HEAD' : 'GET'} /h${i}`),
  );
  for (const r of backend.seen) assert.notEqual(r.headers.connection, 'close', `${r.method} ${r.url} asked the backend to close`);
  assert.equal(backend.connections, 1, 'one backend connection carried every HEAD and GET');
});

test('undici as the client: 200 concurrent requests over 20 connections, 20 at once at the backend', async (t) => {
  // The first 20 answers wait until 20 requests are at the backend at the same time: a build that forwarded
  // one request at a time (or fewer at once than the client sends) never gets there and fails the bound.
  const firstWave: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const backend = await startBackend(t, async (req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    if (firstWave.length < 20) await new Promise<void>((resolve) => firstWave.push(resolve));
    inFlight--;
    res.end(`GET ${req.url}\n`);
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const agent = new Agent({ connections: 20, pipelining: 1 });
  t.after(() => agent.close());
  const all = Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const res = await request(`${hf.url}/u${i}`, { dispatcher: agent });
      return { status: res.statusCode, body: await res.body.text() };
    }),
  );
  await eventually(() => firstWave.length === 20, 10_000, '20 requests at the backend at once');
  assert.equal(maxInFlight, 20);
  for (const release of firstWave) release();
  const results = await all;
  for (const [i, r] of results.entries()) assert.deepEqual(r, { status: 200, body: `GET /u${i}\n` });
  assert.equal(await metricValue(hf, 'holdfast_client_connections_total'), 20);
  assert.equal(backend.seen.length, 200);
  assert.ok(backend.connections <= 20, `backend connections: ${backend.connections}`);
  assert.equal(await metricValue(hf, 'holdfast_upstream_connections_total', { backend: backend.url }), backend.connections);
  assert.equal(await metricValue(hf, 'holdfast_requests_total'), 200);
});

test('several backends are balanced round-robin', async (t) => {
  const backends = await Promise.all([startBackend(t), startBackend(t), startBackend(t)]);
  const hf = await startTestHoldfast(
    t,
    backends.map((b) => b.url),
  );
  const client = await RawClient.connect(t, hf.port);
  for (let i = 0; i < 31; i++) {
    client.write(`GET /rr${i} HTTP/1.1\r\nHost: pool.test\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 200);
  }
  const counts = backends.map((b) => b.seen.length);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    31,
  );
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `per backend: ${counts.join(', ')}`);
  // Strict rotation: request i went to backend i mod 3.
  for (const [n, b] of backends.entries()) {
    assert.deepEqual(
      b.seen.map((s) => s.url),
      Array.from({ length: 31 }, (_, i) => i)
        .filter((i) => i % 3 === n)
        .map((i) => `/rr${i}`),
    );
    assert.equal(b.connections, 1, 'each backend kept one pooled connection');
    assert.equal(await metricValue(hf, 'holdfast_upstream_requests_total', { backend: b.url }), b.seen.length);
  }
});

test('concurrent load over several backends stays balanced', async (t) => {
  const backends = await Promise.all([startBackend(t), startBackend(t)]);
  const hf = await startTestHoldfast(
    t,
    backends.map((b) => b.url),
  );
  const agent = new Agent({ connections: 10 });
  t.after(() => agent.close());
  await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      const res = await request(`${hf.url}/b${i}`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }),
  );
  const counts = backends.map((b) => b.seen.length);
  assert.deepEqual(counts, [50, 50]);
  for (const b of backends) {
    assert.equal(await metricValue(hf, 'holdfast_upstream_connections_total', { backend: b.url }), b.connections);
  }
});

test('the most recently used backend connection is reused first, not the oldest idle one', async (t) => {
  // Three requests held at once open three backend connections. They are answered in the order 3, 1, 2, so
  // connection 2 is freed last and connection 3 first; each later request must go to the connection freed
  // most recently (undici's own Pool would take the first free connection in the order they were opened).
  const waiting = new Map<string, () => void>();
  const backend = await startBackend(t, async (req, res) => {
    if (req.url!.startsWith('/hold')) await new Promise<void>((resolve) => waiting.set(req.url!, resolve));
    res.end(`${req.url}\n`);
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const held = ['/hold1', '/hold2', '/hold3'].map((path) => request(`${hf.url}${path}`).then((r) => r.body.text()));
  await until(() => waiting.size === 3, 'three requests held at the backend');
  const connectionOf = (path: string) => backend.seen.find((r) => r.url === path)!.connection;
  for (const path of ['/hold3', '/hold1', '/hold2']) {
    waiting.get(path)!();
    // Each answer reaches the client before the next is released, so the order of freeing is known.
    await held[Number(path.slice(-1)) - 1];
  }
  assert.equal(backend.connections, 3);
  const lastFreed = connectionOf('/hold2');
  for (let i = 0; i < 3; i++) {
    const res = await request(`${hf.url}/next${i}`);
    await res.body.text();
    assert.equal(connectionOf(`/next${i}`), lastFreed, `request ${i} went to the connection freed last`);
  }
  assert.equal(backend.connections, 3, 'no new connection was opened');
});
