// bench/scale: one publish fanned out to a very large number of held SSE subscribers on one machine,
// Holdfast (one node with workers; two nodes over Redis; two over NATS) and nginx + nchan in the same run.
// See README.md. Usage:
//   node bench/scale/run.mjs [--subscribers 100000] [--workers auto|N] [--messages 5]
//     [--peers holdfast,nchan,holdfast-redis,holdfast-nats] [--per-process 12500] [--record] [--profile]
//   smoke test: node bench/scale/run.mjs --subscribers 2000 --messages 3
import { execFileSync, fork } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { adoptChild, freePort, rssKiB, sleep, sseLine, stopAll, stopProcess, waitForPort } from '../fanout/peers.mjs';
import { call, clients, closeClients, connectAll, killClients, statusAll, sum } from './clients.mjs';
import { hostBusySeconds, kernelMemory, load1, waitForQuiet } from './host.mjs';
import { buildRef } from '../lib/build-ref.mjs';
import { brokerPids, holdfastFeatures, readCounter, startHoldfastCluster, startNchanWorkers, treeStats } from './servers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(here, '..');
const repoDir = resolve(benchDir, '..');
const runDir = join(benchDir, '.run', 'scale');

const { values: opts } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '100000' },
    workers: { type: 'string', default: 'auto' },
    messages: { type: 'string', default: '5' },
    interval: { type: 'string', default: 'auto' },
    peers: { type: 'string', default: 'holdfast,nchan,holdfast-redis,holdfast-nats' },
    nodes: { type: 'string', default: '2' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    nats: { type: 'string', default: 'nats://127.0.0.1:4222' },
    'per-process': { type: 'string', default: '12500' },
    'per-worker': { type: 'string', default: '15000' },
    'one-process-cap': { type: 'string', default: '18000' },
    'max-connections': { type: 'string', default: '19000' },
    probe: { type: 'string', default: '200' },
    window: { type: 'string', default: '512' },
    'server-cpu': { type: 'string', default: `0-${os.cpus().length - 1}` },
    'max-load': { type: 'string', default: '3' },
    'load-wait': { type: 'string', default: '300' },
    'main-js': { type: 'string', default: join(repoDir, 'dist', 'main.js') },
    ref: { type: 'string' },
    record: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
});

const N = Number(opts.subscribers);
const M = Number(opts.messages);
const perProcess = Number(opts['per-process']);
const perWorker = Number(opts['per-worker']);
const nodesOpt = Number(opts.nodes);
const intervalMs = opts.interval === 'auto' ? (N >= 20_000 ? 3000 : 1000) : Number(opts.interval);
const CHANNEL = 'fan';
const PATH = `/sub/${CHANNEL}`;
const cores = os.cpus().length;
const KNOWN = new Set(['holdfast', 'nchan', 'holdfast-redis', 'holdfast-nats']);
const peers = opts.peers.split(',');
for (const p of peers) if (!KNOWN.has(p)) throw new Error(`--peers: one of ${[...KNOWN].join(', ')}, not ${p}`);
if (!(perProcess > 0 && perProcess <= 18_000)) throw new Error('--per-process: 1..18000 (each client process has a 20,000-fd limit)');
if (!(N > 0 && M > 0)) throw new Error('--subscribers and --messages: positive numbers');

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const log = (...a) => console.error(...a);

let features = { workers: false, bus: false };
let holdfastVersion = 'dist/ built from it';
let backend = null;
let server = null;

// ------------------------------------------------------------------------------------------- cleanup

async function cleanup() {
  killClients();
  if (server) await server.stop().catch((err) => log(`  stopping the server: ${err.message}`));
  server = null;
  if (backend) await stopProcess(backend.proc).catch(() => {});
  backend = null;
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`\n${sig}: stopping everything this run started`);
    // Twice, and stopAll() last: a server being started when the signal came is spawned after the first pass.
    cleanup()
      .then(() => sleep(1500))
      .then(() => cleanup())
      .then(() => stopAll())
      .finally(() => process.exit(130));
  });
}

