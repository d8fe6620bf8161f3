#!/usr/bin/env node
// Instructions per proxied HTTP/2 request (issue 13): Holdfast's TLS listener under valgrind's callgrind, h2load
// against it, the nginx backend of tls-bench.mjs. Like bench/fanout/instructions.mjs: user-space instructions
// of the main thread only (event loop, TLS, nghttp2, V8's compiled code and, with --single-threaded-gc, the
// GC), not the kernel's. The count does not move when other processes share the cores, so a before/after
// holds on a busy machine where CPU time per request moves by 15% between runs.
//   node h2/instructions.mjs [--cell h2:50x10] [--warm-up 4000] [--requests 3000] [--main-js dist/main.js | --ref REF]
// Needs valgrind. Prints one Markdown line.
//
// Method: Holdfast under `valgrind --tool=callgrind --instr-atstart=no`; `--warm-up` requests (V8 compiles the
// path), then instrumentation on (`callgrind_control -i on`), `--requests` requests, off, dump; instructions
// of the main thread's file divided by the requests h2load completed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRef } from '../lib/build-ref.mjs';
import { holdfastEnv, holdfastNodeArgs } from '../lib/holdfast-node-args.mjs';
import { startBackend } from '../lib/peers.mjs';
import { freePort } from '../lib/ports.mjs';
import { startProcess, stopAll, stopAllOnSignal, waitUntilReady } from '../lib/processes.mjs';
import { runH2load } from './h2load.mjs';
import { makeCertificate } from './peers.mjs';

const benchDir = fileURLToPath(new URL('..', import.meta.url));
const repoDir = fileURLToPath(new URL('../..', import.meta.url));
// One folder per run, so a before and an after can go at once.
const runDir = join(benchDir, '.run', 'h2-instructions', String(process.pid));
const LOAD_CPU = 0;
const FRONT_CPU = 1;

const { values: opts } = parseArgs({
  options: {
    cell: { type: 'string', default: 'h2:50x10' },
    'warm-up': { type: 'string', default: '4000' },
    requests: { type: 'string', default: '3000' },
    'main-js': { type: 'string', default: join(repoDir, 'dist', 'main.js') },
    ref: { type: 'string' },
  },
});
const log = (line) => process.stderr.write(`${line}\n`);

async function main() {
  const m = /^(h2|h1):(\d+)x(\d+)$/.exec(opts.cell);
  if (m === null) throw new Error(`--cell: protocol:connectionsxstreams, such as h2:50x10, not ${opts.cell}`);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  let mainJs = opts['main-js'];
  let build = 'dist/ of the working tree';
  if (opts.ref) {
    const built = buildRef(repoDir, join(benchDir, '.run', 'h2-instructions'), opts.ref);
    mainJs = built.mainJs;
    build = `${opts.ref} = ${built.sha}`;
  }
  const cert = makeCertificate(join(runDir, 'cert'));
  const backendPort = await freePort();
  const backend = startBackend({ dir: join(runDir, 'backend'), port: backendPort, statusPort: await freePort(), cpu: LOAD_CPU });
  await waitUntilReady(backend, `http://127.0.0.1:${backendPort}/small`);
  const [port, tlsPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  const holdfast = startProcess({
    name: 'holdfast (callgrind)',
    command: 'valgrind',
    args: [
      '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(runDir, 'callgrind.out.%p')}`,
      process.execPath, ...holdfastNodeArgs(mainJs), mainJs,
      // As bench/lib/peers.mjs and h2/peers.mjs start it for tls-bench.mjs.
      '--listen', `127.0.0.1:${port}`, '--control', `127.0.0.1:${controlPort}`, '--backend', `http://127.0.0.1:${backendPort}`,
      '--log-level', 'warn', '--max-requests-per-connection', '0', '--drain-timeout', '2000',
      '--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', cert.cert, '--tls-key', cert.key,
      '--max-connections', '30000', '--max-connections-per-client', '30000',
    ],
    cpu: FRONT_CPU,
    logFile: join(runDir, 'holdfast.log'),
    cwd: runDir,
    env: holdfastEnv(mainJs),
  });
  await waitUntilReady(holdfast, `http://127.0.0.1:${port}/small`, (r) => r.status === 200, 180_000);
  const cell = { url: `https://127.0.0.1:${tlsPort}/small`, proto: m[1], clients: Number(m[2]), streams: Number(m[3]), cpu: LOAD_CPU };
  log(`Holdfast (${build}) under callgrind: ${opts['warm-up']} requests to warm up`);
  const warm = await runH2load({ ...cell, requests: Number(opts['warm-up']) });
  if (warm.succeeded !== Number(opts['warm-up'])) throw new Error(`warm-up: ${warm.succeeded} succeeded\n${warm.text}`);
  execFileSync('callgrind_control', ['-i', 'on', String(holdfast.pid)], { stdio: 'ignore' });
  const run = await runH2load({ ...cell, requests: Number(opts.requests) });
  execFileSync('callgrind_control', ['-i', 'off', String(holdfast.pid)], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['-d', String(holdfast.pid)], { stdio: 'ignore' });
  if (run.succeeded !== Number(opts.requests)) throw new Error(`measured: ${run.succeeded} succeeded\n${run.text}`);
  await new Promise((r) => setTimeout(r, 1000));
  let instructions = 0;
  // The main thread's file only (`-01`): V8's compiler threads work whenever they decide to.
  for (const file of readdirSync(runDir).filter((f) => f.startsWith('callgrind.out.') && f.endsWith('-01'))) {
    // `totals:`, not `summary:` (0 when instrumentation was switched on after the start).
    const match = /^totals: (\d+)/m.exec(readFileSync(join(runDir, file), 'utf8'));
    if (match) instructions += Number(match[1]);
  }
  if (instructions === 0) throw new Error(`no callgrind totals in ${runDir}`);
  await stopAll();
  console.log(`| ${build} | ${opts.cell} | ${run.succeeded} | ${(instructions / 1e6).toFixed(1)} M | ${Math.round(instructions / run.succeeded)} |`);
  log(`${run.succeeded} requests, ${instructions} instructions: ${Math.round(instructions / run.succeeded)} per request`);
}

stopAllOnSignal(log);
main().catch(async (err) => {
  log(`failed: ${err.stack ?? err}`);
  await stopAll();
  process.exit(1);
});
