#!/usr/bin/env node
// One publish to 15,000 SSE streams spread over 1,000 HTTP/2 connections (issue 13): Holdfast (TLS, h2) and
// nginx + nchan (`listen ... ssl http2`) as the peer, then, in the same run, bench/fanout/run.mjs with Holdfast
// and as many HTTP/1.1 SSE connections, for the memory and latency of a held stream against a held connection.
// See bench/h2/README.md. Usage:
//   node bench/h2/fanout.mjs [--streams 15000] [--connections 1000] [--messages 10] [--interval 1000]
//     [--peers holdfast,nchan] (also node-h2-floor, node-h2-floor-compat: node-h2-floor.mjs) [--processes 4] [--probe-connections 20] [--window 64] [--no-h1] [--record]
//     [--h2c] (cleartext with prior knowledge: Holdfast given --h2c, the floors http2.createServer) [--holdfast-args "..."]
//     [--heap-snapshots] (Node servers: a V8 heap snapshot idle and held, grouped per stream by heap-groups.mjs;
//     the snapshots pause the server, so that run's latencies are not comparable)
import { execFileSync, fork, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { requireFreshDist } from '../lib/dist-check.mjs';
import { adoptChild, cpuSeconds, freePort, kernelAndTotalSeconds, publishGrip, rssKiB, sleep, sseLine, startNchan, startProcess, stopAll, stopProcess, waitForPort } from '../fanout/peers.mjs';
import { holdfastEnv, holdfastNodeArgs } from '../lib/holdfast-node-args.mjs';
import { breakdownTable, compareSnapshots } from './heap-groups.mjs';
import { makeCertificate, startHoldfastTls } from './peers.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const benchDir = join(here, '..');
const repoDir = join(benchDir, '..');
const runDir = join(benchDir, '.run', 'h2-fanout');
const mainJs = join(repoDir, 'dist', 'main.js');

const { values: opts } = parseArgs({
  options: {
    streams: { type: 'string', default: '15000' },
    connections: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '10' },
    interval: { type: 'string', default: '1000' },
    peers: { type: 'string', default: 'holdfast,nchan' },
    processes: { type: 'string', default: '4' },
    'probe-connections': { type: 'string', default: '20' },
    window: { type: 'string', default: '64' },
    'no-h1': { type: 'boolean', default: false },
    h2c: { type: 'boolean', default: false },
    'holdfast-args': { type: 'string', default: '' },
    'heap-snapshots': { type: 'boolean', default: false },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    record: { type: 'boolean', default: false },
  },
});
const STREAMS = Number(opts.streams);
const CONNS = Number(opts.connections);
const PER_CONN = STREAMS / CONNS;
if (!Number.isInteger(PER_CONN)) throw new Error('--streams must be a multiple of --connections');
const M = Number(opts.messages);
const interval = Number(opts.interval);
const serverCpu = Number(opts['server-cpu']);
const clientCpu = Number(opts['client-cpu']);
const CHANNEL = 'fan';
const log = (...a) => console.error(...a);
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
/** With --heap-snapshots, the Node servers write one on SIGUSR2 (into their folder, their working directory). */
const snapshotArgs = opts['heap-snapshots'] ? ['--heapsnapshot-signal=SIGUSR2'] : [];

// Orchestrator, publisher, backend and subscribers share the client core; the server gets its own (as bench/fanout).
execFileSync('taskset', ['-p', '-c', String(clientCpu), String(process.pid)], { stdio: 'ignore' });

const clients = new Set();
let nextId = 1;
function call(child, msg) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    const onMsg = (m) => {
      if (m.id !== id) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code) => reject(new Error(`client ${child.pid} exited (${code})`));
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send({ ...msg, id });
  });
}
const callAll = (list, msg) => Promise.all(list.map((c) => call(c, msg)));
const sum = (list, key) => list.reduce((a, s) => a + (s[key] ?? 0), 0);

function forkClient(nice) {
  const child = fork(join(here, 'fanout-client.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=2048'] });
  clients.add(child);
  adoptChild('h2 subscribers', child);
  child.once('exit', () => clients.delete(child));
  if (nice !== 0) os.setPriority(child.pid, nice);
  return child;
}

