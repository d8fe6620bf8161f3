import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clientConnectionCap, CONTROL_RESERVE, fdBudget, parseOpenFilesLimit, PROCESS_RESERVE } from '../../src/edge/fd-budget.js';
import { HoldfastError } from '../../src/errors.js';
import { createLogger } from '../../src/observe/log.js';
import { LogSink } from '../helpers/holdfast.js';
import { validateConfig } from '../../src/config/load.js';
import { HeldStream, startGripBackend } from '../hold/push-helpers.js';
import { eventually, within } from '../helpers/until.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FD_LIMIT = 256;
const POOL = 8;
const EFFECTIVE = FD_LIMIT - POOL - CONTROL_RESERVE - PROCESS_RESERVE;
const EXTRA = 10;

/** Holdfast from source in a child process whose soft open-files limit is `limit`; its JSON log lines. */
function holdfastUnderLimit(t: TestContext, limit: number, args: string[]) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) env[k] = v;
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const child = spawn('sh', ['-c', `ulimit -n ${limit}; exec "${process.execPath}" --import tsx src/main.ts ${quoted}`], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop()!;
    for (const line of parts) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return { child, lines, stderr: () => stderr };
}

/** Writes `request` on a fresh raw connection and resolves to every byte until the server closes it. */
function rawUntilClose(socket: Socket, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
    socket.write(request);
  });
}

async function rawConnect(t: TestContext, port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

test('fd budget: the soft open-files limit is read from /proc/self/limits; the reserve is pools + bus + control + process', () => {
  const text = [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max processes             63704                63704                processes ',
    'Max open files            20000                524288               files     ',
  ].join('\n');
  assert.equal(parseOpenFilesLimit(text), 20_000);
  assert.equal(parseOpenFilesLimit(text.replace('20000 ', 'unlimited')), null);
  const config = validateConfig({
    groups: {
      api: { servers: [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }], maxConcurrentPerServer: 16, healthCheck: { path: '/h' } },
    },
    backends: ['http://127.0.0.1:3'],
    routes: [{ group: 'api', pathPrefix: '/api' }],
    bus: { url: 'redis://127.0.0.1:6379' },
    limits: { maxConnections: 30_000 },
  });
  const budget = fdBudget(config, 20_000);
  // api: 2 servers x (16 + 1 health check); default: 1 x 128.
  assert.deepEqual(budget.reserve, { backendPools: 2 * 17 + 128, bus: 4, control: CONTROL_RESERVE, process: PROCESS_RESERVE, total: 162 + 4 + CONTROL_RESERVE + PROCESS_RESERVE });
  assert.equal(budget.effective, 20_000 - budget.reserve.total);
  assert.equal(fdBudget(validateConfig({ backends: ['http://127.0.0.1:3'] }), 20_000).effective, 10_000, 'the default fits: unchanged');
});

test('fd budget: a limit that leaves no room stops the start naming it; an unknown limit changes nothing', () => {
  const config = validateConfig({ backends: ['http://127.0.0.1:3'] });
  const sink = new LogSink();
  const log = createLogger('debug', sink);
  assert.throws(
    () => clientConnectionCap(config, log, () => 200),
    (err: unknown) => err instanceof HoldfastError && err.code === 'HF_ERR_FD_LIMIT' && err.message.includes('200'),
  );
  assert.equal(clientConnectionCap(config, log, () => null), 10_000);
  assert.equal(clientConnectionCap(config, log, () => 20_000), 10_000);
  assert.equal(sink.lines.filter((l) => l.level === 40).length, 0, 'no warning when nothing was lowered');
});

