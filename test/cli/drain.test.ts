import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { request } from 'undici';
import { startBackend } from '../helpers/backend.js';
import { RawClient } from '../helpers/raw.js';
import { readJsonLines } from '../helpers/cli.js';
import { eventually } from '../helpers/until.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Child {
  process: ChildProcess;
  /** Every JSON log line printed so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log line (already printed or later) whose msg is `msg`. */
  logged(msg: string): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
}

/** Holdfast from source as a child process, on ephemeral ports, logs parsed from stdout. */
function spawnHoldfast(t: TestContext, args: string[]): Child {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) env[k] = v;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', ...args],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  readJsonLines(child.stdout, (entry) => {
    logs.push(entry);
    for (const w of waiters.filter((w) => w.msg === entry.msg)) w.resolve(entry);
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    atMs: performance.now(),
  }));
  return {
    process: child,
    logs,
    exited,
    logged(msg) {
      const found = logs.find((l) => l.msg === msg);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ msg, resolve }));
    },
  };
}

/** Connect and report how it went: 'connected' or the error code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

test('SIGTERM drains: no new connections, in-flight finishes with Connection: close, idle ones close, exit 0', async (t) => {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const backend = await startBackend(t, async (req, res) => {
    // /slow is the ~1 s request: it stays in flight until the test has checked everything around it.
    if (req.url === '/slow') await released;
    const body = `done ${req.url}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const drainMs = 10_000;
  const hf = spawnHoldfast(t, ['--backend', backend.url, '--drain-timeout', String(drainMs)]);
  const started = await hf.logged('holdfast started');
  const port = (started.listen as { port: number }).port;
  const controlPort = (started.control as { port: number }).port;

  const idle = await RawClient.connect(t, port);
  idle.write('GET /fast HTTP/1.1\r\nHost: drain.test\r\n\r\n');
  assert.equal((await idle.readResponse()).status, 200);

  const busy = await RawClient.connect(t, port);
  busy.write('GET /slow HTTP/1.1\r\nHost: drain.test\r\n\r\n');
  // The slow request reached the backend (the handler is holding it).
  await eventually(() => backend.seen.some((s) => s.url === '/slow'), 10_000, 'the slow request at the backend');

  const signalledAtMs = performance.now();
  hf.process.kill('SIGTERM');
  await hf.logged('draining'); // logged in the same tick the listener is closed

  assert.equal(await tryConnect(port), 'ECONNREFUSED', 'new connections are refused');
  await idle.waitEnd();
  assert.equal(idle.pending.length, 0, 'the idle connection is closed without a byte');
  assert.equal(busy.ended, false, 'the in-flight request is still going');
  const health = await request(`http://127.0.0.1:${controlPort}/healthz`);
  assert.equal(health.statusCode, 503, 'load balancers in front learn we are going');
  await health.body.dump();

  setTimeout(release, 1_000 - (performance.now() - signalledAtMs)).unref();
  const res = await busy.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'done /slow\n');
  assert.equal(res.headers.connection, 'close');
  await busy.waitEnd();

  const { code, signal, atMs } = await hf.exited;
  assert.equal(signal, null);
  assert.equal(code, 0);
  assert.ok(atMs - signalledAtMs < drainMs, `exited ${Math.round(atMs - signalledAtMs)} ms after SIGTERM`);
  assert.deepEqual(
    backend.seen.map((s) => s.url),
    ['/fast', '/slow'],
  );
  assert.ok(hf.logs.some((l) => l.msg === 'drained'));
});

test('a request that outlives the drain deadline is cut, logged and counted, and the process exits 1 within the deadline', async (t) => {
  const backend = await startBackend(t, () => {
    /* never answers */
  });
  const drainMs = 500;
  const hf = spawnHoldfast(t, ['--backend', backend.url, '--drain-timeout', String(drainMs)]);
  const port = ((await hf.logged('holdfast started')).listen as { port: number }).port;
  const busy = await RawClient.connect(t, port);
  busy.write('GET /forever HTTP/1.1\r\nHost: drain.test\r\n\r\n');
  await eventually(() => backend.seen.length > 0, 10_000, 'a request at the backend');

  const signalledAtMs = performance.now();
  hf.process.kill('SIGTERM');
  const { code, atMs } = await hf.exited;
  const tookMs = atMs - signalledAtMs;
  assert.ok(tookMs < drainMs + 2_000, `exited ${Math.round(tookMs)} ms after SIGTERM (deadline ${drainMs} ms)`);
  assert.ok(tookMs >= drainMs - 50, 'the request got its drain time');
  assert.equal(code, 1, 'a drain that cut a request is not a clean exit');
  await busy.waitEnd();
  assert.equal(busy.pending.length, 0, 'no response: the client sees the connection cut');
  const cut = hf.logs.find((l) => l.msg === 'drain deadline passed, closing remaining connections');
  assert.equal(cut?.cutRequests, 1);
  assert.deepEqual(cut?.samples, [{ client: '127.0.0.1', method: 'GET', target: '/forever' }]);
  assert.equal(hf.logs.find((l) => l.msg === 'drained, but requests were cut at the deadline')?.cutRequests, 1);
});

test('a second signal exits at once', async (t) => {
  const backend = await startBackend(t, () => {
    /* never answers */
  });
  const hf = spawnHoldfast(t, ['--backend', backend.url, '--drain-timeout', '30000']);
  const port = ((await hf.logged('holdfast started')).listen as { port: number }).port;
  const busy = await RawClient.connect(t, port);
  busy.write('GET /forever HTTP/1.1\r\nHost: drain.test\r\n\r\n');
  await eventually(() => backend.seen.length > 0, 10_000, 'a request at the backend');
  hf.process.kill('SIGTERM');
  await hf.logged('draining');
  const secondAtMs = performance.now();
  hf.process.kill('SIGINT');
  const { code, atMs } = await hf.exited;
  assert.equal(code, 1);
  assert.ok(atMs - secondAtMs < 2_000);
});
