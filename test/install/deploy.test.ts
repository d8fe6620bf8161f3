import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { parseHostPort } from '../../src/config/schema.js';
import { ROOT, spawnProcess } from '../helpers/cli.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { within } from '../helpers/until.js';

// No Docker daemon runs on these machines (and no registry but npm's is reachable for its base image), so
// the Dockerfile is checked the way a build would fail first: what it copies, what it runs, what it probes.
const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const instructions = dockerfile
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const example = loadConfig({ file: join(ROOT, 'deploy/holdfast.yaml') });

test('the Dockerfile: two node:20-bookworm-slim stages, npm ci in each, every COPY source in the repository and in the build context', () => {
  const froms = instructions.filter((i) => i.startsWith('FROM '));
  assert.deepEqual(froms, ['FROM node:20-bookworm-slim AS build', 'FROM node:20-bookworm-slim']);
  const runtime = instructions.slice(instructions.indexOf(froms[1]!));
  assert.ok(instructions.some((i) => i.startsWith('RUN npm ci')), 'the build stage installs from the lockfile');
  assert.ok(runtime.some((i) => /^RUN npm ci --omit=dev/.test(i)), 'the runtime stage has production dependencies only');
  assert.ok(runtime.some((i) => /^USER (?!root|0\b)\S+/.test(i)), 'the runtime stage runs as a non-root user');

  // .dockerignore here excludes everything, then lets in what the image needs.
  const allowed = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('!'))
    .map((line) => line.slice(1).replace(/\/$/, ''));
  for (const copy of instructions.filter((i) => i.startsWith('COPY ') && !i.includes('--from='))) {
    const sources = copy.split(/\s+/).slice(1, -1);
    for (const source of sources) {
      assert.ok(existsSync(join(ROOT, source)), `${copy}: ${source} exists`);
      assert.ok(allowed.some((a) => source === a || source.startsWith(`${a}/`)), `${copy}: ${source} is in the build context`);
    }
  }
  const cmd = /^CMD \[(.*)\]$/m.exec(instructions.join('\n'));
  const mainJs = (JSON.parse(`[${cmd![1]!}]`) as string[]).find((arg) => arg.endsWith('.js'));
  assert.equal(mainJs, 'dist/main.js');
  assert.ok(existsSync(join(ROOT, 'src/main.ts')), 'the build stage compiles src/main.ts into dist/main.js');
});

test('the Dockerfile exposes the example config\'s ports, and its HEALTHCHECK passes against a real control listener', async (t) => {
  const expose = instructions.find((i) => i.startsWith('EXPOSE '))!.split(/\s+/).slice(1);
  const listen = parseHostPort(example.listen)!;
  const control = parseHostPort(example.control)!;
  assert.deepEqual(expose, [String(listen.port), String(control.port)]);
  assert.ok(instructions.some((i) => i.startsWith('ENV ') && i.includes('HOLDFAST_CONFIG=/etc/holdfast/holdfast.yaml')));

  const health = /^HEALTHCHECK .*CMD \[(.*)\]$/m.exec(instructions.join('\n'));
  const [command, ...args] = JSON.parse(`[${health![1]!}]`) as string[];
  assert.equal(command, 'node', 'slim has no curl: the probe is Node');
  const probeAt = `${control.host}:${control.port}`;
  assert.ok(args.join(' ').includes(`http://${probeAt}/healthz`), `the probe asks the example's control listener (${probeAt})`);
  const hf = await startTestHoldfast(t, ['http://127.0.0.1:9']);
  const probe = (port: number) =>
    within(spawnProcess(t, process.execPath, args.map((a) => a.replace(probeAt, `127.0.0.1:${port}`)), { cwd: ROOT, env: {} }).output, 30_000, 'the health probe');
  assert.equal((await probe(hf.controlAddress.port)).code, 0, 'healthy Holdfast: exit 0');
  const closed = hf.controlAddress.port;
  await hf.close();
  assert.equal((await probe(closed)).code, 1, 'nothing listening: exit 1');
});

test('holdfast.service: restart on failure, SIGTERM with a stop timeout beyond the drain deadline, SIGHUP reload, raised LimitNOFILE', (t) => {
  const unitPath = join(ROOT, 'deploy/holdfast.service');
  const unit = readFileSync(unitPath, 'utf8');
  const setting = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];
  assert.equal(setting('Restart'), 'on-failure');
  assert.equal(setting('KillSignal'), 'SIGTERM');
  assert.ok(Number(setting('TimeoutStopSec')) * 1000 > example.timeouts.drainMs, 'systemd waits out the drain before SIGKILL');
  assert.match(setting('ExecReload') ?? '', /kill -HUP \$MAINPID/);
  assert.ok(Number(setting('LimitNOFILE')) >= 65_536);
  assert.ok(setting('DynamicUser') === 'yes' || setting('User') !== undefined, 'not root');
  assert.equal(setting('Environment'), 'HOLDFAST_CONFIG=/etc/holdfast/holdfast.yaml');
  const analyze = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
  if (analyze.error === undefined) assert.equal(analyze.status, 0, analyze.stderr);
  else t.diagnostic('systemd-analyze is not installed: the unit was checked by its settings only');
});
