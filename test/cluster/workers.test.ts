// `holdfast --workers 2` as a real child process tree: the primary, two workers sharing the client and
// control ports, bus: memory shared through the primary. Which worker holds a connection is read from
// /proc (the worker whose fd table has the server side of that TCP connection), not guessed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually } from '../helpers/until.js';
import {
  SseSocket,
  WAIT_MS,
  alive,
  clusterStarted,
  metricSum,
  ownerOf,
  pinnedClient,
  publishOn,
  scrape,
  spawnCluster,
  startSseBackend,
  streamItem,
} from './cluster-helpers.js';

test('workers: subscribers spread over both workers, one publish reaches all with the machine-wide count; order, de-dup and replay across workers; aggregated metrics; reload of all; SIGTERM drains', async (t) => {
  const backend = await startSseBackend(t);
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'holdfast.yaml');
  writeFileSync(file, `backends: [${backend.url}]\n`);
  const hf = spawnCluster(t, ['--config', file, '--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0']);
  const { listenPort, controlPort, controlUrl, pids } = await clusterStarted(hf);
  assert.equal(pids.length, 2);
  assert.notEqual(pids[0], pids[1]);

  // Subscribers: open connections until each worker holds at least three (round-robin makes that quick).
  const subscribers: { sse: SseSocket; owner: number }[] = [];
  const held = (pid: number) => subscribers.filter((s) => s.owner === pid).length;
  while (held(pids[0]!) < 3 || held(pids[1]!) < 3) {
    assert.ok(subscribers.length < 40, `40 connections and still one-sided: ${subscribers.map((s) => s.owner).join(',')}`);
    const sse = await SseSocket.open(t, listenPort, '/events/news');
    subscribers.push({ sse, owner: await ownerOf(listenPort, sse.localPort, pids) });
  }
  const total = subscribers.length;
  // Held everywhere: the aggregate counts every worker's, whichever worker answers the scrape.
  await eventually(async () => metricSum(await scrape(controlUrl), 'holdfast_held_connections') === total, WAIT_MS, `${total} held connections in /metrics`);
  for (let i = 0; i < 4; i++) {
    const text = await scrape(controlUrl);
    assert.equal(metricSum(text, 'holdfast_held_connections', 'transport="sse"'), total, 'every scrape answers for the machine');
    assert.equal(metricSum(text, 'holdfast_workers'), 2);
  }

  // Two control connections pinned to different workers.
  const controls: { pid: number; client: Awaited<ReturnType<typeof pinnedClient>>['client'] }[] = [];
  while (new Set(controls.map((c) => c.pid)).size < 2) {
    assert.ok(controls.length < 20, 'twenty control connections on one worker');
    const pinned = await pinnedClient(t, controlUrl);
    const pid = await ownerOf(controlPort, pinned.localPort, pids);
    if (!controls.some((c) => c.pid === pid)) controls.push({ pid, client: pinned.client });
  }
  const [onA, onB] = [controls[0]!.client, controls[1]!.client];

  const first = await publishOn(onA, [streamItem('news', 'hello', '1')]);
  assert.equal(first.status, 200);
  assert.equal(first.headers['x-holdfast-delivered'], String(total), 'the count covers both workers');
  for (const { sse } of subscribers) await sse.has('data: hello');

  // prev-id order across workers: 3 (after 2) published on B waits; 2 (after 1) published on A releases it.
  const early = await publishOn(onB, [streamItem('news', 'three', '3', '2')]);
  assert.equal(early.headers['x-holdfast-queued'], '1');
  const filler = await publishOn(onA, [streamItem('news', 'two', '2', '1')]);
  assert.equal(filler.status, 200);
  // De-dup across workers: 3 again, on A this time, is a duplicate.
  const again = await publishOn(onA, [streamItem('news', 'three', '3')]);
  assert.equal(again.headers['x-holdfast-duplicates'], '1');
  await publishOn(onB, [streamItem('news', 'four', '4')]);
  for (const { sse } of subscribers) {
    await sse.has('data: four');
    const order = ['hello', 'two', 'three', 'four'].map((d) => sse.text.indexOf(`data: ${d}\n`));
    assert.ok(order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)), `in order on port ${sse.localPort}: ${order.join(',')}`);
    assert.equal(sse.text.split('data: three\n').length, 2, 'three arrived once');
  }

  // Replay on another worker: a client last saw id 2 on worker A; it comes back on worker B with Last-Event-ID.
  let replayed: SseSocket | undefined;
  for (let i = 0; i < 20 && replayed === undefined; i++) {
    const sse = await SseSocket.open(t, listenPort, '/events/news', '2');
    if ((await ownerOf(listenPort, sse.localPort, pids)) === controls[1]!.pid) replayed = sse;
    else sse.socket.destroy();
  }
  assert.ok(replayed !== undefined, 'a reconnect landed on the other worker');
  await replayed.has('data: four');
  assert.ok(!replayed.text.includes('data: two\n'), 'nothing before the Last-Event-ID');
  assert.ok(replayed.text.indexOf('data: three\n') < replayed.text.indexOf('data: four\n'));

  // SIGHUP on the primary reloads every worker.
  const reloadsBefore = hf.all('config reloaded').length;
  hf.process.kill('SIGHUP');
  await hf.logged('workers reloaded', { applied: 2, workers: 2 });
  await eventually(() => hf.all('config reloaded').length === reloadsBefore + 2, WAIT_MS, 'both workers to log their reload');
  assert.deepEqual(new Set(hf.all('config reloaded').slice(reloadsBefore).map((l) => l.pid)), new Set(pids));
  // POST /reload, whichever worker takes it, reloads both and says so.
  const reload = await fetch(`${controlUrl}/reload`, { method: 'POST' });
  assert.equal(reload.status, 200);
  assert.equal(await reload.text(), 'reloaded 2 of 2 workers\n');
  // A bad file is refused before any worker sees it, with every bad key.
  writeFileSync(file, `backends: [${backend.url}]\nno_such_key: 1\n`);
  const refused = await fetch(`${controlUrl}/reload`, { method: 'POST' });
  assert.equal(refused.status, 400);
  assert.equal(refused.headers.get('x-holdfast-error'), 'HF_ERR_CONFIG');
  assert.match(await refused.text(), /no_such_key/);
  writeFileSync(file, `backends: [${backend.url}]\n`);

  // SIGTERM drains every worker; the primary exits 0 once they have.
  for (const c of controls) await c.client.close();
  hf.process.kill('SIGTERM');
  const { code, signal } = await hf.exited;
  assert.equal(signal, null);
  assert.equal(code, 0, hf.stderr());
  assert.equal(hf.all('drained').length, 2, 'each worker ran its drain');
  assert.ok(pids.every((pid) => !alive(pid)), 'no worker outlives the primary');
  for (const { sse } of subscribers) await eventually(() => sse.closed, WAIT_MS, 'held clients closed by the drain');
});
