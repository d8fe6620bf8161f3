import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Why `dist/` cannot be trusted to be the source in `src/`, or null when it can: every `src/**\/*.ts` needs a
 * `dist/**\/*.js` at least as new. A bench that measured a stale build would record figures for code that
 * is not the code it names, so the fault and soak scripts refuse instead (`npm run build` first).
 */
export function distProblem(repoDir) {
  const src = join(repoDir, 'src');
  const dist = join(repoDir, 'dist');
  if (!existsSync(join(dist, 'main.js'))) return 'dist/main.js is missing';
  const stale = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = join(dist, relative(src, path)).replace(/\.ts$/, '.js');
        if (!existsSync(built)) stale.push(`${relative(repoDir, path)} (not built)`);
        else if (statSync(built).mtimeMs < statSync(path).mtimeMs) stale.push(`${relative(repoDir, path)} (changed since its build)`);
      }
    }
  };
  walk(src);
  if (stale.length === 0) return null;
  return `dist/ is older than src/: ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ` and ${stale.length - 5} more` : ''}`;
}

/** Exits with a clear message when dist/ is missing or stale (see distProblem). */
export function requireFreshDist(repoDir, script) {
  const problem = distProblem(repoDir);
  if (problem === null) return;
  console.error(`${script}: ${problem}. Run \`npm run build\` in the repository root first; refusing to measure another build.`);
  process.exit(2);
}