/** The GRIP backend (bench/fanout/backend.mjs) for Holdfast: every GET /sub/<ch> held as SSE on <ch>. */
async function startBackend() {
  const port = await freePort();
  const child = fork(join(benchDir, 'fanout', 'backend.mjs'), [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const proc = adoptChild('backend', child);
  backend = { port, proc };
  await waitForPort(port, 30_000, proc); // a loaded shared machine can take seconds to start a process
}

// ---------------------------------------------------------------------------------------------- plan

/**
 * What runs for a peer name: nodes, workers per node, bus and subscriber count. `--workers auto` is the
 * larger of the core count and what the fd limit asks for (one process per `--per-worker` subscribers).
 * A Holdfast build without `--workers` runs one process per node with at most `--one-process-cap`
 * subscribers each, and the row says so; without `--bus` the bus peers are not run.
 */
function plan(peer) {
  const nodes = peer === 'holdfast-redis' || peer === 'holdfast-nats' ? nodesOpt : 1;
  const bus = peer === 'holdfast-redis' ? opts.redis : peer === 'holdfast-nats' ? opts.nats : 'memory';
  let n = N;
  let workers = opts.workers === 'auto' ? Math.max(cores, Math.ceil(n / nodes / perWorker)) : Number(opts.workers);
  const notes = [];
  if (peer === 'nchan') return { peer, kind: 'nchan', nodes, bus, n, workers, notes };
  if (bus !== 'memory' && !features.bus) return { peer, skip: `not run: this build of Holdfast has no --bus (not in its --help)` };
  if (workers > 1 && !features.workers) {
    const cap = Number(opts['one-process-cap']) * nodes;
    notes.push(`this build has no --workers: ${nodes === 1 ? 'one process' : `one process per node`} (asked: ${workers} workers${nodes > 1 ? ' per node' : ''})`);
    workers = 1;
    if (n > cap) {
      notes.push(`${n} subscribers do not fit one process's 20,000 fds: ${cap} subscribers`);
      n = cap;
    }
  }
  return { peer, kind: 'holdfast', nodes, bus, n, workers, notes };
}

function layout(p) {
  if (p.kind === 'nchan') return `nginx master + ${p.workers} worker${p.workers > 1 ? 's' : ''}`;
  const per = p.workers > 1 ? `primary + ${p.workers} workers` : 'one process';
  const bus = p.bus === 'memory' ? '' : ` over ${p.bus}`;
  return p.nodes === 1 ? `${per}${bus}` : `${p.nodes} nodes x (${per})${bus}`;
}

// ------------------------------------------------------------------------------------------ measuring

const pct = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]);

/** Publishes warm-up messages (seq 0) until every subscriber has one (its subscription is live); bounded. */
async function warmUp(cl, timeoutMs = 120_000) {
  const t = Date.now();
  const deadline = t + timeoutMs;
  let k = 0;
  let warm = 0;
  while (Date.now() < deadline) {
    k++;
    const r = await server.publish(CHANNEL, `w${k}`, sseLine(0, nowUs()));
    if (r.status < 200 || r.status >= 300) log(`  warm-up publish: ${r.status} after ${r.ms.toFixed(0)} ms ${r.error ?? ''}`);
    let lastProgress = Date.now();
    while (Date.now() - lastProgress < 3000 && Date.now() < deadline) {
      await sleep(200);
      const now = sum(await statusAll(cl.all), 'warm');
      if (now !== warm) lastProgress = Date.now();
      warm = now;
      if (warm >= cl.heads) return { ms: Date.now() - t, warm, publishes: k };
    }
  }
  return { ms: NaN, warm, publishes: k };
}

/** Two more warm-ups, waited for (bounded), so the measured messages do not pay for JIT compilation. */
async function warmMore(cl, count) {
  const target = sum(await statusAll(cl.all), 'warmTotal') + count * cl.heads;
  for (let k = 0; k < count; k++) {
    await server.publish(CHANNEL, `x${k}`, sseLine(0, nowUs()));
    await sleep(500);
  }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && sum(await statusAll(cl.all), 'warmTotal') < target) await sleep(200);
}

async function busCounters(nodes) {
  return Promise.all(
    nodes.map(async (node) => ({
      in: node.controlPort === null ? null : await readCounter(node.controlPort, 'holdfast_bus_messages_total', 'direction="in"'),
      out: node.controlPort === null ? null : await readCounter(node.controlPort, 'holdfast_bus_messages_total', 'direction="out"'),
    })),
  );
}

function brokerCpuS(bus) {
  const pids = bus.startsWith('redis') ? brokerPids().redis : bus.startsWith('nats') ? brokerPids().nats : [];
  return pids.length === 0 ? null : treeStats(pids).cpuS;
}

