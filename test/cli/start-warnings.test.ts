import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { holdfast, readJsonLines, startedAddresses } from '../helpers/cli.js';
import { within } from '../helpers/until.js';

test('unknown HOLDFAST_* variables and the example grip.sigKey are warned about at start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-warn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const args = ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--backend', 'http://127.0.0.1:3000'];
  const warned = async (extraArgs: string[], env: Record<string, string>) => {
    const child = holdfast(t, [...args, ...extraArgs], env);
    const warnings: { msg: string; variable?: string; suggestion?: string; key?: string }[] = [];
    readJsonLines<{ level: number; msg: string }>(child.stdout!, (line) => {
      if (line.level === 40) warnings.push(line);
    });
    // Warnings are logged before the listeners start, so all of them are in once it started.
    await within(startedAddresses(child), 60_000, 'holdfast to start');
    child.kill('SIGTERM');
    await child.output;
    return warnings;
  };

  const first = await warned([], { HOLDFAST_MAX_CONECTIONS: '5', HOLDFAST_NOT_A_THING: '1', HOLDFAST_HTTP1_ENGINE: 'nodehttp' });
  const unknown = first.filter((w) => w.variable !== undefined);
  assert.deepEqual(
    unknown.map((w) => [w.variable, w.suggestion]),
    [
      ['HOLDFAST_HTTP1_ENGINE', undefined],
      ['HOLDFAST_MAX_CONECTIONS', 'HOLDFAST_MAX_CONNECTIONS'],
      ['HOLDFAST_NOT_A_THING', undefined],
    ],
  );
  assert.match(unknown[0]!.msg, /HOLDFAST_HTTP1_ENGINE="nodehttp" is ignored: it is llhttp or node-http/);
  assert.match(unknown[1]!.msg, /unknown environment variable HOLDFAST_MAX_CONECTIONS is ignored; did you mean HOLDFAST_MAX_CONNECTIONS\?/);
  assert.equal(first.filter((w) => w.key === 'grip.sigKey').length, 1, JSON.stringify(first));

  // A key of one's own, and only known variables: no warning at all.
  const file = join(dir, 'holdfast.yaml');
  writeFileSync(file, 'grip:\n  sigKey: a-secret-of-our-own\n');
  // (HOLDFAST_HTTP1_ENGINE is a known variable: before it was listed, setting it was warned about as unknown.)
  assert.deepEqual(await warned(['--config', file], { HOLDFAST_LOG_LEVEL: 'info', HOLDFAST_HTTP1_ENGINE: 'node-http' }), []);
});