async function closeClients() {
  const list = [...clients];
  await Promise.all(list.map((c) => call(c, { cmd: 'close' }).catch(() => {})));
  await Promise.all(list.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
}

/** One HTTP/2 SSE stream through the server until its 200 (it knows h2; its code paths are loaded), then closed. */
function probeH2(url, path, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const session = http2.connect(url, { rejectUnauthorized: false });
    const done = (ok) => {
      clearTimeout(timer);
      session.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done('no answer'), timeoutMs);
    session.on('error', (err) => done(errorText(err)));
    const req = session.request({ ':path': path, accept: 'text/event-stream' });
    req.on('response', (h) => done(h[':status'] === 200 ? true : `status ${h[':status']}`));
    req.on('error', (err) => done(errorText(err)));
  });
}

/** SIGUSR2 to a Node server started with snapshotArgs; resolves with the snapshot's path once it is written whole. */
async function heapSnapshot(server) {
  const list = () => readdirSync(server.dir).filter((f) => f.endsWith('.heapsnapshot'));
  const before = new Set(list());
  process.kill(server.proc.pid, 'SIGUSR2');
  const deadline = Date.now() + 120_000;
  let last = -1;
  for (;;) {
    await sleep(500);
    const file = list().find((f) => !before.has(f));
    if (file !== undefined) {
      const path = join(server.dir, file);
      const size = statSync(path).size;
      // V8 writes the JSON in one go on the main thread; complete once it ends with its closing brackets and stops growing.
      if (size === last && /\]\s*\}\s*$/.test(readFileSync(path, 'utf8').slice(-64))) return path;
      last = size;
    }
    if (Date.now() > deadline) throw new Error(`${server.name} wrote no heap snapshot in 120 s`);
  }
}

/** One line; a server without h2 in its ALPN list ends the handshake with a no_application_protocol alert. */
function errorText(err) {
  const text = `${err.code ?? ''} ${err.message} ${err.cause?.message ?? ''}`;
  return /no application protocol/.test(text) ? 'TLS alert no_application_protocol: no h2 in the server\'s ALPN list' : text.split('\n')[0];
}

async function waitServingH2(server) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await probeH2(server.url, `/sub/ready`);
    if (ok === true) return;
    if (server.proc.exitCode !== undefined) throw new Error(`${server.name} exited (${server.proc.exitCode}); see ${server.proc.logFile}`);
    if (Date.now() > deadline) throw new Error(`${server.name} does not serve an HTTP/2 SSE stream at ${server.url}: ${ok}`);
    await sleep(300);
  }
}

