import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';

async function get(url: string, cookie?: string) {
  const res = await request(url, { headers: cookie === undefined ? {} : { cookie } });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** `hf_srv=<id>` from a Set-Cookie header, or undefined. */
function pin(setCookie: string | string[] | undefined): string | undefined {
  const value = Array.isArray(setCookie) ? setCookie.find((c) => c.startsWith('hf_srv=')) : setCookie;
  return value?.split(';')[0];
}

test('sticky cookie, insert indirect nocache: set once, stripped before the backend, the client stays on its server', async (t) => {
  const backends = await Promise.all(
    [0, 1, 2].map((n) =>
      startBackend(t, (_req, res) => {
        res.setHeader('cache-control', 'public, max-age=60');
        res.end(`server ${n}`);
      }),
    ),
  );
  const hf = await startTestHoldfast(t, [], {
    backends: undefined,
    groups: { web: { servers: backends.map((b) => ({ url: b.url })), sticky: { cookie: 'hf_srv' } } },
    routes: [{ group: 'web' }],
  });
  const first = await get(`${hf.url}/`, 'theme=dark');
  const cookie = pin(first.headers['set-cookie']);
  assert.ok(cookie !== undefined, 'the first answer pins the client');
  assert.match(String(first.headers['set-cookie']), /; Path=\/; HttpOnly; SameSite=Lax$/);
  assert.match(String(first.headers['cache-control']), /private/, 'a pinning answer is marked uncacheable for shared caches');
  const id = cookie.slice('hf_srv='.length);
  assert.match(id, /^[A-Za-z0-9_-]{16}$/);
  for (const b of backends) assert.ok(!id.includes(String(b.port)) && !id.includes('127'), 'the id reveals no address');
  const server = first.body;

  for (let i = 0; i < 10; i++) {
    const res = await get(`${hf.url}/again${i}`, `theme=dark; ${cookie}`);
    assert.equal(res.body, server, 'pinned');
    assert.equal(res.headers['set-cookie'], undefined, 'no new cookie while the pin holds');
    assert.equal(res.headers['cache-control'], 'public, max-age=60', 'and the answer stays cacheable');
  }
  for (const b of backends) {
    for (const seen of b.seen) {
      assert.ok(!String(seen.headers.cookie ?? '').includes('hf_srv'), 'the backend never sees the sticky cookie');
    }
  }
  const pinnedBackend = backends.find((b) => b.seen.length === 11)!;
  assert.equal(pinnedBackend.seen[1]!.headers.cookie, 'theme=dark', 'other cookies pass');

  // A forged value (an address, or any id not ours) pins nothing: the client is balanced and re-pinned.
  for (const forged of [`hf_srv=${backends[0]!.url}`, 'hf_srv=AAAAAAAAAAAAAAAA', 'hf_srv=']) {
    const res = await get(`${hf.url}/forged`, forged);
    assert.equal(res.status, 200);
    assert.ok(pin(res.headers['set-cookie']) !== undefined);
  }
});

test('when the pinned server dies the request goes elsewhere and the client is re-pinned there', async (t) => {
  const steady = await startBackend(t, (_req, res) => void res.end('steady'));
  const doomed = createServer((_req, res) => res.end('doomed'));
  await new Promise<void>((resolve) => doomed.listen(0, '127.0.0.1', resolve));
  const doomedUrl = `http://127.0.0.1:${(doomed.address() as { port: number }).port}`;
  const hf = await startTestHoldfast(t, [], {
    backends: undefined,
    groups: { web: { servers: [{ url: doomedUrl }, { url: steady.url }], sticky: { cookie: 'hf_srv' } } },
    routes: [{ group: 'web' }],
  });
  // Round-robin starts at the first server: this client is pinned to `doomed`.
  const first = await get(`${hf.url}/`);
  assert.equal(first.body, 'doomed');
  const doomedPin = pin(first.headers['set-cookie'])!;
  assert.equal((await get(`${hf.url}/`, doomedPin)).body, 'doomed');

  await new Promise<void>((resolve) => {
    doomed.close(() => resolve());
    doomed.closeAllConnections();
  });
  const moved = await get(`${hf.url}/after`, doomedPin);
  assert.equal(moved.status, 200);
  assert.equal(moved.body, 'steady');
  const newPin = pin(moved.headers['set-cookie']);
  assert.ok(newPin !== undefined && newPin !== doomedPin, 're-pinned to the server that answered');
  for (let i = 0; i < 5; i++) {
    const res = await get(`${hf.url}/later${i}`, newPin);
    assert.equal(res.body, 'steady');
    assert.equal(res.headers['set-cookie'], undefined);
  }
});
