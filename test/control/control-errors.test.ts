// The control listener's refusals go through the one error boundary: every one carries its code, and a
// request that accepts JSON gets `{"error": code, "message": ...}`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';

test('control listener: unknown paths, wrong methods and a failing reload answer with their codes', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {}, {
    loadConfig: () => {
      // Not a HoldfastError: what a bug would throw. The listener must still answer with a code.
      throw new TypeError('a bug in reading the configuration');
    },
  });
  const cases: [string, string, number, string][] = [
    ['GET', '/nope', 404, 'HF_ERR_CONTROL_NOT_FOUND'],
    ['PUT', '/metrics', 405, 'HF_ERR_CONTROL_METHOD_NOT_ALLOWED'],
    ['GET', '/publish/', 405, 'HF_ERR_CONTROL_METHOD_NOT_ALLOWED'],
    ['POST', '/reload', 500, 'HF_ERR_INTERNAL'],
  ];
  for (const [method, path, status, code] of cases) {
    const text = await fetch(`${hf.controlUrl}${path}`, { method });
    assert.equal(text.status, status, `${method} ${path}`);
    assert.equal(text.headers.get('x-holdfast-error'), code, `${method} ${path}`);
    assert.equal(text.headers.get('cache-control'), 'no-store');
    assert.match(text.headers.get('content-type') ?? '', /^text\/plain/);
    assert.ok((await text.text()).length > 0);
    const json = await fetch(`${hf.controlUrl}${path}`, { method, headers: { accept: 'application/json' } });
    assert.equal(json.status, status, `${method} ${path} (JSON)`);
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await json.json()) as { error: string }).error, code);
  }
  const wrongMethod = await fetch(`${hf.controlUrl}/metrics`, { method: 'PUT' });
  assert.equal(wrongMethod.headers.get('allow'), 'GET, HEAD');
  await wrongMethod.arrayBuffer();
});
