import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHECK_IDS } from '../../src/probe/check.js';
import { probeCommand } from '../../src/probe/command.js';
import { startBackend } from '../helpers/backend.js';
import { holdfast } from '../helpers/cli.js';
import { freePort } from '../helpers/listen.js';

test('holdfast probe: a server that cannot be reached is an error (exit 1) that names the address and the reason', async (t) => {
  const port = await freePort();
  const { code, stdout, stderr } = await holdfast(t, ['probe', `http://127.0.0.1:${port}/`]).output;
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, new RegExp(`^holdfast probe: cannot connect to 127\\.0\\.0\\.1:${port}: ECONNREFUSED\\n$`));
});

test('holdfast probe --json: one document with the documented keys, whole on stdout before the exit (0, whatever was found)', async (t) => {
  const backend = await startBackend(t);
  const json = await holdfast(t, ['probe', `${backend.url}/x`, '--json', '--idle-max', '0', '--max-requests', '3']).output;
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as Record<string, unknown> & { checks: Record<string, unknown>[] };
  assert.deepEqual(Object.keys(report), ['url', 'server', 'startedAt', 'durationMs', 'checks', 'notes', 'summary']);
  assert.equal(report.url, `${backend.url}/x`);
  assert.deepEqual(
    report.checks.map((c) => c.id),
    ['answer', 'keepalive.http11', 'keepalive.http10', 'keepalive.http10-keepalive', 'keepalive.requests', 'pipelining', 'connection-close'],
  );
  for (const c of report.checks) {
    assert.deepEqual(Object.keys(c), ['id', 'verdict', 'evidence', 'measured']);
    assert.ok(CHECK_IDS.includes(c.id as (typeof CHECK_IDS)[number]));
    assert.match(String(c.verdict), /^(ok|warn|fail|skip)$/);
  }
  assert.deepEqual(report.notes, ['keepalive.idle skipped (--idle-max 0)']);
  assert.deepEqual(Object.keys(report.summary as object), ['ok', 'warn', 'fail', 'skip']);
});

// The rest in-process: probeCommand is what main.ts prints and exits with (a child process each costs seconds).
test('holdfast probe: the text report has a line per check and a summary line', async (t) => {
  const backend = await startBackend(t);
  const text = await probeCommand([`${backend.url}/x`, '--idle-max', '0', '--max-requests', '3']);
  assert.equal(text.exitCode, 0, text.stderr);
  const lines = text.stdout.trimEnd().split('\n');
  assert.equal(lines[0], `holdfast probe ${backend.url}/x`);
  assert.equal(lines.filter((l) => /^ {2}(ok|warn|fail|skip) /.test(l)).length, 7);
  assert.match(lines.at(-1)!, /^\d+ ok, \d+ warn, \d+ fail in \d+\.\d s$/);
});

test('holdfast probe: bad usage exits 2 naming the flag or the URL; --help is the probe help', async () => {
  const cases: [string[], RegExp][] = [
    [[], /probe needs a URL/],
    [['http://127.0.0.1:1/', '--timeout', 'soon'], /--timeout: expected a whole number of at least 1, got "soon"/],
    [['ftp://127.0.0.1/'], /unsupported scheme "ftp:"/],
    [['http://127.0.0.1:1/', '--listen', '127.0.0.1:8080'], /Unknown option '--listen'/],
  ];
  for (const [args, message] of cases) {
    const { exitCode, stderr } = await probeCommand(args);
    assert.equal(exitCode, 2, args.join(' '));
    assert.match(stderr, message);
  }
  const help = await probeCommand(['--help']);
  assert.equal(help.exitCode, 0);
  assert.match(help.stdout, /^Usage: holdfast probe URL/);
});
