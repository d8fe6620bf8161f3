import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FLAGS, OTHER_ENV } from '../../src/config/flags.js';
import { deadPort, startBackend } from '../helpers/backend.js';
import { holdfast, readJsonLines, startedAddresses } from '../helpers/cli.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { within } from '../helpers/until.js';

/** A stack trace line, or Node's own parseArgs wording: neither is an answer for a person. */
const NOT_OURS = /^\s+at\s|ERR_PARSE_ARGS|To specify a positional argument/m;

async function usage(t: Parameters<typeof holdfast>[0], args: string[], env: Record<string, string> = {}) {
  const result = await holdfast(t, args, env).output;
  assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
  assert.equal(result.stdout, '');
  assert.doesNotMatch(result.stderr, NOT_OURS);
  return result.stderr;
}

test('an unknown flag exits 2 with the flag meant, in Holdfast\'s words (the table is in args.test.ts)', async (t) => {
  const [port, typo] = await Promise.all([
    usage(t, ['--port', '8090', '--backend', 'http://127.0.0.1:3000']),
    usage(t, ['publish', 'news', 'hi', '--contrl', '127.0.0.1:5561']),
  ]);
  assert.equal(port, 'holdfast: unknown option --port: Holdfast takes an address as host:port: use --listen 127.0.0.1:8090 (0.0.0.0:8090 for every interface)\nRun holdfast --help for the options.\n');
  assert.equal(typo, 'holdfast: unknown option --contrl; did you mean --control?\nRun holdfast publish --help for the options.\n');
});

test('a bad number is reported with the flag or variable it came from, not the validator\'s words', async (t) => {
  const stderr = await usage(t, ['--max-connections', 'lots', '--backend', 'http://127.0.0.1:3000'], { HOLDFAST_DRAIN_TIMEOUT: '-1' });
  assert.ok(stderr.includes("--max-connections must be a whole number ≥ 1, got 'lots'"), stderr);
  assert.ok(stderr.includes("HOLDFAST_DRAIN_TIMEOUT must be a whole number of milliseconds ≥ 0, got '-1'"), stderr);
  assert.doesNotMatch(stderr, /Invalid input|expected number/);
});

test('holdfast publish to a port where nothing listens: the socket\'s reason and a hint, exit 1', async (t) => {
  const port = await deadPort();
  const { code, stdout, stderr } = await holdfast(t, ['publish', 'news', 'hi', '--control', `127.0.0.1:${port}`]).output;
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.ok(stderr.includes(`cannot reach the control listener at 127.0.0.1:${port}: ECONNREFUSED 127.0.0.1:${port}`), stderr);
  assert.match(stderr, /is Holdfast running\? --control/);
  assert.doesNotMatch(stderr, /fetch failed/);
});

test('holdfast publish --control pointed at the client port: the backend\'s page is recognised as not Holdfast\'s control listener', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html>\n<html><head><title>Shop front</title></head><body>' + 'x'.repeat(5000) + '</body></html>');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const { code, stdout, stderr } = await holdfast(t, ['publish', 'news', 'hi', '--control', `127.0.0.1:${hf.port}`]).output;
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.ok(stderr.includes(`127.0.0.1:${hf.port} answered, but not as Holdfast's control listener: HTTP 200 text/html, a page titled "Shop front"`), stderr);
  assert.match(stderr, /--control takes the control listener/);
  assert.ok(stderr.length < 600, `one short answer, not the page: ${stderr.length} characters`);
  assert.equal(backend.seen.length, 1, 'the publish went through the client port to the backend');
});

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

  const first = await warned([], { HOLDFAST_MAX_CONECTIONS: '5', HOLDFAST_NOT_A_THING: '1' });
  const unknown = first.filter((w) => w.variable !== undefined);
  assert.deepEqual(
    unknown.map((w) => [w.variable, w.suggestion]),
    [
      ['HOLDFAST_MAX_CONECTIONS', 'HOLDFAST_MAX_CONNECTIONS'],
      ['HOLDFAST_NOT_A_THING', undefined],
    ],
  );
  assert.match(unknown[0]!.msg, /unknown environment variable HOLDFAST_MAX_CONECTIONS is ignored; did you mean HOLDFAST_MAX_CONNECTIONS\?/);
  assert.equal(first.filter((w) => w.key === 'grip.sigKey').length, 1, JSON.stringify(first));

  // A key of one's own, and only known variables: no warning at all.
  const file = join(dir, 'holdfast.yaml');
  writeFileSync(file, 'grip:\n  sigKey: a-secret-of-our-own\n');
  assert.deepEqual(await warned(['--config', file], { HOLDFAST_LOG_LEVEL: 'info' }), []);
});

test('publish --help is its own, and --help names every environment variable', async (t) => {
  const [general, publish] = await Promise.all([holdfast(t, ['--help']).output, holdfast(t, ['publish', '--help']).output]);
  assert.equal(general.code, 0);
  for (const env of [...FLAGS.map((f) => f.env), ...OTHER_ENV.map((e) => e.env)]) assert.ok(general.stdout.includes(env), env);
  assert.equal(publish.code, 0);
  assert.match(publish.stdout, /^Usage: holdfast publish CHANNEL MESSAGE/);
  for (const text of ['--control', '--id', '--event', '--key', 'HOLDFAST_PUBLISH_KEY', 'duplicate']) assert.ok(publish.stdout.includes(text), text);
  assert.ok(!publish.stdout.includes('--max-connections'), 'not the general help');
});
