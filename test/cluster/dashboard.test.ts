import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterStarted, spawnCluster, WAIT_MS } from './cluster-helpers.js';
import { eventually } from '../helpers/until.js';

test('dashboard with workers: the feed says which worker its numbers are from', async (t) => {
  const hf = spawnCluster(t, ['--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--backend', 'http://127.0.0.1:9']);
  const { controlUrl, pids } = await clusterStarted(hf);
  const res = await fetch(`${controlUrl}/dashboard/events`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  let text = '';
  await eventually(async () => {
    const { value } = await reader.read();
    text += Buffer.from(value ?? new Uint8Array()).toString('utf8');
    return /event: snapshot\ndata: .*\n\n/.test(text);
  }, WAIT_MS, 'a snapshot');
  await reader.cancel();
  const snapshot = JSON.parse(/event: snapshot\ndata: (.*)\n\n/.exec(text)![1]!) as { scope: string };
  const scope = /^worker (\d+) only \(pid (\d+)\); \/metrics sums every worker$/.exec(snapshot.scope);
  assert.ok(scope !== null, snapshot.scope);
  assert.ok(pids.includes(Number(scope[2])), `the pid of one of the workers (${pids.join(', ')})`);
});
