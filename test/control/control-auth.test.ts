import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';

const KEY = 'control-sekrit';

async function call(hf: TestHoldfast, method: string, path: string, withKey: boolean): Promise<{ status: number; code: string | null }> {
  const headers: Record<string, string> = withKey ? { authorization: `Bearer ${KEY}` } : {};
  const init: RequestInit = { method, headers };
  if (path.startsWith('/publish')) {
    init.body = JSON.stringify({ items: [{ channel: 'c', formats: { 'http-stream': { content: 'x' } } }] });
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${hf.controlUrl}${path}`, init);
  await res.text();
  return { status: res.status, code: res.headers.get('x-holdfast-error') };
}

test('control with publish.key: publish and reload need the key; on loopback /metrics and /healthz stay open', async (t) => {
  const backend = await startBackend(t);
  let reloads = 0;
  const hf = await startTestHoldfast(t, [backend.url], { publish: { key: KEY } }, {
    loadConfig: () => {
      reloads++;
      return hf.config;
    },
  });
  assert.deepEqual(await call(hf, 'POST', '/reload', false), { status: 401, code: 'HF_ERR_CONTROL_UNAUTHORIZED' });
  assert.deepEqual(await call(hf, 'POST', '/publish/', false), { status: 401, code: 'HF_ERR_PUBLISH_UNAUTHORIZED' });
  assert.equal(reloads, 0, 'an unauthenticated reload did not reload');
  assert.equal((await call(hf, 'POST', '/reload', true)).status, 200);
  assert.equal(reloads, 1);
  assert.equal((await call(hf, 'POST', '/publish/', true)).status, 200);
  assert.equal((await call(hf, 'GET', '/metrics', false)).status, 200);
  assert.equal((await call(hf, 'GET', '/healthz', false)).status, 200);
});

test('control off loopback with publish.key: /metrics and /healthz need the key too, unless publish.openReadEndpoints', async (t) => {
  const backend = await startBackend(t);
  // 0.0.0.0 is off loopback by the config's rule; the test still talks to it over 127.0.0.1.
  const closed = await startTestHoldfast(t, [backend.url], { control: '0.0.0.0:0', publish: { key: KEY } });
  for (const path of ['/metrics', '/healthz']) {
    assert.deepEqual(await call(closed, 'GET', path, false), { status: 401, code: 'HF_ERR_CONTROL_UNAUTHORIZED' }, path);
    assert.equal((await call(closed, 'GET', path, true)).status, 200, path);
  }
  assert.equal((await call(closed, 'POST', '/reload', false)).status, 401);
  const open = await startTestHoldfast(t, [backend.url], { control: '0.0.0.0:0', publish: { key: KEY, openReadEndpoints: true } });
  for (const path of ['/metrics', '/healthz']) assert.equal((await call(open, 'GET', path, false)).status, 200, path);
  assert.equal((await call(open, 'POST', '/reload', false)).status, 401, 'state-changing endpoints keep the key');
  assert.equal((await call(open, 'POST', '/publish/', false)).status, 401);
});

test('control without publish.key on loopback: everything open, as Pushpin', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  assert.equal((await call(hf, 'GET', '/metrics', false)).status, 200);
  assert.equal((await call(hf, 'POST', '/publish/', false)).status, 200);
});
