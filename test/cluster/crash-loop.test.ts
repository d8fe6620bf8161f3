// A worker that cannot start (here: the file it reads went bad) is not restarted for ever. Its own file:
// seven worker starts take a while on a loaded machine.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { alive, clusterStarted, spawnCluster } from './cluster-helpers.js';

test('a worker that keeps failing at start stops the primary with HF_ERR_WORKER_CRASH_LOOP instead of looping', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-crashloop-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'holdfast.yaml');
  writeFileSync(file, 'backends: [http://127.0.0.1:9]\n');
  const hf = spawnCluster(t, ['--config', file, '--workers', '2', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0']);
  const { pids } = await clusterStarted(hf);
  // Every replacement now reads a file it cannot start with.
  writeFileSync(file, 'backends: [http://127.0.0.1:9]\nno_such_key: 1\n');
  process.kill(pids[0]!, 'SIGKILL');
  const { code } = await hf.exited;
  assert.equal(code, 1);
  const line = await hf.logged('giving up on a worker');
  assert.equal(line.code, 'HF_ERR_WORKER_CRASH_LOOP');
  assert.match(hf.stderr(), /^holdfast: a worker failed 5 times in a row before it was ready; stopping: invalid configuration/);
  assert.equal(hf.all('restarting worker').length, 5, 'the first exit and four failed starts were retried, then it stopped');
  assert.ok(!alive(pids[1]!), 'the healthy worker was drained too');
});
