import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli.js';
import { NPM_QUIET, checkInstalledCommand, cleanDir, run } from './install-helpers.js';

interface PackResult {
  filename: string;
  files: { path: string }[];
}

test('npm pack, then npm i -g of the tarball: a working holdfast on the PATH, and the tarball ships what it runs on', { timeout: 175_000 }, async (t) => {
  const dir = cleanDir(t, 'pack');
  // npm pack runs `prepare` (the build), so the tarball has a fresh dist/ whatever this checkout's state.
  const packed = await run(t, 'npm', ['pack', '--json', '--pack-destination', dir, ...NPM_QUIET], ROOT);
  const [pack] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as PackResult[];
  const files = pack!.files.map((f) => f.path);
  for (const needed of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/main.js', 'dist/holdfast.js']) {
    assert.ok(files.includes(needed), `the tarball has ${needed}`);
  }
  const stray = files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'].includes(f));
  assert.deepEqual(stray, [], 'nothing but dist/ and the docs: no test/, src/, bench/ or deploy/');

  const prefix = join(dir, 'global');
  await run(t, 'npm', ['install', '--global', '--prefix', prefix, join(dir, pack!.filename), ...NPM_QUIET], dir);
  await checkInstalledCommand(t, join(prefix, 'bin'), dir);
});
