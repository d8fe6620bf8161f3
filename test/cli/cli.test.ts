import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import { FLAGS } from '../../src/config/flags.js';
import { startBackend } from '../helpers/backend.js';
import { holdfast } from '../helpers/cli.js';

/** A stack trace line, as Node prints them. */
const STACK_LINE = /^\s+at\s/m;

test('--help exits 0 and documents every flag with its environment variable', async (t) => {
  const { code, stdout, stderr } = await holdfast(t, ['--help']).output;
  assert.equal(code, 0);
  assert.equal(stderr, '');
  for (const f of FLAGS) {
    assert.ok(stdout.includes(`--${f.flag} `), `--${f.flag} is documented`);
    assert.ok(stdout.includes(f.env), `${f.env} is documented`);
  }
  assert.ok(stdout.includes('--config'));
  assert.ok(stdout.includes('demo'));
});

test('--version exits 0', async (t) => {
  const { code, stdout } = await holdfast(t, ['--version']).output;
  assert.equal(code, 0);
  assert.match(stdout, /^holdfast \d+\.\d+\.\d+\n$/);
});

test('bad values exit 2 with every bad key path in stderr and no stack trace', async (t) => {
  const { code, stdout, stderr } = await holdfast(
    t,
    ['--backend', 'ftp://files.test', '--max-connections', 'lots', '--listen', 'nowhere', '--log-level', 'loud'],
    { HOLDFAST_UPSTREAM_TIMEOUT: '-5' },
  ).output;
  assert.equal(code, 2);
  for (const path of ['backends.0', 'limits.maxConnections', 'listen', 'log.level', 'timeouts.upstreamResponseMs']) {
    assert.ok(stderr.includes(path), `stderr names ${path}:\n${stderr}`);
  }
  for (const value of ['ftp://files.test', 'lots', 'nowhere', 'loud', '-5']) assert.ok(stderr.includes(value), value);
  assert.doesNotMatch(stderr, STACK_LINE);
  assert.equal(stdout, '', 'nothing started, nothing logged');
});

test('a config file with a renamed key exits 2 naming its successor; a missing file exits 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'holdfast.yaml');
  writeFileSync(file, 'backend: http://127.0.0.1:1\nlimits:\n  maxconn: 5\n');
  const renamed = await holdfast(t, ['--config', file]).output;
  assert.equal(renamed.code, 2);
  for (const text of ['backend', 'backends', 'limits.maxconn', 'limits.maxConnections']) assert.ok(renamed.stderr.includes(text), text);
  assert.doesNotMatch(renamed.stderr, STACK_LINE);

  const missing = await holdfast(t, ['--backend', 'http://127.0.0.1:1'], { HOLDFAST_CONFIG: join(dir, 'nope.yaml') }).output;
  assert.equal(missing.code, 2);
  assert.ok(missing.stderr.includes('nope.yaml'), 'HOLDFAST_CONFIG names the file');
  assert.doesNotMatch(missing.stderr, STACK_LINE);
});

test('no backend exits 2 naming backends', async (t) => {
  const { code, stderr } = await holdfast(t, []).output;
  assert.equal(code, 2);
  assert.ok(stderr.includes('backends'));
  assert.doesNotMatch(stderr, STACK_LINE);
});

test('an unknown flag or command exits 2 without a stack trace', async (t) => {
  const flag = await holdfast(t, ['--backend', 'http://127.0.0.1:1', '--bogus-flag', 'x']).output;
  assert.equal(flag.code, 2);
  assert.ok(flag.stderr.includes('--bogus-flag'));
  assert.doesNotMatch(flag.stderr, STACK_LINE);

  const command = await holdfast(t, ['serve-everything']).output;
  assert.equal(command.code, 2);
  assert.ok(command.stderr.includes('serve-everything'));
  assert.doesNotMatch(command.stderr, STACK_LINE);
});

test('a port already in use is a one-line error, exit 1', async (t) => {
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => squatter.close());
  const port = (squatter.address() as AddressInfo).port;
  const { code, stderr } = await holdfast(t, [
    '--listen',
    `127.0.0.1:${port}`,
    '--control',
    '127.0.0.1:0',
    '--backend',
    'http://127.0.0.1:1',
  ]).output;
  assert.equal(code, 1);
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line: ${JSON.stringify(stderr)}`);
  assert.ok(lines[0]!.includes(String(port)));
  assert.doesNotMatch(stderr, STACK_LINE);
});

test('the control port already in use is a one-line error too', async (t) => {
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => squatter.close());
  const port = (squatter.address() as AddressInfo).port;
  const { code, stderr } = await holdfast(t, ['--listen', '127.0.0.1:0', '--control', `127.0.0.1:${port}`, '--backend', 'http://127.0.0.1:1'])
    .output;
  assert.equal(code, 1);
  assert.equal(stderr.split('\n').filter((l) => l !== '').length, 1, stderr);
  assert.doesNotMatch(stderr, STACK_LINE);
});

/** Resolves with the first match of `pattern` in what the stream printed so far or prints later. */
function waitForOutput(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const match = pattern.exec(text);
      if (match) {
        stream.off('data', onData);
        resolve(match);
      }
    };
    stream.on('data', onData);
    stream.once('end', () => reject(new Error(`stream ended without ${String(pattern)}: ${text}`)));
  });
}

test('holdfast demo serves the demo page through Holdfast and stops on SIGTERM', async (t) => {
  const child = holdfast(t, ['demo', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--log-level', 'warn']);
  const [, url] = await waitForOutput(child.stderr!, /open (http:\/\/127\.0\.0\.1:\d+\/)/);
  const page = await request(url!);
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /text\/html/);
  assert.ok((await page.body.text()).includes('Holdfast'));

  // What the demo backend saw: the request came through Holdfast.
  const info = await request(`${url!}api/info`);
  assert.equal(info.statusCode, 200);
  const seen = (await info.body.json()) as { via: string; forwardedFor: string; requests: number };
  assert.equal(seen.via, '1.1 holdfast');
  assert.equal(seen.forwardedFor, '127.0.0.1');
  assert.equal(seen.requests, 2);

  child.kill('SIGTERM');
  const { code, signal } = await child.output;
  assert.equal(signal, null);
  assert.equal(code, 0);
});

test('a running Holdfast stops on SIGINT with exit 0', async (t) => {
  const backend = await startBackend(t);
  const child = holdfast(t, ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--backend', backend.url]);
  const [line] = await waitForOutput(child.stdout!, /\{[^\n]*"holdfast started"[^\n]*\}/);
  const started = JSON.parse(line) as { listen: { port: number } };
  const res = await request(`http://127.0.0.1:${started.listen.port}/hello`);
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'GET /hello\n');
  assert.equal(backend.seen.length, 1);
  child.kill('SIGINT');
  assert.equal((await child.output).code, 0);
});
