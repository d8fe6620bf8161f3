import type { Readable } from 'node:stream';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The CLI from source, as `node --import tsx src/main.ts`; HOLDFAST_* from the test's own env are dropped. */
export function holdfast(t: TestContext, args: string[], env: Record<string, string> = {}): CliProcess {
  return spawnProcess(t, process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: ROOT, env: { ...envWithoutHoldfast(), ...env } });
}

export type CliProcess = ChildProcess & { output: Promise<CliResult> };

/** This process's environment less every HOLDFAST_* variable, so a developer's own settings cannot leak into a test. */
export function envWithoutHoldfast(): Record<string, string> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) clean[k] = v;
  return clean;
}

/** Any command as a child process (killed after the test), with its whole output and exit once it closes. */
export function spawnProcess(t: TestContext, command: string, args: string[], options: { cwd: string; env: Record<string, string> }): CliProcess {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Where a child Holdfast listens, from its `holdfast started` log line; rejects if it exits first. */
export function startedAddresses(child: CliProcess): Promise<{ listen: HostPort; control: HostPort }> {
  return new Promise((resolve, reject) => {
    readJsonLines<{ msg?: string; listen?: HostPort; control?: HostPort }>(child.stdout!, (entry) => {
      if (entry.msg === 'holdfast started' && entry.listen && entry.control) resolve({ listen: entry.listen, control: entry.control });
    });
    void child.output.then((result) => reject(new Error(`holdfast exited (${String(result.code)}) before it started:\n${result.stderr}`)));
  });
}

export interface HostPort {
  host: string;
  port: number;
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
