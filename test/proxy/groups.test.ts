import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBackend, type RecordingBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { until } from '../helpers/until.js';

/** Groups and routes instead of `backends`. */
function grouped(groups: ConfigInput['groups'], routes: ConfigInput['routes']): Partial<ConfigInput> {
  return { backends: undefined, groups, routes };
}

async function get(url: string, headers: Record<string, string> = {}, dispatcher?: Agent) {
  const res = await request(url, { headers, ...(dispatcher === undefined ? {} : { dispatcher }) });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

test('routes pick a group by exact host, wildcard host and path prefix, most specific first; no match is 404', async (t) => {
  const [api, apps, assets, site, v2] = await Promise.all([startBackend(t), startBackend(t), startBackend(t), startBackend(t), startBackend(t)]);
  const hf = await startTestHoldfast(
    t,
    [],
    grouped(
      {
        api: { servers: [{ url: api.url }] },
        apps: { servers: [{ url: apps.url }] },
        assets: { servers: [{ url: assets.url }] },
        site: { servers: [{ url: site.url }] },
        v2: { servers: [{ url: v2.url }] },
      },
      [
        // Listed least specific first on purpose: the table orders them.
        { host: 'www.example.test', group: 'site' },
        { pathPrefix: '/static', group: 'assets', stripPrefix: true },
        { host: '*.apps.example.test', group: 'apps' },
        { host: 'api.example.test', group: 'api' },
        { host: 'api.example.test', pathPrefix: '/v2/', group: 'v2', replacePrefix: '/api/v2/' },
      ],
    ),
  );
  const cases: [string, string, RecordingBackend, string][] = [
    ['api.example.test', '/users?x=1', api, '/users?x=1'],
    ['API.Example.Test:8080', '/users', api, '/users'],
    ['api.example.test', '/v2/users', v2, '/api/v2/users'],
    ['api.example.test', '/v2x', api, '/v2x'],
    ['one.apps.example.test', '/', apps, '/'],
    ['a.b.apps.example.test', '/static/x.css', apps, '/static/x.css'], // host beats path
    ['www.example.test', '/static/x.css', site, '/static/x.css'],
    ['other.test', '/static/x.css', assets, '/x.css'],
    ['other.test', '/static', assets, '/'],
    ['other.test', '/static?v=3', assets, '/?v=3'],
  ];
  for (const [host, path, backend, seenPath] of cases) {
    const before = backend.seen.length;
    const res = await get(`${hf.url}${path}`, { host });
    assert.equal(res.status, 200, `${host}${path}`);
    assert.equal(backend.seen.length, before + 1, `${host}${path} went to the wrong group`);
    assert.equal(backend.seen.at(-1)!.url, seenPath);
    assert.equal(backend.seen.at(-1)!.headers.host, host, 'Host is preserved');
  }
  const total = () => [api, apps, assets, site, v2].reduce((n, b) => n + b.seen.length, 0);
  const seenBefore = total();
  for (const [host, path] of [['apps.example.test', '/'], ['other.test', '/staticx'], ['other.test', '/']]) {
    const res = await get(`${hf.url}${path}`, { host: host! });
    assert.equal(res.status, 404, `${host}${path}`);
    assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_NO_ROUTE');
  }
  assert.equal(total(), seenBefore, 'no backend saw an unrouted request');
});

test('backends: [...] still works as one default group with a catch-all route after explicit routes', async (t) => {
  const [main, admin] = await Promise.all([startBackend(t), startBackend(t)]);
  const hf = await startTestHoldfast(t, [main.url], {
    groups: { admin: { servers: [{ url: admin.url }] } },
    routes: [{ pathPrefix: '/admin', group: 'admin' }],
  });
  assert.equal((await get(`${hf.url}/admin/x`)).status, 200);
  assert.equal((await get(`${hf.url}/other`)).status, 200);
  assert.deepEqual(admin.seen.map((s) => s.url), ['/admin/x']);
  assert.deepEqual(main.seen.map((s) => s.url), ['/other']);
});

test('weighted round-robin: weights 3:1:0 give exactly 3:1:0 over 400 sequential requests, smoothly interleaved', async (t) => {
  const [a, b, c] = await Promise.all([startBackend(t), startBackend(t), startBackend(t)]);
  const hf = await startTestHoldfast(
    t,
    [],
    grouped(
      {
        web: {
          servers: [
            { url: a.url, weight: 3 },
            { url: b.url, weight: 1 },
            { url: c.url, weight: 0 },
          ],
        },
      },
      [{ group: 'web' }],
    ),
  );
  const order: string[] = [];
  for (let i = 0; i < 400; i++) {
    await get(`${hf.url}/r${i}`);
    order.push(a.seen.at(-1)?.url === `/r${i}` ? 'a' : b.seen.at(-1)?.url === `/r${i}` ? 'b' : '?');
  }
  assert.equal(a.seen.length, 300);
  assert.equal(b.seen.length, 100);
  assert.equal(c.seen.length, 0, 'weight 0 gets nothing');
  // Smooth: never more than three a's in a row (nginx's algorithm spreads b between them).
  assert.ok(!order.join('').includes('aaaa'), order.slice(0, 16).join(''));
});

test('least outstanding requests: a server stuck on slow requests gets no new ones while the other is free', async (t) => {
  const held: (() => void)[] = [];
  const slow = await startBackend(t, (req, res) => {
    if (req.url?.startsWith('/slow')) held.push(() => res.end('slow'));
    else res.end('fast');
  });
  const fast = await startBackend(t);
  const hf = await startTestHoldfast(
    t,
    [],
    grouped({ web: { algorithm: 'leastRequests', servers: [{ url: slow.url }, { url: fast.url }] } }, [{ group: 'web' }]),
  );
  const agent = new Agent({ connections: 20 });
  t.after(() => agent.close());
  // Two slow requests: one per server (ties rotate). The one on `fast` answers at once.
  const slowOnes = [get(`${hf.url}/slow1`, {}, agent), get(`${hf.url}/slow2`, {}, agent)];
  await until(() => slow.seen.length + fast.seen.length === 2, 'both requests at their backends');
  await Promise.race(slowOnes);
  const stuck = slow.seen.length;
  assert.ok(stuck >= 1);
  // With one request outstanding on `slow`, every new request goes to `fast`.
  for (let i = 0; i < 20; i++) await get(`${hf.url}/n${i}`, {}, agent);
  assert.equal(slow.seen.length, stuck, 'nothing more went to the busy server');
  assert.equal(fast.seen.filter((s) => s.url.startsWith('/n')).length, 20);
  for (const release of held) release();
  await Promise.all(slowOnes);
});

test('consistent hash on a header: stable per key, even within 25%, and a new server takes about 1/N of the keys', async (t) => {
  const backends = await Promise.all([startBackend(t), startBackend(t), startBackend(t), startBackend(t), startBackend(t)]);
  const groupsFor = (n: number) => ({
    web: { algorithm: 'hash' as const, hashOn: { header: 'X-User' }, servers: backends.slice(0, n).map((b) => ({ url: b.url })) },
  });
  const hf = await startTestHoldfast(t, [], grouped(groupsFor(4), [{ group: 'web' }]));
  const agent = new Agent({ connections: 16 });
  t.after(() => agent.close());
  const KEYS = 2_000;
  const owners = async (): Promise<number[]> => {
    const before = backends.map((b) => b.seen.length);
    const result = new Array<number>(KEYS).fill(-1);
    for (let batch = 0; batch < KEYS; batch += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => get(`${hf.url}/k${batch + j}`, { 'x-user': `user-${batch + j}` }, agent)),
      );
    }
    for (const [i, b] of backends.entries()) {
      for (const s of b.seen.slice(before[i])) result[Number(s.url.slice(2))] = i;
    }
    return result;
  };
  const first = await owners();
  const again = await owners();
  assert.deepEqual(again, first, 'every key went to the same server twice');
  const counts = [0, 1, 2, 3].map((i) => first.filter((o) => o === i).length);
  for (const c of counts) assert.ok(Math.abs(c - KEYS / 4) <= KEYS / 4 / 4, `shares within 25% of even: ${counts.join(', ')}`);

  // Membership change through a reload: a fifth server.
  hf.routing.reload(validateConfig({ backends: undefined, groups: groupsFor(5), routes: [{ group: 'web' }] }));
  const after = await owners();
  const moved = after.filter((o, key) => o !== first[key]);
  assert.ok(moved.every((o) => o === 4), 'keys only move to the new server');
  const fraction = moved.length / KEYS;
  assert.ok(fraction > 0.2 * 0.6 && fraction < 0.2 * 1.4, `moved ${(fraction * 100).toFixed(1)}% (1/N = 20%)`);

  // A server taken out: only its keys move (the ring walks on to the next live point).
  hf.routing.reload(validateConfig({ backends: undefined, groups: groupsFor(4), routes: [{ group: 'web' }] }));
  const restored = await owners();
  assert.deepEqual(restored, first, 'removing the fifth server moves exactly its keys back');
});