async function startServer(name, cert) {
  const dir = join(runDir, name);
  if (name === 'holdfast') {
    const backendPort = await freePort();
    const backend = adoptChild('backend', fork(join(benchDir, 'fanout', 'backend.mjs'), [String(backendPort)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    await waitForPort(backendPort, 5000, backend);
    const [port, tlsPort, controlPort] = [await freePort(), await freePort(), await freePort()];
    const extraArgs = [...(opts.h2c ? ['--h2c'] : []), ...(opts['holdfast-args'] === '' ? [] : opts['holdfast-args'].split(' '))];
    const proc = startHoldfastTls({ dir, port, tlsPort, controlPort, backendPort, cpu: serverCpu, mainJs, cert, extraArgs, nodeArgs: snapshotArgs });
    await waitForPort(controlPort, 15_000, proc);
    return {
      name,
      proc,
      dir,
      url: opts.h2c ? `http://127.0.0.1:${port}` : `https://127.0.0.1:${tlsPort}`,
      pids: () => [proc.pid],
      publish: (items) => publishGrip(controlPort, items),
      stop: async () => {
        await stopProcess(proc);
        await stopProcess(backend);
      },
    };
  }
  if (name === 'node-h2-floor' || name === 'node-h2-floor-compat') {
    // The same Node flags and environment as Holdfast's command, so the difference is what Holdfast adds.
    const [tlsPort, controlPort] = [await freePort(), await freePort()];
    const api = name === 'node-h2-floor' ? 'stream' : 'compat';
    mkdirSync(dir, { recursive: true });
    const proc = startProcess({
      name,
      command: process.execPath,
      args: [...holdfastNodeArgs(mainJs), ...snapshotArgs, join(here, 'node-h2-floor.mjs'), String(tlsPort), String(controlPort), cert.cert, cert.key, api, opts.h2c ? 'h2c' : 'tls'],
      cpu: serverCpu,
      logFile: join(dir, 'out.log'),
      cwd: dir,
      env: holdfastEnv(mainJs),
    });
    await waitForPort(controlPort, 15_000, proc);
    return { name, proc, dir, url: `${opts.h2c ? 'http' : 'https'}://127.0.0.1:${tlsPort}`, pids: () => [proc.pid], publish: (items) => publishGrip(controlPort, items), stop: () => stopProcess(proc) };
  }
  if (name === 'nchan') {
    const s = await startNchan({ dir, cpu: serverCpu, tls: cert });
    return { ...s, url: `https://127.0.0.1:${s.tlsPort}` };
  }
  throw new Error(`unknown peer ${name}`);
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Publishes warm-up messages (seq 0) until every stream has had one, a new one when progress stops for 2 s. */
async function warmUp(server, list, heads) {
  const t = nowUs();
  let warm = 0;
  for (let k = 0; k < 20; k++) {
    await server.publish([{ channel: CHANNEL, id: `w${k}`, content: sseLine(0, nowUs()) }]);
    let lastProgress = Date.now();
    while (Date.now() - lastProgress < 2000) {
      await sleep(100);
      const now = sum(await callAll(list, { cmd: 'status' }), 'warm');
      if (now !== warm) lastProgress = Date.now();
      warm = now;
      if (warm >= heads) return { subscribedMs: (nowUs() - t) / 1000, warm };
    }
  }
  return { subscribedMs: NaN, warm };
}

/** Five more warm-ups 200 ms apart, waited for, so the measured messages do not pay for JIT compilation. */
async function warmMore(server, list, heads) {
  const target = sum(await callAll(list, { cmd: 'status' }), 'warmTotal') + 5 * heads;
  for (let k = 0; k < 5; k++) {
    await server.publish([{ channel: CHANNEL, id: `x${k}`, content: sseLine(0, nowUs()) }]);
    await sleep(200);
  }
  const deadline = Date.now() + 10_000;
  while (sum(await callAll(list, { cmd: 'status' }), 'warmTotal') < target && Date.now() < deadline) await sleep(100);
}

async function runPeer(name, cert) {
  log(`\n== ${name}: ${STREAMS} SSE streams over ${CONNS} HTTP/2 connections, ${M} messages`);
  const row = { peer: name, loadBefore: loadAverage() };
  const server = await startServer(name, cert);
  try {
    await waitServingH2(server);
    await sleep(1000);
    row.rssIdleKiB = server.pids().reduce((a, pid) => a + rssKiB(pid), 0);
    const snapshots = opts['heap-snapshots'] && server.dir !== undefined ? [await heapSnapshot(server)] : null;
    // Bulk processes at nice 10, the probe (a few connections) at normal priority, as bench/fanout does.
    const probeConns = Math.min(Number(opts['probe-connections']), Math.floor(CONNS / 10));
    const procs = Number(opts.processes);
    const bulkConns = CONNS - probeConns;
    const shares = Array.from({ length: procs }, (_, i) => Math.floor(bulkConns / procs) + (i < bulkConns % procs ? 1 : 0));
    const bulk = shares.map(() => forkClient(10));
    const probe = probeConns > 0 ? forkClient(0) : null;
    const all = probe === null ? bulk : [...bulk, probe];
    const perWindow = Math.max(4, Math.floor(Number(opts.window) / all.length));
    const cpu0 = server.pids().reduce((a, pid) => a + cpuSeconds(pid), 0);
    const t0 = nowUs();
    await Promise.all(all.map((c, i) => call(c, { cmd: 'connect', url: server.url, path: `/sub/${CHANNEL}`, connections: i < bulk.length ? shares[i] : probeConns, streams: PER_CONN, messages: M, window: perWindow })));
    let st;
    let lastHeads = -1;
    let lastProgress = Date.now();
    for (;;) {
      st = await callAll(all, { cmd: 'status' });
      const heads = sum(st, 'heads');
      if (heads >= STREAMS || sum(st, 'errors') > 0 && heads + sum(st, 'errors') * PER_CONN >= STREAMS) break;
      if (heads !== lastHeads) {
        lastHeads = heads;
        lastProgress = Date.now();
      }
      if (Date.now() - lastProgress > 10_000) break;
      await sleep(200);
    }
    row.connectMs = (nowUs() - t0) / 1000;
    row.heads = sum(st, 'heads');
    row.retried = sum(st, 'retried');
    row.failedConnections = sum(st, 'errors');
    row.connectCpuUs = ((server.pids().reduce((a, pid) => a + cpuSeconds(pid), 0) - cpu0) * 1e6) / Math.max(1, row.heads);
    log(`  ${row.heads}/${STREAMS} streams answered in ${row.connectMs.toFixed(0)} ms (server CPU ${row.connectCpuUs.toFixed(0)} us per stream)` +
      `${row.retried ? `, ${row.retried} connections retried` : ''}${row.failedConnections ? `, ${row.failedConnections} never connected` : ''}${st.find((s) => s.firstError) ? `; first error: ${st.find((s) => s.firstError).firstError}` : ''}`);
    if (row.heads === 0) throw new Error(`no stream answered: ${st.find((s) => s.firstError)?.firstError ?? 'no error seen'}`);
    const w = await warmUp(server, all, row.heads);
    row.subscribedMs = w.subscribedMs;
    await warmMore(server, all, row.heads);
    log(`  all subscribed (warm-up delivered to ${w.warm}) ${w.subscribedMs.toFixed(0)} ms after connect`);
    await sleep(1000);
    row.rssHeldKiB = server.pids().reduce((a, pid) => a + rssKiB(pid), 0);
    row.kbPerStream = ((row.rssHeldKiB - row.rssIdleKiB) * 1.024) / row.heads;
    log(`  RSS idle ${row.rssIdleKiB} KiB, with ${row.heads} streams held ${row.rssHeldKiB} KiB: ${row.kbPerStream.toFixed(2)} KB per stream`);
    if (snapshots !== null) {
      snapshots.push(await heapSnapshot(server));
      const compared = compareSnapshots(snapshots[0], snapshots[1], row.heads);
      const rssPerStream = ((row.rssHeldKiB - row.rssIdleKiB) * 1024) / row.heads;
      row.breakdown = `${breakdownTable(compared)}\n` +
        `| RSS not in live heap nodes (RSS growth - snapshot growth: malloc'd memory Node does not report, V8's free and young-generation space) | | ${(rssPerStream - compared.withoutCodePerStream).toFixed(0)} |\n` +
        `| **RSS growth, total** | | **${rssPerStream.toFixed(0)}** |`;
      log(`  heap per stream ${compared.withoutCodePerStream.toFixed(0)} B (compiled code left out) of ${rssPerStream.toFixed(0)} B RSS per stream:\n${row.breakdown}`);
    }

    const cpuBefore = server.pids().reduce((a, pid) => a + cpuSeconds(pid), 0);
    const kernelBefore = server.pids().reduce((a, pid) => a + kernelAndTotalSeconds(pid).kernel, 0);
    row.loadMeasured = loadAverage();
    const start = Date.now();
    const pubs = [];
    for (let seq = 1; seq <= M; seq++) {
      const wait = start + (seq - 1) * interval - Date.now();
      if (wait > 0) await sleep(wait);
      pubs.push(server.publish([{ channel: CHANNEL, id: `m${seq}`, content: sseLine(seq, nowUs()) }]));
    }
    const published = await Promise.all(pubs);
    let lastRecv = -1;
    lastProgress = Date.now();
    for (;;) {
      st = await callAll(all, { cmd: 'status' });
      if (sum(st, 'complete') >= row.heads) break;
      const recv = sum(st, 'receivedTotal');
      if (recv !== lastRecv) {
        lastRecv = recv;
        lastProgress = Date.now();
      }
      if (Date.now() - lastProgress > 5000 || Date.now() - start > 60_000 + M * interval) break;
      await sleep(300);
    }
    const cpuS = server.pids().reduce((a, pid) => a + cpuSeconds(pid), 0) - cpuBefore;
    const kernelS = server.pids().reduce((a, pid) => a + kernelAndTotalSeconds(pid).kernel, 0) - kernelBefore;
    const reports = await callAll(all, { cmd: 'report' });
    const every = [];
    const fromProbe = [];
    reports.forEach((r, idx) => {
      for (const v of r.lat) {
        if (v === null) continue;
        every.push(v);
        if (probe !== null && idx === reports.length - 1) fromProbe.push(v);
      }
    });
    const sa = Float64Array.from(every).sort();
    const sp = Float64Array.from(fromProbe).sort();
    Object.assign(row, {
      delivered: sa.length,
      expected: row.heads * M,
      closed: sum(reports, 'closed'),
      dups: sum(reports, 'dups'),
      p50: pct(sa, 50) / 1000,
      p99: pct(sa, 99) / 1000,
      max: sa.length ? sa[sa.length - 1] / 1000 : NaN,
      probeP50: pct(sp, 50) / 1000,
      probeP99: pct(sp, 99) / 1000,
      probeStreams: probeConns * PER_CONN,
      cpuUsPerDelivery: sa.length ? (cpuS * 1e6) / sa.length : NaN,
      kernelPct: cpuS > 0 ? (100 * kernelS) / cpuS : NaN,
      pubStatus: [...new Set(published.map((p) => p.status))].join('/'),
    });
    log(`  delivered ${row.delivered}/${row.expected}, p50 ${row.p50.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms, max ${row.max.toFixed(1)} ms; probe (${row.probeStreams} streams) p50 ${row.probeP50.toFixed(1)} p99 ${row.probeP99.toFixed(1)} ms; ` +
      `server CPU ${(cpuS * 1000).toFixed(0)} ms = ${row.cpuUsPerDelivery.toFixed(2)} us per delivery (${row.kernelPct.toFixed(0)}% kernel); publish ${row.pubStatus}; closed ${row.closed}, duplicates ${row.dups}; load ${row.loadMeasured}`);
  } finally {
    await closeClients();
    await server.stop();
  }
  return row;
}

/**
 * The HTTP/1 figure of the same run: bench/fanout/run.mjs with Holdfast alone at as many SSE connections and
 * messages (same build, same cores), its Markdown row for Holdfast parsed.
 */
function runHttp1() {
  const args = [join(benchDir, 'fanout', 'run.mjs'), '--peers', 'holdfast', '--subscribers', String(STREAMS), '--messages', String(M), '--interval', String(interval),
    '--server-cpu', String(serverCpu), '--client-cpu', String(clientCpu), '--remeasure', '0'];
  log(`\n== HTTP/1 in the same run: node ${args.map((a) => a.replace(`${repoDir}/`, '')).join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    adoptChild('bench/fanout', child);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(`| holdfast | ${STREAMS} |`));
      if (line === undefined) {
        resolve({ peer: 'holdfast (HTTP/1.1)', error: `bench/fanout exited ${code} without a Holdfast row` });
        return;
      }
      const c = line.split('|').map((x) => x.trim());
      // | peer | N | connect | subscribed | delivered / expected | p50 | p99 | max | worst msg p99 | probe | CPU/delivery | kernel % | RSS idle | RSS held | KB/held conn | other |
      resolve({ peer: 'holdfast (HTTP/1.1)', delivery: c[5], p50: Number(c[6]), p99: Number(c[7]), max: Number(c[8]), probe: c[10], cpuUsPerDelivery: Number(c[11]), kernelPct: Number(c[12]), kbPerConn: Number(c[15]), other: c[16], loadMeasured: loadAverage() });
    });
  });
}

const f = (x, d = 1) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

function table(rows, h1) {
  const lines = [
    '| server | protocol | streams / connections | delivered / expected | p50 ms | p99 ms | max ms | probe p50 / p99 ms | server CPU us / delivery | of it kernel % | RSS idle / held MiB | KB per held stream | load avg |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.peer} | HTTP/2 | ${STREAMS} / ${CONNS} | failed: ${r.error} |||||||||`);
      continue;
    }
    lines.push(`| ${r.peer} | HTTP/2 over ${opts.h2c && r.peer !== 'nchan' ? 'cleartext (h2c)' : 'TLS'} | ${r.heads} / ${CONNS} | ${r.delivered} / ${r.expected}${r.closed ? ` (${r.closed} closed)` : ''} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ` +
      `${f(r.probeP50)} / ${f(r.probeP99)} | ${f(r.cpuUsPerDelivery, 2)} | ${f(r.kernelPct, 0)} | ${f(r.rssIdleKiB / 1024)} / ${f(r.rssHeldKiB / 1024)} | ${f(r.kbPerStream, 2)} | ${r.loadMeasured} |`);
  }
  if (h1 !== null) {
    lines.push(h1.error
      ? `| Holdfast | HTTP/1.1 (bench/fanout) | ${STREAMS} / ${STREAMS} | failed: ${h1.error} |||||||||`
      : `| Holdfast | HTTP/1.1 cleartext (bench/fanout) | ${STREAMS} / ${STREAMS} | ${h1.delivery} | ${f(h1.p50)} | ${f(h1.p99)} | ${f(h1.max)} | ${h1.probe} | ${f(h1.cpuUsPerDelivery, 2)} | ${f(h1.kernelPct, 0)} | - | ${f(h1.kbPerConn, 2)} | ${h1.loadMeasured} |`);
  }
  return lines.join('\n');
}

/** With --heap-snapshots: each Node server's bytes per held stream by heap-groups.mjs's groups. */
function breakdowns(rows) {
  return rows.filter((r) => r.breakdown !== undefined).map((r) => `\nWhere ${r.peer}'s bytes per held stream go (V8 heap snapshots idle and held, self size per group):\n\n${r.breakdown}\n`).join('');
}

function targets(rows, h1) {
  const hf = rows.find((r) => r.peer === 'holdfast');
  if (hf === undefined) return '- (no Holdfast HTTP/2 row)';
  if (hf.error) return `- Memory per held HTTP/2 stream at most the HTTP/1 figure: NOT met (Holdfast over HTTP/2 failed: ${hf.error})`;
  const lines = [`- Every message delivered on every HTTP/2 stream (Holdfast): ${hf.delivered === STREAMS * M ? 'met' : 'NOT met'} (${hf.delivered} / ${STREAMS * M}).`];
  if (h1 !== null && !h1.error) {
    lines.push(`- Memory per held HTTP/2 stream at most the HTTP/1 figure: ${hf.kbPerStream <= h1.kbPerConn ? 'met' : 'NOT met'} (${f(hf.kbPerStream, 2)} KB per stream against ${f(h1.kbPerConn, 2)} KB per HTTP/1.1 connection).`);
    lines.push(`- p99: ${f(hf.p99)} ms over HTTP/2 against ${f(h1.p99)} ms over HTTP/1.1.`);
  }
  return lines.join('\n');
}

async function main() {
  if (opts.peers.split(',').includes('holdfast') || !opts['no-h1']) requireFreshDist(repoDir, 'bench/h2/fanout.mjs');
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const started = new Date().toISOString();
  const cert = makeCertificate(join(runDir, 'cert'));
  const rows = [];
  for (const name of opts.peers.split(',')) {
    try {
      rows.push(await runPeer(name, cert));
    } catch (err) {
      log(`  ${name} failed: ${err.stack ?? err}`);
      rows.push({ peer: name, error: String(err.message ?? err).split('\n')[0] });
    }
    await sleep(2000);
  }
  const h1 = opts['no-h1'] ? null : await runHttp1();
  const cmd = `node bench/h2/fanout.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const md = `\n## HTTP/2 SSE fan-out (${started.slice(0, 10)}, issue 13)\n\n\`${cmd}\` (started ${started}; server on core ${serverCpu}, subscribers, publisher and backend on core ${clientCpu}; ` +
    `${os.cpus().length} cores, Node ${process.version}; Holdfast ${gitHead()})\n\n${M} messages ${interval} ms apart to ${STREAMS} SSE streams on one channel, ${PER_CONN} streams on each of ${CONNS} HTTP/2 ` +
    `connections (node:http2 clients in ${opts.processes} processes at nice 10, plus a probe process at normal priority). Latency = publish call to the bytes read by the subscriber process. ` +
    `KB per held stream = (RSS held - RSS idle) / streams, ${opts.h2c ? '' : 'TLS and '}HTTP/2 connection state included. The HTTP/1.1 row is bench/fanout/run.mjs (raw-socket subscribers, one per connection) run right after, same build and cores.\n\n` +
    `${table(rows, h1)}\n\nTargets:\n${targets(rows, h1)}\n${breakdowns(rows)}`;
  console.log(md);
  if (opts.record) {
    appendFileSync(join(benchDir, 'RESULTS.md'), md);
    log('appended to bench/RESULTS.md');
  }
}

function gitHead() {
  try {
    return `commit ${execFileSync('git', ['-C', repoDir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()}`;
  } catch {
    return 'dist/';
  }
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${sig}: stopping everything this run started`);
    stopAll().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  log(err.stack ?? err);
  process.exitCode = 1;
} finally {
  await stopAll();
}
