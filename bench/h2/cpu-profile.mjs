#!/usr/bin/env node
// Where a proxied request's CPU goes (issue 13): Holdfast (or node-tls-floor) behind the TLS listener under
// `node --cpu-prof`, one h2load cell against it, then the profile's self time grouped by layer and the top
// functions. V8's profile cannot see inside native code: TLS record encryption and nghttp2's framing run in C++
// and land on the JS frame that called them (a write) or in "(program)" (reads: decrypted and parsed natively
// before any JS callback runs). Read the "native" rows together with `perf` (see bench/h2/README.md).
//
//   node h2/cpu-profile.mjs                     Holdfast, h2 50 x 10, 8 s after a 2 s warm-up
//   options: --target holdfast|node-tls-floor   --cell h2:50x10 | h2:1x1 | h1:50x1   --duration S   --warmup S
//            --top N (25)   --keep DIR (keep the .cpuprofile there)   --node-args=--trace-gc (after the shebang's)
//            --holdfast-args="--config FILE" (more Holdfast flags)
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { requireFreshDist } from '../lib/dist-check.mjs';
import { treeCpuUs } from '../lib/cpu.mjs';
import { startBackend } from '../lib/peers.mjs';
import { freePort } from '../lib/ports.mjs';
import { startProcess, stopAll, stopAllOnSignal, stopProcess, waitUntilReady } from '../lib/processes.mjs';
import { runH2load } from './h2load.mjs';
import { makeCertificate, startHoldfastTls } from './peers.mjs';

const benchDir = fileURLToPath(new URL('..', import.meta.url));
const repoDir = fileURLToPath(new URL('../..', import.meta.url));
const mainJs = join(repoDir, 'dist', 'main.js');
const runDir = join(benchDir, '.run', 'h2-profile');
const LOAD_CPU = 0;
const FRONT_CPU = 1;

const { values: opts } = parseArgs({
  options: {
    target: { type: 'string', default: 'holdfast' },
    cell: { type: 'string', default: 'h2:50x10' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    top: { type: 'string', default: '25' },
    keep: { type: 'string' },
    'node-args': { type: 'string', default: '' },
    'holdfast-args': { type: 'string', default: '' },
  },
});
const log = (line) => process.stderr.write(`${line}\n`);

/** Layer of a profile node, from its script and function name. First match wins. */
const LAYERS = [
  [(u) => u.includes('/dist/edge/'), 'holdfast edge'],
  [(u) => u.includes('/dist/http/h2-compat'), 'holdfast h2-compat'],
  [(u) => u.includes('/dist/http/'), 'holdfast http (checks, headers)'],
  [(u) => u.includes('/dist/proxy/'), 'holdfast proxy (forwarder, exchange, group)'],
  [(u) => u.includes('/dist/observe/') || u.includes('prom-client'), 'metrics and logs'],
  [(u) => u.includes('/dist/'), 'holdfast other'],
  [(u) => u.includes('/undici/'), 'undici (backend HTTP/1)'],
  [(u) => u.startsWith('node:internal/http2/compat'), 'node http2 compat'],
  [(u) => u.startsWith('node:internal/http2/'), 'node http2 core (JS side of nghttp2)'],
  [(u) => u.startsWith('node:_tls') || u.startsWith('node:tls'), 'node tls (JS)'],
  [(u) => u.startsWith('node:_http') || u.startsWith('node:http'), 'node http1'],
  [(u) => u.startsWith('node:internal/streams') || u.startsWith('node:stream'), 'node streams'],
  [(u) => u.startsWith('node:net') || u.startsWith('node:internal/stream_base') || u.startsWith('node:internal/net'), 'node net'],
  [(u) => u.startsWith('node:internal/timers') || u.startsWith('node:timers'), 'node timers'],
  [(u) => u.startsWith('node:internal/process/task_queues') || u.startsWith('node:internal/async_hooks'), 'node ticks'],
  [(u) => u.startsWith('node:'), 'node other'],
];

function layerOf(frame) {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(program)') return 'native outside JS (TLS read, nghttp2 parse, libuv)';
    if (functionName === '(idle)') return 'idle';
    return 'native called from JS';
  }
  for (const [test, name] of LAYERS) if (test(url)) return name;
  return 'other JS';
}

