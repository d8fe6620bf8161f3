import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ROOT } from './cli.js';

export interface Cert {
  cert: string;
  key: string;
}

/** A temporary directory for certificate files, removed after the test. */
export function certDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A self-signed certificate for `names` (the first is its CN and file name), made by the repo's script. */
export function makeCert(dir: string, ...names: string[]): Cert {
  const [cert, key] = execFileSync(join(ROOT, 'scripts', 'make-cert.sh'), [dir, ...names], { encoding: 'utf8' }).trim().split('\n');
  return { cert: cert!, key: key! };
}
