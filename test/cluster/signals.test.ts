// Signals to the primary, and the primary's own death, as the worker processes live them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../helpers/until.js';
import { WAIT_MS, alive, clusterStarted, spawnCluster } from './cluster-helpers.js';

test('SIGTERM on the primary drains the workers; a second signal stops everything at once with exit 1', async (t) => {
  const { createServer } = await import('node:http');
  const seen: string[] = [];
  // A backend that never answers keeps a request in flight, so the drain lasts until its deadline.
  const backend = createServer((req) => void seen.push(req.url ?? ''));
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    backend.closeAllConnections();
    backend.close();
  });
  const backendUrl = `http://127.0.0.1:${(backend.address() as { port: number }).port}`;
  const hf = spawnCluster(t, ['--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--backend', backendUrl, '--drain-timeout', '60000']);
  const { listenPort, pids } = await clusterStarted(hf);
  const inFlight = fetch(`http://127.0.0.1:${listenPort}/slow`).then(
    (res) => res.status,
    (err: Error) => err.name,
  );
  await eventually(() => seen.length === 1, WAIT_MS, 'the request to reach the backend');

  hf.process.kill('SIGTERM');
  await hf.logged('shutting down: draining every worker');
  await eventually(() => hf.all('draining').length === 2, WAIT_MS, 'both workers draining');
  assert.equal(hf.process.exitCode, null, 'still draining: a request is in flight');
  hf.process.kill('SIGINT');
  const { code } = await hf.exited;
  assert.equal(code, 1);
  assert.match(hf.stderr(), /^holdfast: stopped at once by a second signal\n$/);
  await eventually(() => pids.every((pid) => !alive(pid)), WAIT_MS, 'the workers gone too');
  assert.equal(await inFlight, 'TypeError', 'the in-flight request was cut');
});

test('a primary killed with SIGKILL leaves no orphans holding the ports: node:cluster exits its workers', async (t) => {
  const hf = spawnCluster(t, ['--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--backend', 'http://127.0.0.1:9']);
  const { pids } = await clusterStarted(hf);
  hf.process.kill('SIGKILL');
  await hf.exited;
  await eventually(() => pids.every((pid) => !alive(pid)), WAIT_MS, 'both workers to exit after losing the primary');
});