test('under a low open-files limit: maxConnections is lowered with one warning naming the numbers; past it clients get 503 while the control listener answers and a publish reaches every held client', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('fan');
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end();
  });
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-fd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'holdfast.json');
  // A sigKey of its own: the example one is warned about too, and this test counts the warnings.
  writeFileSync(configFile, JSON.stringify({ upstream: { maxConnectionsPerBackend: POOL }, grip: { sigKey: 'fd-limit-test' } }));
  const hf = holdfastUnderLimit(t, FD_LIMIT, [
    '--config', configFile,
    '--listen', '127.0.0.1:0',
    '--control', '127.0.0.1:0',
    '--backend', backend.url,
    '--log-level', 'info',
  ]);
  await eventually(() => hf.lines.some((l) => l.msg === 'holdfast started') || hf.child.exitCode !== null, 60_000, 'Holdfast to start');
  const started = hf.lines.find((l) => l.msg === 'holdfast started');
  assert.ok(started !== undefined, `started; stderr: ${hf.stderr()}`);
  const port = (started.listen as { port: number }).port;
  const control = `http://127.0.0.1:${(started.control as { port: number }).port}`;

  const warnings = hf.lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  const warning = warnings[0]!;
  assert.equal(warning.openFilesLimit, FD_LIMIT);
  assert.equal(warning.configured, 10_000);
  assert.equal(warning.effective, EFFECTIVE);
  assert.deepEqual(warning.reserved, {
    backendPools: POOL,
    bus: 0,
    control: CONTROL_RESERVE,
    process: PROCESS_RESERVE,
    total: POOL + CONTROL_RESERVE + PROCESS_RESERVE,
  });
  for (const n of [FD_LIMIT, 10_000, EFFECTIVE]) assert.ok(String(warning.msg).includes(String(n)), `${String(warning.msg)} names ${n}`);
  assert.equal(started.maxConnections, EFFECTIVE);

  // Up to the effective limit: held SSE streams, each one connection.
  const held: HeldStream[] = [];
  for (let i = 0; i < EFFECTIVE; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, EFFECTIVE - i) }, (_, k) => HeldStream.open(t, port, `/sub/${i + k}`)),
    );
    await within(Promise.all(batch.map((s) => s.waitHead())), 30_000, `heads ${i}..${i + batch.length - 1}`);
    for (const s of batch) assert.equal(s.status, 200);
    held.push(...batch);
  }
  const metric = async (name: string) => {
    const text = await (await fetch(`${control}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };
  await eventually(async () => (await metric('holdfast_subscriptions')) === EFFECTIVE, 30_000, `${EFFECTIVE} subscriptions`);
  assert.equal(await metric('holdfast_client_connections_max'), EFFECTIVE);

  // And beyond: accepted, not yet answered (each holds a descriptor meanwhile).
  const extra = await Promise.all(Array.from({ length: EXTRA }, () => rawConnect(t, port)));

  // The control listener is still reachable.
  // (Connected in the kernel is not yet accepted by Holdfast, so the open-connections gauge is not asserted.)
  assert.equal(await metric('holdfast_client_connections_max'), EFFECTIVE);
  const health = await fetch(`${control}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok\n');
  const published = await fetch(`${control}/publish/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items: [{ channel: 'fan', id: 'm1', formats: { 'http-stream': { content: 'data: to everyone\n\n' } } }] }),
  });
  assert.equal(published.status, 200);
  assert.equal(published.headers.get('x-holdfast-delivered'), String(EFFECTIVE));
  await within(Promise.all(held.map((s) => s.waitForText('data: to everyone'))), 30_000, 'the publish at every held client');

  // The extra ones: the edge's 503 with Retry-After, then a close; never a reset without an answer.
  const answers = await within(
    Promise.all(extra.map((s) => rawUntilClose(s, 'GET /sub/extra HTTP/1.1\r\nHost: x\r\n\r\n'))),
    30_000,
    'the refused connections to be answered',
  );
  for (const answer of answers) {
    assert.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(answer, /\r\nx-holdfast-error: HF_ERR_CONNECTION_LIMIT\r\n/);
    assert.match(answer, /\r\nretry-after: \d+\r\n/);
  }
  const rejected = await (await fetch(`${control}/metrics`)).text();
  assert.match(rejected, new RegExp(`^holdfast_client_connections_rejected_total\\{limit="global",code="HF_ERR_CONNECTION_LIMIT"\\} ${EXTRA}$`, 'm'));
  assert.equal(held.filter((s) => s.closed).length, 0, 'no held client was dropped');
});
