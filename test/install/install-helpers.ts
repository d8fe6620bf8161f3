import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { envWithoutHoldfast, spawnProcess, startedAddresses, type CliResult } from '../helpers/cli.js';
import { within } from '../helpers/until.js';

/** An empty directory of its own, removed after the test: every install starts from nothing. */
export function cleanDir(t: TestContext, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `holdfast-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The environment for npm and the installed command: no HOLDFAST_* settings, none of the variables `npm test`
 * sets for its own package (they would point npm back at this checkout), and `binDir` first on the PATH.
 */
export function installEnv(binDir?: string): Record<string, string> {
  const env = envWithoutHoldfast();
  for (const key of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_|^npm_config_(prefix|global|local_prefix)$/i.test(key)) delete env[key];
  }
  if (binDir !== undefined) env.PATH = `${binDir}${delimiter}${env.PATH ?? ''}`;
  return env;
}

/** Runs a command to its end (bounded), failing the test with its output when it exits non-zero. */
export async function run(t: TestContext, command: string, args: string[], cwd: string, env = installEnv(), timeoutMs = 150_000): Promise<CliResult> {
  const result = await within(spawnProcess(t, command, args, { cwd, env }).output, timeoutMs, `${command} ${args.join(' ')}`);
  assert.equal(result.code, 0, `${command} ${args.join(' ')} exited ${String(result.code)}:\n${result.stderr}`);
  return result;
}

/** npm from its cache where it can (the tests reach no registry but npm's own), without audit or funding calls. */
export const NPM_QUIET = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/**
 * What a user would try first with a `holdfast` found on `binDir`: --version, --help, then a start whose
 * control listener answers /healthz.
 */
export async function checkInstalledCommand(t: TestContext, binDir: string, cwd: string): Promise<void> {
  const env = installEnv(binDir);
  const version = await run(t, 'holdfast', ['--version'], cwd, env, 30_000);
  assert.match(version.stdout, /^holdfast \d+\.\d+\.\d+/);
  const help = await run(t, 'holdfast', ['--help'], cwd, env, 30_000);
  assert.match(help.stdout, /Usage:/);

  const server = spawnProcess(t, 'holdfast', ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--backend', 'http://127.0.0.1:9'], { cwd, env });
  const { control } = await within(startedAddresses(server), 60_000, 'the installed holdfast to start');
  const health = await fetch(`http://127.0.0.1:${control.port}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  server.kill('SIGTERM');
  assert.equal((await within(server.output, 30_000, 'the installed holdfast to drain')).code, 0);
}
