// With workers, start-up errors are still one line and the exit code of a single process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alive, spawnCluster } from './cluster-helpers.js';

test('start-up errors with workers: a bad config exits 2 before forking; a port in use exits 1; one line each', async (t) => {
  const bad = spawnCluster(t, ['--workers', '2', '--backend', 'not a url']);
  const badExit = await bad.exited;
  assert.equal(badExit.code, 2);
  assert.match(bad.stderr(), /^holdfast: invalid configuration:\n {2}--backend must be .*\(backends\.0\)\n$/);
  assert.equal(bad.all('starting workers').length, 0, 'validated in the primary, nothing forked');

  const { createServer } = await import('node:net');
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const busy = spawnCluster(t, ['--workers', '2', '--listen', `127.0.0.1:${port}`, '--control', '127.0.0.1:0', '--backend', 'http://127.0.0.1:9']);
  const busyExit = await busy.exited;
  assert.equal(busyExit.code, 1);
  assert.equal(busy.stderr(), `holdfast: cannot listen for clients on 127.0.0.1:${port}: address already in use\n`);
  assert.ok(busy.workerPids().every((pid) => !alive(pid)));
});
