// A worker's death, as the primary and the clients see it: replaced, its clients reconnect (EventSource
// does by itself) and replay from the history the primary kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import { eventually } from '../helpers/until.js';
import { START_MS, WAIT_MS, alive, clusterStarted, metricSum, scrape, spawnCluster, startSseBackend, streamItem } from './cluster-helpers.js';

async function publish(controlUrl: string, items: Record<string, unknown>[]): Promise<Response> {
  const res = await fetch(`${controlUrl}/publish/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
  await res.arrayBuffer();
  return res;
}

test('a worker killed with SIGKILL is replaced; its clients reconnect and replay what was published meanwhile', async (t) => {
  let release!: () => void;
  // Reconnects wait at the backend until the test has published what they miss: replay, not live delivery.
  const backend = await startSseBackend(t, new Promise<void>((resolve) => (release = resolve)));
  t.after(() => release());
  const hf = spawnCluster(t, ['--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--backend', backend.url]);
  const { listenPort, controlUrl, pids } = await clusterStarted(hf);

  const clients = Array.from({ length: 6 }, () => {
    const es = new EventSource(`http://127.0.0.1:${listenPort}/events/feed`);
    t.after(() => es.close());
    const ids: string[] = [];
    es.addEventListener('message', (e: MessageEvent) => ids.push(e.lastEventId));
    return ids;
  });
  await eventually(async () => metricSum(await scrape(controlUrl), 'holdfast_held_connections') === 6, WAIT_MS, 'six held');
  assert.equal((await publish(controlUrl, [streamItem('feed', 'one', '1')])).headers.get('x-holdfast-delivered'), '6');
  await eventually(() => clients.every((ids) => ids.length === 1), WAIT_MS, 'id 1 everywhere');

  const victim = pids[0]!;
  process.kill(victim, 'SIGKILL');
  await hf.logged('worker exited unexpectedly', { workerPid: victim, signal: 'SIGKILL' });
  await hf.logged('restarting worker');
  // Published while the victim's clients are away: only history can give it to them.
  assert.equal((await publish(controlUrl, [streamItem('feed', 'two', '2', '1')])).status, 200);
  assert.equal((await publish(controlUrl, [streamItem('feed', 'three', '3', '2')])).status, 200);
  await eventually(() => backend.requests.some((r) => r.lastEventId === '1'), WAIT_MS, 'a reconnect with Last-Event-ID: 1');
  release();

  await eventually(() => clients.every((ids) => ids.length === 3), WAIT_MS, `everyone at id 3: ${JSON.stringify(clients)}`);
  for (const ids of clients) assert.deepEqual(ids, ['1', '2', '3'], 'nothing lost, nothing twice, in order');
  const reconnects = backend.requests.filter((r) => r.lastEventId === '1').length;
  assert.ok(reconnects >= 1 && reconnects < 6, `only the victim's clients reconnected (${reconnects})`);

  // The replacement is a new process in the victim's place, and serves.
  const replacement = await hf.logged('worker ready', {}, START_MS).then(async () => {
    await eventually(() => hf.workerPids().length === 3, START_MS, 'a third worker ready');
    return hf.workerPids()[2]!;
  });
  assert.ok(!pids.includes(replacement));
  assert.ok(alive(replacement));
  await eventually(async () => {
    const text = await scrape(controlUrl);
    return metricSum(text, 'holdfast_workers') === 2 && metricSum(text, 'holdfast_worker_restarts_total') === 1;
  }, WAIT_MS, 'two workers again, one restart counted');
});
