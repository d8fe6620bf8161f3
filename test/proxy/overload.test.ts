import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import type { BackendGroup } from '../../src/proxy/group.js';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient, type RawResponse } from '../helpers/raw.js';
import { until } from '../helpers/until.js';

/** A backend that answers only when the test says so, and records how many requests it held at once. */
async function startHeldBackend(t: TestContext) {
  const held: { url: string; res: ServerResponse }[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const backend = await startBackend(t, (req, res) => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    res.once('close', () => concurrent--);
    held.push({ url: req.url ?? '', res });
  });
  return {
    backend,
    held,
    get maxConcurrent() {
      return maxConcurrent;
    },
    release(url: string) {
      const i = held.findIndex((h) => h.url === url);
      assert.ok(i >= 0, `${url} is not held`);
      held.splice(i, 1)[0]!.res.end(`done ${url}`);
    },
  };
}


function overloadConfig(url: string, queue: { maxLength: number; timeoutMs: number }): Partial<ConfigInput> {
  return {
    backends: undefined,
    groups: { web: { servers: [{ url }], maxConcurrentPerServer: 1, queue } },
    routes: [{ group: 'web' }],
  };
}

async function sendGet(t: TestContext, port: number, path: string): Promise<{ client: RawClient; response: Promise<RawResponse> }> {
  const client = await RawClient.connect(t, port);
  client.write(`GET ${path} HTTP/1.1\r\nHost: q.test\r\n\r\n`);
  return { client, response: client.readResponse() };
}

test('over the per-server cap requests queue; a full queue is 503 at once, a queued request is 503 after queue.timeoutMs', async (t) => {
  const h = await startHeldBackend(t);
  // Fake setTimeout and Date: the queue's deadline timer; the sockets stay real.
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  const hf = await startTestHoldfast(t, [], overloadConfig(h.backend.url, { maxLength: 2, timeoutMs: 1_000 }));
  const group: BackendGroup = hf.routing.groups.get('web')!;

  const r1 = await sendGet(t, hf.port, '/1');
  await until(() => h.held.length === 1);
  const r2 = await sendGet(t, hf.port, '/2');
  const r3 = await sendGet(t, hf.port, '/3');
  await until(() => group.queueLength === 2);
  assert.equal(await metricValue(hf, 'holdfast_queue_length', { group: 'web' }), 2);

  const r4 = await (await sendGet(t, hf.port, '/4')).response;
  assert.equal(r4.status, 503);
  assert.equal(r4.headers['x-holdfast-error'], 'HF_ERR_QUEUE_FULL');
  assert.equal(r4.headers['retry-after'], '1');

  t.mock.timers.tick(999);
  // The deadline timer runs inside tick(): a wrong one has already emptied the queue here. The metrics round
  // trip lets any I/O it started (a 503 on its way) run before the check.
  assert.equal(await metricValue(hf, 'holdfast_queue_length', { group: 'web' }), 2, 'still waiting at 999 ms');
  assert.equal(group.queueLength, 2, 'still waiting at 999 ms');
  assert.equal(await metricValue(hf, 'holdfast_queue_rejected_total', { group: 'web', reason: 'timeout' }), undefined);
  t.mock.timers.tick(1);
  for (const r of [await r2.response, await r3.response]) {
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-holdfast-error'], 'HF_ERR_QUEUE_TIMEOUT');
    assert.equal(r.headers['retry-after'], '1');
    assert.ok(r.body.toString().includes(h.backend.url), 'the body names the group and its servers');
  }
  h.release('/1');
  assert.equal((await r1.response).status, 200);
  assert.deepEqual(h.backend.seen.map((s) => s.url), ['/1'], 'the backend never saw a request beyond its cap');
  assert.equal(await metricValue(hf, 'holdfast_queue_rejected_total', { group: 'web', reason: 'full' }), 1);
  assert.equal(await metricValue(hf, 'holdfast_queue_rejected_total', { group: 'web', reason: 'timeout' }), 2);
  assert.equal(await metricValue(hf, 'holdfast_queue_length', { group: 'web' }), 0);
  const wait = await hf.metrics.queueWait.get();
  const timedOut = wait.values.find((v) => v.metricName === 'holdfast_queue_wait_seconds_count' && v.labels.outcome === 'timeout');
  assert.equal(timedOut?.value, 2);
});

