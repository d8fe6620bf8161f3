import { execFileSync } from 'node:child_process';

/**
 * What a recorded result was measured on: the commit checked out, and " (with uncommitted changes)" when any
 * of `paths` differs from it. Read at the start of a run, since a branch may get commits during a long one.
 */
export function checkoutInfo(repoDir, paths) {
  const git = (args) => {
    try {
      return execFileSync('git', args, { cwd: repoDir, encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  };
  const commit = git(['rev-parse', '--short=12', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', ...paths]) !== '' ? ' (with uncommitted changes)' : '';
  return { commit, dirty };
}
