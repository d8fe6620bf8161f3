import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLAGS, OTHER_ENV } from '../../src/config/flags.js';
import { holdfast } from '../helpers/cli.js';

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

test('publish --help is its own, and --help names every environment variable', async (t) => {
  const [general, publish] = await Promise.all([holdfast(t, ['--help']).output, holdfast(t, ['publish', '--help']).output]);
  assert.equal(general.code, 0);
  for (const env of [...FLAGS.map((f) => f.env), ...OTHER_ENV.map((e) => e.env)]) assert.ok(general.stdout.includes(env), env);
  assert.equal(publish.code, 0);
  assert.match(publish.stdout, /^Usage: holdfast publish CHANNEL MESSAGE/);
  for (const text of ['--control', '--id', '--event', '--key', 'HOLDFAST_PUBLISH_KEY', 'duplicate']) assert.ok(publish.stdout.includes(text), text);
  assert.ok(!publish.stdout.includes('--max-connections'), 'not the general help');
});