test('consistent hash on a cookie and on the client address; a request without the key is still served', async (t) => {
  const backends = await Promise.all([startBackend(t), startBackend(t), startBackend(t)]);
  const servers = backends.map((b) => ({ url: b.url }));
  const hf = await startTestHoldfast(
    t,
    [],
    grouped(
      {
        byCookie: { algorithm: 'hash', hashOn: { cookie: 'sid' }, servers },
        byAddress: { algorithm: 'hash', hashOn: { clientAddress: true }, servers },
      },
      [
        { pathPrefix: '/c', group: 'byCookie' },
        { pathPrefix: '/a', group: 'byAddress' },
      ],
    ),
  );
  const where = (url: string) => backends.findIndex((b) => b.seen.at(-1)?.url === url);
  for (let user = 0; user < 20; user++) {
    const first = (await get(`${hf.url}/c/${user}/1`, { cookie: `theme=dark; sid=s${user}` }), where(`/c/${user}/1`));
    await get(`${hf.url}/c/${user}/2`, { cookie: `sid=s${user}` });
    assert.equal(where(`/c/${user}/2`), first);
  }
  const owners = new Set<number>();
  for (let i = 0; i < 10; i++) {
    await get(`${hf.url}/a/${i}`);
    owners.add(where(`/a/${i}`));
  }
  assert.equal(owners.size, 1, 'one client address, one server');
  const spread = new Set<number>();
  for (let i = 0; i < 6; i++) {
    assert.equal((await get(`${hf.url}/c/nokey${i}`)).status, 200);
    spread.add(where(`/c/nokey${i}`));
  }
  assert.equal(spread.size, 3, 'without the cookie: round-robin');
  assert.equal(await metricValue(hf, 'holdfast_requests_total'), 56);
});