async function runPeer(p) {
  log(`\n== ${p.peer}: ${p.n} SSE subscribers, ${layout(p)}, ${M} messages ${intervalMs} ms apart`);
  for (const note of p.notes) log(`  note: ${note}`);
  const row = { peer: p.peer, layout: layout(p), n: p.n, asked: N, notes: p.notes, workers: p.workers, nodes: p.nodes };
  row.loadBefore = p.n >= 10_000 ? await waitForQuiet(Number(opts['max-load']), Number(opts['load-wait']), log) : load1();
  const dir = join(runDir, `${p.peer}-${p.n}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    if (p.kind === 'holdfast') {
      await startBackend();
      server = await startHoldfastCluster({
        dirOf: (k) => join(dir, `node${k}`),
        cpu: opts['server-cpu'],
        backendPort: backend.port,
        mainJs: opts['main-js'],
        nodes: p.nodes,
        workers: p.workers,
        bus: p.bus,
        maxConnections: Number(opts['max-connections']),
        // The workers inherit the primary's execArgv (node:cluster), so every process writes its own profile.
        nodeArgs: opts.profile ? ['--cpu-prof', '--cpu-prof-dir', join(benchDir, '.run', 'prof')] : [],
      });
    } else {
      server = await startNchanWorkers({ dir, cpu: opts['server-cpu'], workers: p.workers });
    }
    await sleep(1500);
    const idle = treeStats(server.pids());
    // A build may accept --workers and still start one process: say what ran, by counting the tree.
    const expectedProcs = p.kind === 'nchan' ? 1 + p.workers : p.nodes * (p.workers > 1 ? 1 + p.workers : 1);
    if (idle.count !== expectedProcs) {
      const note = `asked for ${layout(p)} (${expectedProcs} processes); ${idle.count} processes were running`;
      log(`  note: ${note}`);
      row.notes = [...row.notes, note];
    }
    const kIdle = kernelMemory();
    row.processes = idle.count;
    row.rssIdleKiB = idle.rssKiB;
    row.pssIdleKiB = idle.pssKiB;

    const cl = await connectAll({
      ports: server.nodes.map((x) => x.port),
      path: PATH,
      n: p.n,
      perProcess,
      probeN: Math.min(Number(opts.probe), Math.floor(p.n / 10)),
      window: Number(opts.window),
      messages: M,
      log,
    });
    const afterConnect = treeStats(server.pids());
    Object.assign(row, { heads: cl.heads, gaveUp: cl.gaveUp, retried: cl.retried, connectMs: cl.connectMs, clientProcs: cl.procs, perPort: cl.perPort });
    row.connectRate = cl.heads / (cl.connectMs / 1000);
    row.connectCpuUs = ((afterConnect.cpuS - idle.cpuS) * 1e6) / Math.max(1, cl.heads);
    log(
      `  connected ${cl.heads}/${p.n} in ${(cl.connectMs / 1000).toFixed(1)} s = ${Math.round(row.connectRate)} subscribers/s from ${cl.procs} client processes ` +
        `(server CPU ${row.connectCpuUs.toFixed(0)} us per subscribe)${cl.retried ? `, ${cl.retried} attempts retried (first error: ${cl.firstError})` : ''}${cl.gaveUp ? `, ${cl.gaveUp} gave up` : ''}`,
    );
    if (cl.heads === 0) throw new Error(`no subscriber connected (first error: ${cl.firstError})`);

    const w = await warmUp(cl);
    row.subscribedMs = w.ms;
    log(`  warm-up delivered to ${w.warm}/${cl.heads} (${w.publishes} publishes, ${Number.isNaN(w.ms) ? 'timed out' : `${w.ms} ms`})`);
    await warmMore(cl, 2);
    await sleep(1500);
    const held = treeStats(server.pids());
    const kHeld = kernelMemory();
    row.rssHeldKiB = held.rssKiB;
    row.pssHeldKiB = held.pssKiB;
    row.processes = held.count;
    row.kbPerConnRss = ((held.rssKiB - idle.rssKiB) * 1.024) / cl.heads; // KB = 1000 bytes
    row.kbPerConnPss = ((held.pssKiB - idle.pssKiB) * 1.024) / cl.heads;
    row.kernelSlabBytesPerConn = ((kHeld.slabKiB - kIdle.slabKiB) * 1024) / cl.heads;
    row.kernelSockMemBytesPerConn = ((kHeld.tcpMemPages - kIdle.tcpMemPages) * 4096) / cl.heads;
    row.tcpInuseDelta = kHeld.tcpInuse - kIdle.tcpInuse;
    row.clientRssKiB = cl.all.reduce((a, c) => a + rssKiB(c.pid), 0);
    log(
      `  server RSS ${(idle.rssKiB / 1024).toFixed(0)} -> ${(held.rssKiB / 1024).toFixed(0)} MiB over ${held.count} processes: ${row.kbPerConnRss.toFixed(2)} KB per connection ` +
        `(PSS ${row.kbPerConnPss.toFixed(2)} KB); kernel slab +${row.kernelSlabBytesPerConn.toFixed(0)} B and socket buffers +${row.kernelSockMemBytesPerConn.toFixed(0)} B per loopback connection (both ends), ` +
        `${row.tcpInuseDelta} more TCP sockets; client processes ${(row.clientRssKiB / 1024).toFixed(0)} MiB RSS`,
    );

    // ---- measured messages
    const bus0 = await busCounters(server.nodes);
    const broker0 = brokerCpuS(p.bus);
    // Read after the scrape above: a /metrics scrape makes every worker list its descriptors and handles, a cost
    // that grows with the connections held and was counted here as delivery CPU before.
    const { cpuS: cpu0, kernelCpuS: kernel0 } = treeStats(server.pids());
    const ownPids = () => [process.pid, ...[...clients].map((c) => c.pid), ...(backend ? [backend.proc.pid] : []), ...server.pids()];
    const own0 = treeStats(ownPids()).cpuS;
    const host0 = hostBusySeconds();
    const start = Date.now();
    const pubs = [];
    for (let seq = 1; seq <= M; seq++) {
      const due = start + (seq - 1) * intervalMs;
      if (due > Date.now()) await sleep(due - Date.now());
      pubs.push(server.publish(CHANNEL, `m${seq}`, sseLine(seq, nowUs())));
    }
    const answers = await Promise.all(pubs);
    let lastRecv = -1;
    let lastProgress = Date.now();
    const hardDeadline = Date.now() + 120_000;
    for (;;) {
      const st = await statusAll(cl.all);
      if (sum(st, 'complete') >= cl.heads) break;
      const recv = sum(st, 'receivedTotal');
      if (recv !== lastRecv) {
        lastRecv = recv;
        lastProgress = Date.now();
      }
      if (Date.now() - lastProgress > 10_000 || Date.now() > hardDeadline) break;
      await sleep(250);
    }
    const after = treeStats(server.pids());
    row.cpuMs = (after.cpuS - cpu0) * 1000;
    row.kernelPct = row.cpuMs > 0 ? (100 * (after.kernelCpuS - kernel0) * 1000) / row.cpuMs : NaN;
    row.foreignPct = (100 * Math.max(0, hostBusySeconds() - host0 - (treeStats(ownPids()).cpuS - own0))) / ((Date.now() - start) / 1000);
    const broker1 = brokerCpuS(p.bus);
    row.brokerCpuMsPerPublish = broker0 === null || broker1 === null ? null : ((broker1 - broker0) * 1000) / M;
    const bus1 = await busCounters(server.nodes);
    row.bus = server.nodes.map((node, k) => ({
      node: k,
      subscribers: cl.perPort[k],
      inPerPublish: bus0[k].in === null || bus1[k].in === null ? null : (bus1[k].in - bus0[k].in) / M,
      outPerPublish: bus0[k].out === null || bus1[k].out === null ? null : (bus1[k].out - bus0[k].out) / M,
    }));
    row.answers = answers.map((a) => ({ status: a.status, ms: a.ms, delivered: a.headers?.['x-holdfast-delivered'] ?? null, nodes: a.headers?.['x-holdfast-nodes'] ?? null, error: a.error ?? null }));

    const reports = await Promise.all(cl.all.map((c) => call(c, { cmd: 'report' }, 120_000)));
    const heads = sum(reports, 'heads');
    const perMsg = Array.from({ length: M }, () => []);
    const all = [];
    const probe = [];
    reports.forEach((r, idx) => {
      const isProbe = cl.probe !== null && idx === reports.length - 1;
      for (let k = 0; k < r.lat.length; k++) {
        const v = r.lat[k];
        if (v === null) continue;
        all.push(v);
        perMsg[k % M].push(v);
        if (isProbe) probe.push(v);
      }
    });
    const sorted = (a) => Float64Array.from(a).sort();
    const sa = sorted(all);
    const sp = sorted(probe);
    row.heads = heads;
    row.expected = heads * M;
    row.delivered = sa.length;
    row.missing = row.expected - row.delivered;
    row.dups = sum(reports, 'dups');
    row.closed = sum(reports, 'closed');
    row.p50 = pct(sa, 50) / 1000;
    row.p99 = pct(sa, 99) / 1000;
    row.max = sa.length ? sa[sa.length - 1] / 1000 : NaN;
    row.probeP99 = pct(sp, 99) / 1000;
    row.msgs = perMsg.map((a, k) => {
      const s = sorted(a);
      return { seq: k + 1, delivered: s.length, expected: heads, p50: pct(s, 50) / 1000, p99: pct(s, 99) / 1000, last: s.length ? s[s.length - 1] / 1000 : NaN, answer: row.answers[k] };
    });
    row.cpuUsPerDelivery = sa.length ? (row.cpuMs * 1000) / sa.length : NaN;
    for (const m of row.msgs) {
      log(
        `  msg ${m.seq}: ${m.delivered}/${m.expected}${m.delivered < m.expected ? ` (MISSING ${m.expected - m.delivered})` : ''}, last delivery ${m.last.toFixed(0)} ms, p50 ${m.p50.toFixed(0)} p99 ${m.p99.toFixed(0)} ms; ` +
          `publish answer ${m.answer.status} in ${m.answer.ms.toFixed(0)} ms${m.answer.error ? ` (${m.answer.error})` : ''}${m.answer.delivered !== null ? `, x-holdfast-delivered ${m.answer.delivered}` : ''}${m.answer.nodes !== null ? `, x-holdfast-nodes ${m.answer.nodes}` : ''}`,
      );
    }
    log(
      `  all: ${row.delivered}/${row.expected} delivered, p50 ${row.p50.toFixed(0)} ms, p99 ${row.p99.toFixed(0)} ms (probe p99 ${row.probeP99.toFixed(0)} ms); server CPU ${row.cpuMs.toFixed(0)} ms = ${row.cpuUsPerDelivery.toFixed(2)} us per delivery (${row.kernelPct.toFixed(0)}% in the kernel); ` +
        `other processes ${row.foreignPct.toFixed(0)}% of a core; closed by the server ${row.closed}, duplicates ${row.dups}`,
    );
    if (p.bus !== 'memory') {
      for (const b of row.bus) log(`  node ${b.node} (${b.subscribers} subscribers): bus messages in ${fmtN(b.inPerPublish)} / out ${fmtN(b.outPerPublish)} per publish`);
      log(`  broker CPU ${row.brokerCpuMsPerPublish === null ? 'n/a' : `${row.brokerCpuMsPerPublish.toFixed(1)} ms`} per publish (all its clients, not only this run)`);
    }
    await closeClients(cl.all);
  } finally {
    await cleanup();
  }
  return row;
}

// ------------------------------------------------------------------------------------------------ report

const fmt = (x, d = 0) => (x === undefined || x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
const fmtN = (x) => (x === null || x === undefined ? 'n/a' : Number.isInteger(x) ? String(x) : x.toFixed(2));

/** Largest of the numbers that are not NaN (a message nobody got has no latency); NaN if none. */
const maxOf = (list) => {
  const known = list.filter((x) => !Number.isNaN(x));
  return known.length === 0 ? NaN : Math.max(...known);
};

function tables(rows) {
  const out = [];
  out.push(
    '| peer | layout | subscribers | connect (s) | connect rate (subs/s) | server CPU / subscribe (us) | delivered / expected | p50 (ms) | p99 (ms) | probe p99 (ms) | slowest last delivery (ms) | server CPU / delivery (us) | of it in the kernel (%) | server RSS idle -> held (MiB) | KB / conn (RSS) | KB / conn (PSS) | kernel slab / conn (B) | other load (% core) |',
    '|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of rows) {
    if (r.skip || r.error) {
      out.push(`| ${r.peer} | ${r.layout ?? ''} | ${r.n ?? ''} | ${r.skip ?? `failed: ${r.error}`} ||||||||||||||`);
      continue;
    }
    const lastMax = maxOf(r.msgs.map((m) => m.last));
    out.push(
      `| ${r.peer} | ${r.layout} (${r.processes} processes) | ${r.heads}${r.heads < r.n ? ` of ${r.n}` : ''} | ${fmt(r.connectMs / 1000, 1)} | ${fmt(r.connectRate)} | ${fmt(r.connectCpuUs)} | ` +
        `${r.delivered} / ${r.expected}${r.missing ? ` (**${r.missing} missing**)` : ''} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.probeP99)} | ${fmt(lastMax)} | ${fmt(r.cpuUsPerDelivery, 2)} | ${fmt(r.kernelPct)} | ` +
        `${fmt(r.rssIdleKiB / 1024)} -> ${fmt(r.rssHeldKiB / 1024)} | ${fmt(r.kbPerConnRss, 2)} | ${fmt(r.kbPerConnPss, 2)} | ${fmt(r.kernelSlabBytesPerConn)} | ${fmt(r.foreignPct)} |`,
    );
  }
  out.push('', 'Per message (latency = publish request written to the subscriber process reading the event, over all subscribers):', '');
  out.push('| peer | msg | delivered / subscribers | to last delivery (ms) | p50 (ms) | p99 (ms) | publish answer | x-holdfast-delivered | x-holdfast-nodes |', '|---|---:|---|---:|---:|---:|---|---:|---:|');
  for (const r of rows) {
    if (!r.msgs) continue;
    for (const m of r.msgs) {
      out.push(
        `| ${r.peer} | ${m.seq} | ${m.delivered} / ${m.expected}${m.delivered < m.expected ? ` (**${m.expected - m.delivered} missing**)` : ''} | ${fmt(m.last)} | ${fmt(m.p50)} | ${fmt(m.p99)} | ` +
          `${m.answer.status} in ${fmt(m.answer.ms)} ms${m.answer.error ? ` (${m.answer.error.replaceAll('|', '/').replaceAll('\n', ' ')})` : ''} | ${m.answer.delivered ?? (r.peer === 'nchan' ? '-' : 'n/a')} | ${m.answer.nodes ?? (r.peer === 'nchan' ? '-' : 'n/a')} |`,
      );
    }
  }
  const busRows = rows.filter((r) => r.bus && r.nodes > 1);
  if (busRows.length) {
    out.push('', 'Bus messages per node per publish (`holdfast_bus_messages_total` on each node\'s `/metrics`, over the measured publishes; all publishes went to node 0):', '');
    out.push('| peer | node | subscribers on it | bus in / publish | bus out / publish | broker CPU / publish (ms) |', '|---|---:|---:|---:|---:|---:|');
    for (const r of busRows) for (const b of r.bus) out.push(`| ${r.peer} | ${b.node} | ${b.subscribers} | ${fmtN(b.inPerPublish)} | ${fmtN(b.outPerPublish)} | ${fmt(r.brokerCpuMsPerPublish, 1)} |`);
  }
  return out.join('\n');
}

/**
 * Bus messages per publish over all nodes, in + out (node 0 sends one, every other node holding the channel
 * receives one), against the nodes holding it. A series a node never incremented is absent from its
 * /metrics and counts as none here (it is printed n/a in the table); with no series on any node: n/a.
 */
function busTarget(r) {
  const values = r.bus.flatMap((b) => [b.inPerPublish, b.outPerPublish]);
  if (values.every((v) => v === null)) return 'n/a (no holdfast_bus_messages_total on any node)';
  const total = values.reduce((a, v) => a + (v ?? 0), 0);
  const per = r.bus.map((b) => `node ${b.node} in ${fmtN(b.inPerPublish)} out ${fmtN(b.outPerPublish)}`).join(', ');
  return `${total === r.nodes ? 'met' : 'NOT met'} (${fmtN(total)} in + out over the nodes; ${per})`;
}

function targets(rows) {
  const out = [];
  for (const r of rows.filter((x) => !x.skip && !x.error)) {
    const worstP99 = maxOf(r.msgs.map((m) => m.p99));
    out.push(
      `- ${r.peer} at ${r.heads}: 100% delivered: ${r.missing === 0 && r.heads === r.n ? 'met' : `NOT met (${r.missing} of ${r.expected} missing${r.heads < r.n ? `, ${r.n - r.heads} never connected` : ''})`}; ` +
        `one publish p99 < 1.5 s: ${worstP99 < 1500 ? 'met' : 'NOT met'} (worst per-message p99 ${fmt(worstP99)} ms${r.heads < 100_000 ? `; the target is for 100k, this is ${r.heads}` : ''}); ` +
        `<= 10 KB per connection in total: ${r.kbPerConnRss <= 10 ? 'met' : 'NOT met'} (${fmt(r.kbPerConnRss, 2)} KB RSS, ${fmt(r.kbPerConnPss, 2)} KB PSS, over ${r.processes} processes)` +
        (r.nodes > 1
          ? `; bus messages per publish = nodes holding the channel (${r.nodes}): ${busTarget(r)}`
          : ''),
    );
  }
  return out.join('\n');
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: repoDir, encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

async function main() {
  mkdirSync(runDir, { recursive: true });
  if (opts.ref) {
    const b = buildRef(repoDir, runDir, opts.ref);
    opts['main-js'] = b.mainJs;
    holdfastVersion = `Holdfast built from ${opts.ref} = ${b.sha} (--ref)`;
  }
  features = holdfastFeatures(opts['main-js']);
  // Read at the start: the run takes minutes and the branch may get commits meanwhile.
  const commit = git(['rev-parse', '--short=12', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', 'src', 'bench/scale', 'bench/fanout', 'bench/lib']) !== '' ? ' (with uncommitted changes)' : '';
  const started = new Date().toISOString();
  log(`Holdfast ${opts['main-js']}: --workers ${features.workers ? 'available' : 'NOT available'}, --bus ${features.bus ? 'available' : 'NOT available'}; ${cores} cores, load ${load1()}`);
  const rows = [];
  try {
    for (const peer of peers) {
      const p = plan(peer);
      if (p.skip) {
        log(`\n== ${peer}: ${p.skip}`);
        rows.push({ peer, skip: p.skip });
        continue;
      }
      try {
        rows.push(await runPeer(p));
      } catch (err) {
        log(`  ${peer} failed: ${err.stack ?? err}`);
        rows.push({ peer, layout: layout(p), n: p.n, error: String(err.message ?? err).split('\n')[0] });
        await cleanup();
      }
      if (interrupted) return;
      await sleep(3000); // TIME_WAIT and the kernel's socket memory settle between peers
    }
  } finally {
    await cleanup();
    await stopAll();
  }
  const cmd = `node bench/scale/run.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const notes = rows.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.peer}: ${n}.`));
  let md =
    `\n## ${started.slice(0, 10)}: scale, one publish to ${N} held SSE subscribers\n\n` +
    `\`${cmd}\` (started ${started}; commit ${commit}${dirty}, ${opts.ref ? holdfastVersion : `Holdfast from ${opts['main-js'] === join(repoDir, 'dist', 'main.js') ? holdfastVersion : opts['main-js']}`}; --workers ${features.workers ? 'available' : 'not in this build'}, --bus ${features.bus ? 'available' : 'not in this build'}; ` +
    `${cores} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; servers on cores ${opts['server-cpu']}, clients unpinned, bulk client processes at nice 10; load before each peer: ${rows.filter((r) => r.loadBefore !== undefined).map((r) => `${r.peer} ${r.loadBefore.toFixed(2)}`).join(', ')})\n\n` +
    `The machine was shared: other developers ran test suites on it during the run, so it was not quiet ("other load" is the CPU of processes outside this run, in % of one core, during the measured messages).\n` +
    `${M} messages ${intervalMs} ms apart on one channel; latency from the publish request to the subscriber process parsing the event, over every (subscriber, message); probe = ${opts.probe} subscribers in a normal-priority process. ` +
    `KB / conn = (server memory with every subscriber held - before any) / subscribers, summed over every server process (RSS counts shared pages once per process; PSS splits them). Kernel slab / conn: /proc/meminfo Slab over the same interval, per loopback connection (both ends in this kernel).\n\n` +
    `${notes.length ? `${notes.join('\n')}\n\n` : ''}${tables(rows)}\n\nTargets (issue 11):\n${targets(rows)}\n`;
  console.log(md);
  if (opts.record) {
    appendFileSync(join(benchDir, 'RESULTS.md'), md);
    log('appended to bench/RESULTS.md');
  }
}

main().catch(async (err) => {
  log(err.stack ?? err);
  await cleanup();
  await stopAll();
  process.exitCode = 1;
});
