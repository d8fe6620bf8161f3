import type { Readable } from 'node:stream';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The CLI from source, as `node --import tsx src/main.ts`; HOLDFAST_* from the test's own env are dropped. */
export function holdfast(t: TestContext, args: string[], env: Record<string, string> = {}): ChildProcess & { output: Promise<CliResult> } {
  const cleanEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) cleanEnv[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env: { ...cleanEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const output = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout,
    stderr,
  }));
  return Object.assign(child, { output });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}


/** Calls `onEntry` with each JSON log line a child writes to `stream` (pino's output), whole lines only. */
export function readJsonLines<T = Record<string, unknown>>(stream: Readable, onEntry: (entry: T) => void): void {
  let partial = '';
  stream.setEncoding('utf8').on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') onEntry(JSON.parse(line) as T);
  });
}