test('queued requests are served first in, first out as slots free, never more than the cap at once', async (t) => {
  const h = await startHeldBackend(t);
  const hf = await startTestHoldfast(t, [], overloadConfig(h.backend.url, { maxLength: 10, timeoutMs: 60_000 }));
  const group = hf.routing.groups.get('web')!;
  const first = await sendGet(t, hf.port, '/q0');
  await until(() => h.held.length === 1);
  const queued: { client: RawClient; response: Promise<RawResponse> }[] = [];
  for (let i = 1; i <= 5; i++) {
    queued.push(await sendGet(t, hf.port, `/q${i}`));
    await until(() => group.queueLength === i); // so the arrival order is known
  }
  h.release('/q0');
  assert.equal((await first.response).status, 200);
  for (let i = 1; i <= 5; i++) {
    await until(() => h.held.length === 1);
    assert.equal(h.held[0]!.url, `/q${i}`, 'oldest first');
    h.release(`/q${i}`);
    const res = await queued[i - 1]!.response;
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), `done /q${i}`);
  }
  assert.equal(h.maxConcurrent, 1);
  const wait = await hf.metrics.queueWait.get();
  assert.equal(wait.values.find((v) => v.metricName === 'holdfast_queue_wait_seconds_count' && v.labels.outcome === 'served')?.value, 5);
});

test('a client that leaves while queued is dropped from the queue and never reaches the backend', async (t) => {
  const h = await startHeldBackend(t);
  const hf = await startTestHoldfast(t, [], overloadConfig(h.backend.url, { maxLength: 10, timeoutMs: 60_000 }));
  const group = hf.routing.groups.get('web')!;
  const first = await sendGet(t, hf.port, '/a');
  await until(() => h.held.length === 1);
  const leaving = await sendGet(t, hf.port, '/gone');
  // The leaving client gets no answer: its read ends with the connection it closes (any other error fails).
  const leftUnanswered = leaving.response.then(
    (res) => assert.fail(`the leaving client was answered ${res.status}`),
    (err: unknown) => {
      if (!(err instanceof Error && err.message.startsWith('connection ended before a full response'))) throw err;
    },
  );
  const staying = await sendGet(t, hf.port, '/b');
  await until(() => group.queueLength === 2);
  leaving.client.socket.destroy();
  await until(() => group.queueLength === 1);
  h.release('/a');
  await first.response;
  await until(() => h.held.length === 1);
  h.release('/b');
  assert.equal((await staying.response).status, 200);
  assert.deepEqual(h.backend.seen.map((s) => s.url), ['/a', '/b']);
  assert.equal(group.active, 0, 'nothing left admitted in the group');
  await leftUnanswered;
});

test('a slot freed by a failure wakes the queue even when that failure marked the lone server down', async (t) => {
  // /1 is held, then its connection reset (a failure that marks the server down and frees its slot); /2
  // waits in the queue meanwhile and must be sent at once, not left to the queue timeout.
  const held: { url: string; destroy(): void }[] = [];
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/1') held.push({ url: '/1', destroy: () => res.socket?.destroy() });
    else res.end(`done ${req.url ?? ''}`);
  });
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.now() });
  const hf = await startTestHoldfast(t, [], {
    ...overloadConfig(backend.url, { maxLength: 10, timeoutMs: 5_000 }),
    upstream: { maxFails: 1, failTimeoutMs: 10_000, retries: 0 },
  });
  const group: BackendGroup = hf.routing.groups.get('web')!;
  const r1 = await sendGet(t, hf.port, '/1');
  await until(() => held.length === 1);
  const r2 = await sendGet(t, hf.port, '/2');
  await until(() => group.queueLength === 1);
  held[0]!.destroy();
  assert.equal((await r1.response).status, 502);
  const second = await r2.response;
  assert.equal(second.status, 200, 'the queued request went to the server (down, but the only one) when the slot freed');
  assert.equal(second.body.toString(), 'done /2');
  assert.equal(await metricValue(hf, 'holdfast_backend_up', { group: 'web', backend: backend.url }), 1);
});
