import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../helpers/backend.js';
import { readJsonLines } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('SIGHUP reloads the config file: new routes for new requests; a bad file is refused and the old config keeps serving', async (t) => {
  const [one, two] = await Promise.all([
    startBackend(t, (_req, res) => void res.end('one')),
    startBackend(t, (_req, res) => void res.end('two')),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-reload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'holdfast.yaml');
  const configFor = (url: string) =>
    ['listen: 127.0.0.1:0', 'control: 127.0.0.1:0', 'groups:', '  app:', '    servers:', `      - url: ${url}`, 'routes:', '  - group: app', ''].join('\n');
  writeFileSync(file, configFor(one.url));

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) env[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { msg: string; from: number; resolve: (l: Record<string, unknown>) => void }[] = [];
  readJsonLines(child.stdout, (entry) => {
    logs.push(entry);
    for (const w of waiters.splice(0)) {
      if (w.msg === entry.msg && logs.length > w.from) w.resolve(entry);
      else waiters.push(w);
    }
  });
  /** The next line with this msg logged from now on. */
  const next = (msg: string) => new Promise<Record<string, unknown>>((resolve) => waiters.push({ msg, from: logs.length, resolve }));

  const started = await next('holdfast started');
  const url = `http://127.0.0.1:${(started.listen as { port: number }).port}/`;
  const body = async () => (await request(url)).body.text();
  assert.equal(await body(), 'one');

  writeFileSync(file, configFor(two.url));
  const reloaded = next('config reloaded');
  child.kill('SIGHUP');
  await reloaded;
  assert.equal(await body(), 'two');

  writeFileSync(file, `${configFor(two.url)}  - group: missing\n`);
  const refused = next('config reload refused, the running one stays');
  child.kill('SIGHUP');
  const line = await refused;
  assert.equal(line.code, 'HF_ERR_CONFIG');
  assert.ok(String(line.err).includes('routes.1.group'), String(line.err));
  assert.equal(await body(), 'two', 'still serving with the previous configuration');
  assert.equal(child.exitCode, null, 'still running');
});
