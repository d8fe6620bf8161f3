import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Holdfast as committed at `ref`, not whatever dist/ holds while others edit src/: `git archive` of the
 * commit's src and tsconfigs into `<runDir>/build-<sha>/`, compiled with the repository's tsc (modules resolve
 * up to its node_modules, so a commit that adds a dependency needs `npm ci` at the root first). The same
 * builder for bench/fanout/run.mjs --ref and bench/scale/run.mjs --ref. Returns { sha, mainJs }.
 */
export function buildRef(repoDir, runDir, ref) {
  const sha = execFileSync('git', ['rev-parse', '--short=12', `${ref}^{commit}`], { cwd: repoDir, encoding: 'utf8' }).trim();
  const dir = join(runDir, `build-${sha}`);
  const mainJs = join(dir, 'dist', 'main.js');
  if (!existsSync(mainJs)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${sha} src tsconfig.json tsconfig.build.json package.json | tar -x -C "${dir}"`], { cwd: repoDir });
    execFileSync(process.execPath, [join(repoDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' });
  }
  return { sha, mainJs };
}
