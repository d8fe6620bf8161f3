// Instructions per SSE delivery: Holdfast under valgrind's callgrind, which counts the instructions the
// process executes in user space (our code, Node, V8, libuv; not the kernel). Unlike CPU time, the count
// does not move when other processes share the cores, so a before/after on a busy machine holds.
//   node bench/fanout/instructions.mjs [--subscribers 1000] [--messages 20] [--warm-up 10] [--main-js dist/main.js | --ref REF]
// Needs valgrind (apt-get install -y valgrind). Prints one Markdown line; the command and build go with it.
//
// Method: one Holdfast process (the same flags as run.mjs) under `valgrind --tool=callgrind
// --instr-atstart=no`, the GRIP backend, N raw-socket subscribers of one channel in this process. After
// the subscribers and `--warm-up` publishes (each waited for), instrumentation is switched on
// (`callgrind_control -i on`), M publishes go out one after another, each waited for until every subscriber
// has it, and instrumentation is switched off and the counts dumped. Only the main thread is counted (the
// event loop, where deliveries run; garbage collection is on it too, --single-threaded-gc), not V8's compiler
// threads. Instructions / (N x M) is the cost of one delivery,
// with the per-publish work (control request, bus) spread over its N deliveries. V8's compiled code is
// counted like any other; it shows as unnamed in callgrind_annotate, so this gives the total, not a split.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, sleep, waitForPort } from './peers.mjs';
import { buildRef } from '../lib/build-ref.mjs';
import { holdfastEnv, holdfastNodeArgs } from '../lib/holdfast-node-args.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(here, '..');
const repoDir = resolve(benchDir, '..');
// One folder per run, so two runs (a before and an after) can go at once.
const runDir = join(benchDir, '.run', 'instructions', String(process.pid));

const { values: opts } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '20' },
    'warm-up': { type: 'string', default: '10' },
    'main-js': { type: 'string', default: join(repoDir, 'dist', 'main.js') },
    ref: { type: 'string' },
  },
});
const N = Number(opts.subscribers);
const M = Number(opts.messages);
const log = (line) => process.stderr.write(`${line}\n`);

const children = [];
function startChild(command, args, env) {
  const child = spawn(command, args, { cwd: runDir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr = (stderr + c.toString()).slice(-4000)));
  child.stderrTail = () => stderr;
  children.push(child);
  return child;
}

/** One SSE subscriber: counts the events (`data:` lines) it has read. */
function subscribe(port) {
  return new Promise((resolveSub, reject) => {
    const sub = { events: 0, head: false, socket: null };
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /sub/fan HTTP/1.1\r\nHost: bench\r\n\r\n'));
    sub.socket = socket;
    let tail = '';
    socket.on('data', (chunk) => {
      const text = tail + chunk.toString('latin1');
      if (!sub.head && text.includes('\r\n\r\n')) {
        if (!text.startsWith('HTTP/1.1 200')) return reject(new Error(`subscribe answered ${text.split('\r\n')[0]}`));
        sub.head = true;
        resolveSub(sub);
      }
      for (let at = text.indexOf('data: '); at !== -1; at = text.indexOf('data: ', at + 1)) sub.events++;
      tail = text.slice(-5);
      // A `data: ` split over two reads would be counted in the next read through `tail`, and not twice:
      // only the last 5 bytes (shorter than the marker) are carried.
    });
    socket.on('error', reject);
  });
}

async function publish(controlPort, seq) {
  const body = JSON.stringify({ items: [{ channel: 'fan', id: `m${seq}`, formats: { 'http-stream': { content: `data: ${seq} 0\n\n` } } }] });
  const res = await fetch(`http://127.0.0.1:${controlPort}/publish`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  await res.text();
  if (res.status !== 200) throw new Error(`publish answered ${res.status}`);
}

async function until(what, predicate, ms) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function main() {
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  let mainJs = resolve(opts['main-js']);
  let build = 'dist/ of the working tree';
  if (opts.ref) {
    // Built beside run.mjs's builds (bench/.run/fanout/build-<sha>), so a ref built by either is reused.
    const built = buildRef(repoDir, join(benchDir, '.run', 'fanout'), opts.ref);
    mainJs = built.mainJs;
    build = `${opts.ref} = ${built.sha}`;
  }
  const backendPort = await freePort();
  startChild(process.execPath, [join(here, 'backend.mjs'), String(backendPort)], process.env);
  await waitForPort(backendPort, 10_000);
  const port = await freePort();
  const controlPort = await freePort();
  const holdfast = startChild(
    'valgrind',
    [
      '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(runDir, 'callgrind.out.%p')}`,
      process.execPath, ...holdfastNodeArgs(mainJs), mainJs,
      '--listen', `127.0.0.1:${port}`, '--control', `127.0.0.1:${controlPort}`, '--backend', `http://127.0.0.1:${backendPort}`,
      '--log-level', 'warn', '--max-connections', '30000', '--max-connections-per-client', '30000',
    ],
    holdfastEnv(mainJs),
  );
  await waitForPort(controlPort, 180_000);
  log(`Holdfast (${build}) under callgrind; connecting ${N} subscribers`);
  const subs = [];
  for (let i = 0; i < N; i += 50) {
    subs.push(...(await Promise.all(Array.from({ length: Math.min(50, N - i) }, () => subscribe(port)))));
  }
  const delivered = () => subs.reduce((a, s) => a + s.events, 0);
  // Enough publishes before counting that V8 has compiled the delivery path (its optimizing compiler's own
  // work would otherwise be counted as delivery).
  for (let w = 1; w <= Number(opts['warm-up']); w++) {
    const target = delivered() + N;
    await publish(controlPort, -w);
    await until(`warm-up ${w}`, () => delivered() >= target, 120_000);
  }
  execFileSync('callgrind_control', ['-i', 'on', String(holdfast.pid)], { stdio: 'ignore' });
  const before = delivered();
  for (let seq = 1; seq <= M; seq++) {
    const target = delivered() + N;
    await publish(controlPort, seq);
    await until(`message ${seq}`, () => delivered() >= target, 120_000);
  }
  execFileSync('callgrind_control', ['-i', 'off', String(holdfast.pid)], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['-d', String(holdfast.pid)], { stdio: 'ignore' });
  const deliveries = delivered() - before;
  await sleep(1000);
  let instructions = 0;
  // The main thread's file only (`-01`): V8 compiles on helper threads whenever it decides to, and a
  // compilation that happened to fall into the measured phase moved the total by 10-30% between runs.
  for (const file of readdirSync(runDir).filter((f) => f.startsWith('callgrind.out.') && f.endsWith('-01'))) {
    // Every dump of the process: the measured phase is the only one instrumented.
    // `totals:`, not `summary:` (which stays 0 when instrumentation was switched on after the start).
    const match = /^totals: (\d+)/m.exec(readFileSync(join(runDir, file), 'utf8'));
    if (match) instructions += Number(match[1]);
  }
  for (const s of subs) s.socket.destroy();
  const perDelivery = instructions / deliveries;
  console.log(
    `| ${build} | ${N} | ${M} | ${deliveries} | ${(instructions / 1e6).toFixed(1)} M | ${Math.round(perDelivery)} |`,
  );
  log(`${deliveries} deliveries, ${instructions} instructions: ${Math.round(perDelivery)} per delivery`);
}

main()
  .catch((err) => {
    log(`failed: ${err.stack}`);
    for (const c of children) if (c.stderrTail) log(c.stderrTail());
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });
