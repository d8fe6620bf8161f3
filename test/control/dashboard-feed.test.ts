import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import type { DashboardSnapshot } from '../../src/control/dashboard-snapshot.js';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { eventually } from '../helpers/until.js';
import { startDashboardLoad } from './dashboard-load.js';

const KEY = 'dashboard-sekrit';

/** The dashboard feed as a browser's EventSource reads it: every snapshot, parsed. */
function openFeed(t: TestContext, controlUrl: string, headers: Record<string, string> = {}): DashboardSnapshot[] {
  const snapshots: DashboardSnapshot[] = [];
  const es = new EventSource(`${controlUrl}/dashboard/events`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
  });
  es.addEventListener('snapshot', (e: MessageEvent) => snapshots.push(JSON.parse(String(e.data)) as DashboardSnapshot));
  t.after(() => es.close());
  return snapshots;
}

test('the dashboard feed: SSE from the control listener, snapshots whose numbers match the load', async (t) => {
  const load = await startDashboardLoad(t);
  const { hf } = load;
  const head = await fetch(`${hf.controlUrl}/dashboard/events`);
  assert.equal(head.status, 200);
  assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
  await head.body?.cancel();

  const snapshots = openFeed(t, hf.controlUrl);
  // Two snapshots a tick apart: the second one has a window to compute rates over.
  await eventually(() => snapshots.length >= 2, 10_000, 'two snapshots');
  const s = snapshots.at(-1)!;
  assert.equal(s.scope, 'this process');
  assert.deepEqual(s.connections.held, { sse: load.held.alpha + load.held.beta, longPoll: 0, stream: 0, websocket: 0 });
  assert.equal(s.connections.client, load.held.alpha + load.held.beta, 'the held clients are the open connections');
  assert.equal(s.connections.clientMax, load.held.alpha + load.held.beta);
  assert.deepEqual(s.channels, {
    total: 2,
    subscriptions: load.held.alpha + load.held.beta,
    top: [
      { name: 'alpha', subscribers: load.held.alpha },
      { name: 'beta', subscribers: load.held.beta },
    ],
  });
  // Every request the edge read: the proxied ones, the SSE ones, and the one answered 503 on the refused connection.
  assert.equal(s.rates.requestsTotal, load.proxiedRequests + load.held.alpha + load.held.beta + 1);
  assert.equal(s.rates.publishedTotal, 1);
  assert.equal(s.rates.deliveredTotal, load.delivered);
  assert.deepEqual(s.refusals, { [load.refusedCode]: 1 });
  assert.deepEqual(s.drops, {});
  assert.deepEqual(s.backends, [{ group: 'default', server: load.backendUrl, up: true, inFlight: 0, connections: s.connections.backend }]);
  assert.ok(s.connections.backend >= 1, 'the pool keeps a connection to the backend');
  assert.deepEqual(s.groups, [{ name: 'default', queue: 0 }]);
  assert.deepEqual(s.bus, { driver: 'memory', state: 'up' });

  // A publish while watching shows in the rates within the window.
  const published = await fetch(`${hf.controlUrl}/publish/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items: [{ channel: 'beta', formats: { 'http-stream': { content: 'data: again\n\n' } } }] }),
  });
  assert.equal(published.status, 200);
  await eventually(() => snapshots.at(-1)!.rates.publishedTotal === 2, 10_000, 'a snapshot with the second publish');
  const after = snapshots.at(-1)!;
  assert.equal(after.rates.deliveredTotal, load.delivered + load.held.beta);
  assert.ok(after.rates.publishedPerSecond > 0, `a publish rate (${after.rates.publishedPerSecond})`);
  assert.ok(after.rates.deliveredPerSecond > 0, `a delivery rate (${after.rates.deliveredPerSecond})`);
});

test('dashboard with publish.key: on loopback the numbers are open but channel names need the key', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { publish: { key: KEY } });
  const page = await fetch(`${hf.controlUrl}/dashboard`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>Holdfast dashboard<\/title>/);

  const anonymous = openFeed(t, hf.controlUrl);
  const keyed = openFeed(t, hf.controlUrl, { authorization: `Basic ${Buffer.from(`any:${KEY}`).toString('base64')}` });
  await eventually(() => anonymous.length > 0 && keyed.length > 0, 10_000, 'a snapshot on both feeds');
  assert.equal(anonymous[0]!.channels.top, null, 'no channel names without the key');
  assert.equal(anonymous[0]!.channels.total, 0, 'the counts are there');
  assert.deepEqual(keyed[0]!.channels.top, []);

  const signIn = await fetch(`${hf.controlUrl}/dashboard/sign-in`, { redirect: 'manual' });
  assert.equal(signIn.status, 401);
  assert.equal(signIn.headers.get('x-holdfast-error'), 'HF_ERR_CONTROL_UNAUTHORIZED');
  assert.match(signIn.headers.get('www-authenticate') ?? '', /^Basic realm=/, 'a challenge a browser answers with a prompt');
  const signedIn = await fetch(`${hf.controlUrl}/dashboard/sign-in`, { redirect: 'manual', headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(signedIn.status, 303);
  assert.equal(signedIn.headers.get('location'), '/dashboard');
});

test('dashboard with publish.key off loopback: page and feed need the key', async (t) => {
  const backend = await startBackend(t);
  // 0.0.0.0 is off loopback by the config's rule; the test still talks to it over 127.0.0.1.
  const hf = await startTestHoldfast(t, [backend.url], { control: '0.0.0.0:0', publish: { key: KEY } });
  for (const path of ['/dashboard', '/dashboard/events']) {
    const res = await fetch(`${hf.controlUrl}${path}`);
    await res.body?.cancel();
    assert.equal(res.status, 401, path);
    assert.equal(res.headers.get('x-holdfast-error'), 'HF_ERR_CONTROL_UNAUTHORIZED', path);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /, path);
  }
  const keyed = openFeed(t, hf.controlUrl, { authorization: `Bearer ${KEY}` });
  await eventually(() => keyed.length > 0, 10_000, 'a snapshot with the key');
  assert.deepEqual(keyed[0]!.channels.top, []);
});