/** Self time by layer and by function over [fromUs, toUs] (the monotonic clock, as V8 stamps samples). */
function summarise(profile, requests, fromUs, toUs) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  // Sample i covers timeDeltas[i + 1] (the time until the next sample).
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    if (at < fromUs || at > toUs) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const layers = new Map();
  const fns = new Map();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id).callFrame;
    const layer = layerOf(frame);
    if (layer === 'idle') continue;
    busyUs += us;
    layers.set(layer, (layers.get(layer) ?? 0) + us);
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const perReq = (us) => (us / requests).toFixed(1).padStart(7);
  const lines = [`busy ${(busyUs / 1e6).toFixed(2)} s over ${requests} requests: ${(busyUs / requests).toFixed(1)} us of sampled CPU per request`, '', 'us/req  layer'];
  for (const [layer, us] of [...layers].sort((a, b) => b[1] - a[1])) lines.push(`${perReq(us)}  ${layer}`);
  lines.push('', `us/req  top ${opts.top} functions (self time)`);
  for (const [fn, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, Number(opts.top))) lines.push(`${perReq(us)}  ${fn}`);
  return lines.join('\n');
}

async function main() {
  if (opts.target === 'holdfast') requireFreshDist(repoDir, 'bench/h2/cpu-profile.mjs');
  const m = /^(h2|h1):(\d+)x(\d+)$/.exec(opts.cell);
  if (m === null) throw new Error(`--cell: protocol:connectionsxstreams, such as h2:50x10, not ${opts.cell}`);
  rmSync(runDir, { recursive: true, force: true });
  const profDir = opts.keep ?? join(runDir, 'prof');
  mkdirSync(profDir, { recursive: true });
  const cert = makeCertificate(join(runDir, 'cert'));
  const backendPort = await freePort();
  const backend = startBackend({ dir: join(runDir, 'backend'), port: backendPort, statusPort: await freePort(), cpu: LOAD_CPU });
  await waitUntilReady(backend, `http://127.0.0.1:${backendPort}/small`);
  const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', profDir, ...opts['node-args'].split(' ').filter(Boolean)];
  let front;
  let tlsPort;
  if (opts.target === 'holdfast') {
    const [port, controlPort] = [await freePort(), await freePort()];
    tlsPort = await freePort();
    front = startHoldfastTls({ dir: join(runDir, 'holdfast'), port, tlsPort, controlPort, backendPort, cpu: FRONT_CPU, mainJs, cert, nodeArgs, extraArgs: opts['holdfast-args'].split(' ').filter(Boolean) });
    await waitUntilReady(front, `http://127.0.0.1:${port}/small`);
  } else if (opts.target === 'node-tls-floor') {
    tlsPort = await freePort();
    const dir = join(runDir, 'node-tls-floor');
    mkdirSync(dir, { recursive: true });
    front = startProcess({ name: 'node-tls-floor', command: process.execPath, args: [...nodeArgs, join(benchDir, 'h2', 'node-tls-floor.mjs'), String(tlsPort), cert.cert, cert.key], cpu: FRONT_CPU, logFile: join(dir, 'out.log') });
  } else throw new Error(`--target: holdfast or node-tls-floor, not ${opts.target}`);
  const url = `https://127.0.0.1:${tlsPort}/small`;
  for (let i = 0; ; i++) {
    const r = await runH2load({ url, proto: 'h1', clients: 1, requests: 1, cpu: LOAD_CPU });
    if (r.succeeded === 1) break;
    if (i > 50) throw new Error(`${opts.target} does not answer over TLS; see ${front.logFile}`);
    await new Promise((r2) => setTimeout(r2, 200));
  }
  let cpu0 = 0;
  let cpu1 = 0;
  let from = 0;
  let to = 0;
  const nowUs = () => Number(process.hrtime.bigint() / 1000n);
  const result = await runH2load({
    url, proto: m[1], clients: Number(m[2]), streams: Number(m[3]), durationS: Number(opts.duration), warmupS: Number(opts.warmup), cpu: LOAD_CPU,
    onMeasureStart: () => {
      cpu0 = treeCpuUs(front.pid);
      from = nowUs();
    },
    onMeasureEnd: () => {
      cpu1 = treeCpuUs(front.pid);
      to = nowUs();
    },
  });
  // SIGTERM: Holdfast drains and exits, the floor exits; either way Node writes the profile on the way out.
  await stopProcess(front, 10_000);
  await stopAll();
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no profile written in ${profDir}; see ${front.logFile}`);
  const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
  // The profile covers the whole life (start-up, warm-up, drain): only the measured phase's samples count.
  const requests = result.done;
  log(`${opts.target} ${opts.cell}: ${Math.round(result.rps)} req/s, ${result.done} measured, /proc CPU ${((cpu1 - cpu0) / result.done).toFixed(1)} us/req over the measured phase (with the profiler on)`);
  process.stdout.write(`${summarise(profile, requests, from, to)}\n`);
}

stopAllOnSignal(log);
main().catch(async (err) => {
  log(err.stack ?? String(err));
  await stopAll();
  process.exit(1);
});
