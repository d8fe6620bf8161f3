import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { within } from '../helpers/until.js';

function grouped(groups: ConfigInput['groups']): Partial<ConfigInput> {
  return { backends: undefined, groups, routes: [{ group: 'web' }] };
}

test('active checks: fall 3 marks a server down (503 + Retry-After when none is left), rise 2 brings it back; on a fake clock', async (t) => {
  let healthStatus = 200;
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/healthz') res.writeHead(healthStatus).end();
    else res.end('app');
  });
  // Only the health timer is faked (undici's own timers stay real); the sockets are real.
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  const hf = await startTestHoldfast(t, [], grouped({ web: { servers: [{ url: backend.url }], healthCheck: { path: '/healthz' } } }));
  const health = hf.routing.groups.get('web')!.health!;
  const round = async () => {
    t.mock.timers.tick(2_000); // the default interval
    await health.settled();
  };
  const client = await RawClient.connect(t, hf.port);
  const status = async () => {
    client.write('GET /app HTTP/1.1\r\nHost: h.test\r\n\r\n');
    return client.readResponse();
  };

  await round();
  assert.equal((await status()).status, 200);
  healthStatus = 500;
  await round();
  await round();
  assert.equal((await status()).status, 200, 'two failed checks are not enough (fall 3)');
  assert.equal(await metricValue(hf, 'holdfast_backend_up', { group: 'web', backend: backend.url }), 1);
  await round();
  const refused = await status();
  assert.equal(refused.status, 503);
  assert.equal(refused.headers['x-holdfast-error'], 'HF_ERR_NO_HEALTHY_BACKEND');
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(await metricValue(hf, 'holdfast_backend_up', { group: 'web', backend: backend.url }), 0);
  assert.equal(await metricValue(hf, 'holdfast_backend_transitions_total', { backend: backend.url, to: 'down' }), 1);
  const down = await hf.logs.waitFor({ msg: 'backend marked down', backend: backend.url });
  assert.equal(down.reason, 'health check: status 500');

  healthStatus = 204;
  await round();
  assert.equal((await status()).status, 503, 'one good check is not enough (rise 2)');
  await round();
  assert.equal((await status()).status, 200);
  assert.equal(await metricValue(hf, 'holdfast_backend_transitions_total', { backend: backend.url, to: 'up' }), 1);
  assert.equal(backend.seen.filter((s) => s.url === '/app').length, 3, 'the down server got no traffic');
  assert.equal(backend.seen.filter((s) => s.url === '/healthz').length, 6);
  assert.equal(backend.seen.find((s) => s.url === '/healthz')!.method, 'GET');
});

test('active checks: expectStatus, and a refused connection counts as a failed check', async (t) => {
  const backend = await startBackend(t, (_req, res) => void res.writeHead(200).end());
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  const hf = await startTestHoldfast(
    t,
    [],
    grouped({ web: { servers: [{ url: backend.url }], healthCheck: { path: '/h', expectStatus: 204, fall: 1, intervalMs: 500 } } }),
  );
  t.mock.timers.tick(500);
  await hf.routing.groups.get('web')!.health!.settled();
  const res = await request(`${hf.url}/x`);
  await res.body.dump();
  assert.equal(res.statusCode, 503, '200 is not the expected 204');
  assert.equal((await hf.logs.waitFor({ msg: 'backend marked down' })).reason, 'health check: status 200');
});

test('passive on5xx: a burst of maxFails 5xx answers within failTimeoutMs takes a server out', async (t) => {
  const failing = await startBackend(t, (_req, res) => void res.writeHead(500).end('oops'));
  const good = await startBackend(t);
  const hf = await startTestHoldfast(
    t,
    [],
    grouped({
      web: { servers: [{ url: failing.url }, { url: good.url }], passive: { on5xx: true, maxFails: 3, failTimeoutMs: 60_000 } },
    }),
  );
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await request(`${hf.url}/r${i}`);
    await res.body.dump();
    statuses.push(res.statusCode);
  }
  assert.equal(failing.seen.length, 3, 'three 5xx, then no more traffic');
  assert.equal(statuses.filter((s) => s === 500).length, 3, 'a 5xx is an answer: relayed, never retried');
  assert.equal(good.seen.length, 17);
  assert.equal(await metricValue(hf, 'holdfast_backend_transitions_total', { backend: failing.url, to: 'down' }), 1);
});

test('a server killed and restarted mid-traffic: not one failed GET, and it takes traffic again after rise', async (t) => {
  const [a, c] = await Promise.all([startBackend(t), startBackend(t)]);
  let b: Server = createServer((_req, res) => res.end('b'));
  await new Promise<void>((resolve) => b.listen(0, '127.0.0.1', resolve));
  const bPort = (b.address() as { port: number }).port;
  const bUrl = `http://127.0.0.1:${bPort}`;
  // Checks are driven by hand (runOnce) so the test steps them; the interval is out of the way.
  const hf = await startTestHoldfast(
    t,
    [],
    grouped({
      web: {
        servers: [{ url: a.url }, { url: bUrl }, { url: c.url }],
        healthCheck: { path: '/', intervalMs: 3_600_000 },
      },
    }),
  );
  const group = hf.routing.groups.get('web')!;
  const agent = new Agent({ connections: 8 });
  t.after(() => agent.close());
  let stop = false;
  let sent = 0;
  const failures: string[] = [];
  const loop = async () => {
    while (!stop) {
      sent++;
      try {
        const res = await request(`${hf.url}/t${sent}`, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode !== 200) failures.push(`${res.statusCode} ${String(res.headers['x-holdfast-error'])}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: 8 }, loop);
  const bServedBefore = new Promise<void>((resolve) => b.once('request', () => resolve()));
  await within(bServedBefore, 10_000, 'b to serve a request');

  // Kill b: listener gone, every connection cut, mid-traffic.
  await new Promise<void>((resolve) => {
    b.close(() => resolve());
    b.closeAllConnections();
  });
  await hf.logs.waitFor({ msg: 'backend marked down', backend: bUrl });
  const sentAtDetection = sent;

  // Restart it on the same port; two good checks (rise 2) bring it back.
  let servedAfterRestart = 0;
  let enough: () => void = () => {};
  const served = new Promise<void>((resolve) => (enough = resolve));
  b = createServer((_req, res) => {
    res.end('b again');
    if (++servedAfterRestart === 50) enough();
  });
  await new Promise<void>((resolve) => b.listen(bPort, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { b.close(() => resolve()); b.closeAllConnections(); }));
  for (let i = 0; i < 2; i++) {
    group.health!.runOnce();
    await group.health!.settled();
  }
  await hf.logs.waitFor({ msg: 'backend back up', backend: bUrl });
  await served;
  stop = true;
  await Promise.all(loops);

  assert.deepEqual(failures, [], 'no request failed: connect failures were retried on other servers');
  assert.ok(sent > sentAtDetection, 'traffic went on while b was down');
  assert.equal(await metricValue(hf, 'holdfast_backend_transitions_total', { backend: bUrl, to: 'down' }), 1);
  assert.equal(await metricValue(hf, 'holdfast_backend_transitions_total', { backend: bUrl, to: 'up' }), 1);
  assert.ok(a.seen.length > 0 && c.seen.length > 0);
});

test('slow start: a server back from passive down-time takes a growing share, full weight after slowStartMs', async (t) => {
  let failNext = true;
  const flaky = await startBackend(t, (_req, res) => {
    if (failNext) {
      failNext = false;
      res.socket?.resetAndDestroy();
      return;
    }
    res.end('flaky');
  });
  const steady = await startBackend(t);
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  const hf = await startTestHoldfast(
    t,
    [],
    grouped({
      web: {
        servers: [{ url: flaky.url }, { url: steady.url }],
        slowStartMs: 10_000,
        passive: { maxFails: 1, failTimeoutMs: 1_000 },
      },
    }),
  );
  const client = await RawClient.connect(t, hf.port);
  const send = async (n: number) => {
    const before = flaky.seen.length;
    for (let i = 0; i < n; i++) {
      client.write('GET / HTTP/1.1\r\nHost: h.test\r\n\r\n');
      assert.equal((await client.readResponse()).status, 200);
    }
    return flaky.seen.length - before;
  };
  // The first request goes to flaky, which resets a fresh connection: 502 (the request may have been
  // processed, so it is not resent), and flaky is marked down.
  client.write('GET / HTTP/1.1\r\nHost: h.test\r\n\r\n');
  assert.equal((await client.readResponse()).headers['x-holdfast-error'], 'HF_ERR_UPSTREAM_RESET');
  await hf.logs.waitFor({ msg: 'backend marked down', backend: flaky.url });
  t.mock.timers.tick(1_000 + 1_000); // back on trial since 1 s: 10% of its weight
  const early = await send(100);
  t.mock.timers.tick(4_000); // 5 s in: 50%
  const middle = await send(100);
  t.mock.timers.tick(6_000); // past slowStartMs: full weight
  const late = await send(100);
  assert.ok(early >= 5 && early <= 13, `at 10% weight flaky got ${early}/100 (expected ~9)`);
  assert.ok(middle >= 28 && middle <= 38, `at 50% weight flaky got ${middle}/100 (expected ~33)`);
  assert.ok(late >= 49 && late <= 51, `at full weight flaky got ${late}/100 (expected 50)`);
});
