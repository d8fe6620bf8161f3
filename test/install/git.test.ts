import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/cli.js';
import { NPM_QUIET, checkInstalledCommand, cleanDir, run } from './install-helpers.js';

// npm installs a git dependency by cloning it, installing its devDependencies (typescript) and running its
// `prepare`: without that script there is no dist/ and no command. This installs the checkout's HEAD commit
// (what a clone would get), not uncommitted changes.
const isGitCheckout = spawnSync('git', ['rev-parse', '--verify', 'HEAD'], { cwd: ROOT }).status === 0;

test('npm i git+file://<repository>: prepare builds dist/ and node_modules/.bin/holdfast works', { timeout: 175_000, skip: isGitCheckout ? false : 'not a git checkout' }, async (t) => {
  const dir = cleanDir(t, 'git');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'holdfast-install-check', version: '1.0.0', private: true }));
  await run(t, 'npm', ['install', `git+${pathToFileURL(ROOT).href.replace(/\/$/, '')}`, ...NPM_QUIET], dir);
  await checkInstalledCommand(t, join(dir, 'node_modules', '.bin'), dir);
});
