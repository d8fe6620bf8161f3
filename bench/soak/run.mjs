// bench/soak: the churn soak of issue 15. SSE sessions that come and go on shared channels, publishes to
// them and to a stream of channels never used before (what found the per-channel leak, defect 2), and
// keep-alive proxied requests, for minutes; samples Holdfast's RSS, open fds and heap after a full GC, and
// reports deliveries expected and missing, every answer's status, and whether memory and fds came back.
// See ../README.md. Usage:
//   node bench/soak/run.mjs [--duration 600] [--sessions 200] [--channels 20] [--publish-rate 50]
//     [--distinct-rate 1000] [--history-age 30000] [--bus memory] [--record]
import { appendFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cpuSeconds, freePort, rssKiB, startHoldfast } from '../fanout/peers.mjs';
import { requireFreshDist } from '../lib/dist-check.mjs';
import { checkoutInfo } from '../lib/git-info.mjs';
import { get, openSse, percentile, sleep, startWorkBackend } from '../lib/fault-clients.mjs';
import { heapAfterGc } from '../lib/inspector-heap.mjs';
import { httpGet, stopAll, stopAllOnSignal, stopProcess } from '../lib/processes.mjs';
import { load1 } from '../scale/host.mjs';
import { postFresh, readCounter } from '../scale/servers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(here, '..');
const repoDir = resolve(benchDir, '..');
const runDir = join(benchDir, '.run', 'soak');

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '600' },
    sessions: { type: 'string', default: '200' },
    channels: { type: 'string', default: '20' },
    'publish-rate': { type: 'string', default: '50' },
    'distinct-rate': { type: 'string', default: '1000' },
    'distinct-batch': { type: 'string', default: '250' },
    warmup: { type: 'string', default: '15' },
    'request-loops': { type: 'string', default: '4' },
    'history-age': { type: 'string', default: '30000' },
    sample: { type: 'string', default: '5' },
    'gc-every': { type: 'string', default: '20' },
    bus: { type: 'string', default: 'memory' },
    cpu: { type: 'string', default: `0-${os.cpus().length - 1}` },
    'main-js': { type: 'string', default: join(repoDir, 'dist', 'main.js') },
    record: { type: 'boolean', default: false },
  },
});
const DURATION_MS = Number(opts.duration) * 1000;
const SESSIONS = Number(opts.sessions);
const CHANNELS = Number(opts.channels);
const PUBLISH_RATE = Number(opts['publish-rate']);
const DISTINCT_RATE = Number(opts['distinct-rate']);
const DISTINCT_BATCH = Number(opts['distinct-batch']);
const REQUEST_LOOPS = Number(opts['request-loops']);
const HISTORY_AGE_MS = Number(opts['history-age']);
const SAMPLE_MS = Number(opts.sample) * 1000;
const GC_EVERY_MS = Number(opts['gc-every']) * 1000;
/** A session stops counting what it should get this long before it closes: deliveries later than that are missing. */
const GRACE_MS = 2000;
const WARMUP_MS = Number(opts.warmup) * 1000;
/** push.dedupWindowMs, Holdfast's default: item ids are remembered this long. */
const DEDUP_WINDOW_MS = 60_000;
const log = (...a) => console.error(...a);
const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
const runTag = Date.now().toString(36);
/** The stop flags of every load started, so an interrupted run stops them all. */
const halts = new Set();

function tally(map, key) {
  map.set(key, (map.get(key) ?? 0) + 1);
}
const total = (map) => [...map.values()].reduce((a, n) => a + n, 0);
const tallyText = (map) => [...map].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x ${n}`).join(', ') || 'none';

function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Least-squares slope of y over x (per unit of x); NaN with fewer than 3 points. */
function slope(points) {
  if (points.length < 3) return NaN;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

// ------------------------------------------------------------------------------------------- the load

/** Per shared channel, every publish in order: { seq, sentAt, answeredAt, ok }. */
const publishes = Array.from({ length: CHANNELS }, () => []);
/** What the clients saw; started afresh after the warm-up, so the report is the soak's alone. */
const newCounts = () => ({
  sessions: 0,
  sessionStatus: new Map(),
  expected: 0,
  missing: 0,
  received: 0,
  duplicates: 0,
  missingSamples: [],
  publishStatus: new Map(),
  distinctStatus: new Map(),
  distinctChannels: 0,
  requestStatus: new Map(),
  requestMs: [],
  publishMs: [],
  hung: 0,
});
let counts = newCounts();

function publishShared(controlPort, ch, seq) {
  const entry = { seq, sentAt: performance.now(), answeredAt: null, ok: false };
  publishes[ch].push(entry);
  const body = JSON.stringify({ items: [{ channel: `s${ch}-${runTag}`, id: `${runTag}-${ch}-${seq}`, formats: { 'http-stream': { content: `data: ${seq}\n\n` } } }] });
  return postFresh(controlPort, '/publish', body, 'application/json', 30_000).then((r) => {
    entry.answeredAt = performance.now();
    entry.ok = r.status >= 200 && r.status < 300;
    counts.publishMs.push(r.ms);
    tally(counts.publishStatus, r.status === 0 ? `no answer (${r.error})` : `${r.status}${r.error ? ` ${r.error.split(' ')[0]}` : ''}`);
  });
}

/** The last seq per shared channel, over warm-up and soak: a repeated id would be dropped as a duplicate. */
const seqs = new Array(CHANNELS).fill(0);

/** PUBLISH_RATE publishes a second spread over the shared channels, each on its own connection, at most 64 waiting. */
async function sharedPublisher(controlPort, halt) {
  const inFlight = new Set();
  const t0 = performance.now();
  for (let k = 0; !halt.now; k++) {
    const due = t0 + (k * 1000) / PUBLISH_RATE;
    if (due > performance.now()) await sleep(due - performance.now());
    if (inFlight.size >= 64) await Promise.race(inFlight);
    const ch = k % CHANNELS;
    const p = publishShared(controlPort, ch, ++seqs[ch]);
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
  }
  await Promise.all(inFlight);
}

/** DISTINCT_RATE channels never used before, a second, each with one item with an id, DISTINCT_BATCH items a publish, at most 4 waiting. */
async function distinctPublisher(controlPort, halt) {
  const t0 = performance.now();
  const perSecond = DISTINCT_RATE / DISTINCT_BATCH;
  const inFlight = new Set();
  for (let k = 0; !halt.now; k++) {
    const due = t0 + (k * 1000) / perSecond;
    if (due > performance.now()) await sleep(due - performance.now());
    if (inFlight.size >= 4) await Promise.race(inFlight);
    const items = [];
    for (let i = 0; i < DISTINCT_BATCH; i++, distinctN++) {
      items.push({ channel: `d${distinctN}-${runTag}`, id: `d${distinctN}`, formats: { 'http-stream': { content: `data: d${distinctN}\n\n` } } });
    }
    const p = postFresh(controlPort, '/publish', JSON.stringify({ items }), 'application/json', 30_000).then((r) => {
      tally(counts.distinctStatus, r.status === 0 ? `no answer (${r.error})` : `${r.status}${r.error ? ` ${r.error.split(' ')[0]}` : ''}`);
      if (r.status >= 200 && r.status < 300) counts.distinctChannels += DISTINCT_BATCH;
    });
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
  }
  await Promise.all(inFlight);
}
let distinctN = 0;

/**
 * One session slot: an SSE session on a random shared channel lives 1-10 s, then stops counting (GRACE_MS
 * before it closes) and closes; the next one opens at once. Expected = the channel's publishes sent after
 * the head arrived (Holdfast subscribes before it flushes the head) and answered 2xx before the session
 * stopped counting. The tally is made when it closes, so nothing per session outlives it.
 */
async function sessionSlot(port, halt) {
  while (!halt.now) {
    const ch = Math.floor(Math.random() * CHANNELS);
    const seen = new Map();
    const s = openSse(port, `/sub/s${ch}-${runTag}`, { onEvent: (_, ev) => seen.set(ev.data, (seen.get(ev.data) ?? 0) + 1) });
    await s.opened;
    counts.sessions++;
    tally(counts.sessionStatus, s.status === 0 ? `no answer (${s.ended?.how})` : String(s.status));
    if (s.status !== 200) {
      s.close();
      await sleep(100);
      continue;
    }
    await sleep(1000 + Math.random() * 9000);
    const countUntil = performance.now();
    await sleep(GRACE_MS);
    const cutEarly = s.ended !== null ? s.ended : null;
    s.close();
    for (const p of publishes[ch]) {
      if (p.sentAt < s.openedAt || !p.ok || p.answeredAt > countUntil) continue;
      counts.expected++;
      if (seen.has(String(p.seq))) counts.received++;
      else {
        counts.missing++;
        if (counts.missingSamples.length < 5) counts.missingSamples.push(`channel s${ch} seq ${p.seq}${cutEarly ? ` (stream ${cutEarly.how} early)` : ''}`);
      }
    }
    for (const n of seen.values()) if (n > 1) counts.duplicates += n - 1;
  }
}

async function requestLoop(port, halt) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  while (!halt.now) {
    const r = await get(port, '/work?ms=2', { agent, timeoutMs: 30_000 });
    tally(counts.requestStatus, r.status === 0 ? `no answer (${r.failure})` : `${r.status}${r.code ? ` ${r.code}` : ''}`);
    if (r.timedOut) counts.hung++;
    counts.requestMs.push(r.ms);
    await sleep(10);
  }
  agent.destroy();
}

/** Forgets publishes no session can still count (older than the longest session), so the runner stays flat too. */
function prunePublishes() {
  const horizon = performance.now() - 30_000;
  for (const list of publishes) {
    let k = 0;
    while (k < list.length && list[k].sentAt < horizon) k++;
    list.splice(0, k);
  }
}

/** Every part of the load at once, until the returned stop() (which waits for each part to finish). */
function startLoad(hf) {
  const halt = { now: false };
  halts.add(halt);
  const workers = [
    sharedPublisher(hf.controlPort, halt),
    distinctPublisher(hf.controlPort, halt),
    ...Array.from({ length: SESSIONS }, () => sessionSlot(hf.port, halt)),
    ...Array.from({ length: REQUEST_LOOPS }, () => requestLoop(hf.port, halt)),
  ];
  return {
    stop: async () => {
      halt.now = true;
      await Promise.all(workers);
    },
  };
}

// ------------------------------------------------------------------------------------------- sampling

async function sample(hf, inspectPort, t0, withHeap) {
  const pid = hf.proc.pid;
  const s = {
    t: (performance.now() - t0) / 1000,
    rssKiB: rssKiB(pid),
    fds: fdCount(pid),
    held: await readCounter(hf.controlPort, 'holdfast_held_connections'),
    cpuS: cpuSeconds(pid),
    load: load1(),
    heapUsed: null,
  };
  if (withHeap) s.heapUsed = (await heapAfterGc(inspectPort)).usedBytes;
  return s;
}

/**
 * Holdfast forgets expired item ids (de-duplication) only when the next item with an id is published
 * (src/bus/sequencer.ts), not on a timer: one publish before each idle reading, so that both readings leave out
 * ids kept only for want of a publish. The report also shows the reading before it.
 */
async function publishOneWithId(controlPort, tag) {
  const poke = { items: [{ channel: `idle-${tag}-${runTag}`, id: `idle-${tag}`, formats: { 'http-stream': { content: 'data: x\n\n' } } }] };
  await postFresh(controlPort, '/publish', JSON.stringify(poke), 'application/json', 30_000);
  await sleep(1000);
}

/** `holdfast_drops_total` by reason, as text ("none" when no series). */
async function dropsByReason(controlPort) {
  let body = '';
  try {
    body = (await httpGet(`http://127.0.0.1:${controlPort}/metrics`)).body.toString();
  } catch (err) {
    return `n/a (${err.message})`;
  }
  const found = body.split('\n').filter((l) => l.startsWith('holdfast_drops_total{'));
  return found.map((l) => `${/reason="([^"]*)"/.exec(l)?.[1] ?? '?'} ${l.slice(l.lastIndexOf(' ') + 1)}`).join(', ') || 'none';
}

async function main() {
  requireFreshDist(repoDir, 'bench/soak');
  const dir = join(runDir, runTag);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const { commit, dirty } = checkoutInfo(repoDir, ['src', 'bench/soak', 'bench/lib']);
  const started = new Date().toISOString();
  const loadBefore = load1();

  const backend = await startWorkBackend(await freePort());
  const inspectPort = await freePort();
  const hf = await startHoldfast({
    dir,
    cpu: opts.cpu,
    backendPort: backend.port,
    mainJs: opts['main-js'],
    nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`],
    extraArgs: opts.bus === 'memory' ? [] : ['--bus', opts.bus],
    config: { push: { historyMaxAgeMs: HISTORY_AGE_MS } },
    readyTimeoutMs: 60_000,
  });
  const t0 = performance.now();
  // Idle long enough for everything the load left to be due to expire: history (its age bound, swept on a
  // timer) and the de-duplication window of item ids (Holdfast's default, not changed here).
  const idleMs = Math.max(2 * HISTORY_AGE_MS, DEDUP_WINDOW_MS) + 10_000;
  // A short run of the same load first, then idle as long as after the soak: the baseline then has what any
  // first use allocates for good (compiled code, pools, caches), and the comparison at the end is like for like.
  const warm = startLoad(hf);
  await sleep(WARMUP_MS);
  await warm.stop();
  log(`warm-up done (${WARMUP_MS / 1000} s of the load); idle ${idleMs / 1000} s`);
  await sleep(idleMs);
  await publishOneWithId(hf.controlPort, 'baseline');
  const baseline = await sample(hf, inspectPort, t0, true);
  counts = newCounts();
  log(`baseline: RSS ${(baseline.rssKiB / 1024).toFixed(1)} MiB, heap after GC ${(baseline.heapUsed / 2 ** 20).toFixed(2)} MiB, ${baseline.fds} fds; load ${baseline.load}`);

  const samples = [];
  const loadStart = performance.now();
  // How late this process's own timers ran: when it is starved, the rates it reaches fall short of those asked.
  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  const soak = startLoad(hf);
  let lastGc = performance.now();
  while (performance.now() - loadStart < DURATION_MS) {
    await sleep(SAMPLE_MS);
    prunePublishes();
    const withHeap = performance.now() - lastGc >= GC_EVERY_MS;
    if (withHeap) lastGc = performance.now();
    const s = await sample(hf, inspectPort, t0, withHeap);
    samples.push(s);
    log(
      `t=${s.t.toFixed(0)}s RSS ${(s.rssKiB / 1024).toFixed(1)} MiB fds ${s.fds} held ${s.held}${s.heapUsed === null ? '' : ` heap after GC ${(s.heapUsed / 2 ** 20).toFixed(2)} MiB`}; ` +
        `sessions ${counts.sessions}, deliveries ${counts.received}/${counts.expected}, distinct channels ${counts.distinctChannels}; load ${s.load}`,
    );
    if (hf.proc.exitCode !== undefined) throw new Error(`Holdfast exited (${hf.proc.exitCode}) during the soak; see ${hf.proc.logFile}`);
  }
  await soak.stop();
  lag.disable();
  const loadEnd = await sample(hf, inspectPort, t0, true);
  const loadMs = performance.now() - loadStart;
  log(`load stopped; idle ${idleMs / 1000} s`);
  await sleep(idleMs);
  const after = await sample(hf, inspectPort, t0, true);
  await publishOneWithId(hf.controlPort, 'after');
  const afterPoke = await sample(hf, inspectPort, t0, true);
  const deliveries = await readCounter(hf.controlPort, 'holdfast_deliveries_total');
  const drops = await dropsByReason(hf.controlPort);
  await stopProcess(hf.proc);
  await stopProcess(backend.proc);

  // Slopes over the last half of the load: a leak keeps climbing there, a warm-up does not.
  const lastHalf = samples.filter((s) => s.t - (loadStart - t0) / 1000 >= DURATION_MS / 2000);
  const perMin = (key, scale) => slope(lastHalf.filter((s) => s[key] !== null).map((s) => ({ x: s.t / 60, y: s[key] * scale })));
  const rssSlope = perMin('rssKiB', 1 / 1024);
  const heapSlope = perMin('heapUsed', 1 / 2 ** 20);
  const fdSlope = perMin('fds', 1);
  const cpuPct = (100 * (loadEnd.cpuS - baseline.cpuS)) / (loadMs / 1000);
  const loads = samples.map((s) => s.load);
  const mib = (k) => (k / 1024).toFixed(1);
  const hmib = (b) => (b / 2 ** 20).toFixed(2);

  const kib = (b) => `${b >= 0 ? '+' : ''}${(b / 1024).toFixed(0)} KiB`;
  const backWithin = (x) => `${Math.abs(x.heapUsed - baseline.heapUsed) < 2 ** 20 ? 'yes' : '**no**'} (${kib(x.heapUsed - baseline.heapUsed)})`;
  const cmd = `node bench/soak/run.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const md = [
    `\n## ${started.slice(0, 10)}: soak, ${fmt(DURATION_MS / 60000, 1)} minutes of churn (issue 15)\n`,
    `\`${cmd}\` (started ${started}; commit ${commit}${dirty}, Holdfast from dist/ with its shebang's flags plus \`--inspect\`, bus ${opts.bus}; ${os.cpus().length} cores, Node ${process.version}; ` +
      `1-minute load average ${loadBefore.toFixed(2)} before, ${fmt(Math.min(...loads), 1)}-${fmt(Math.max(...loads), 1)} during). The machine was shared with other developers' test runs.\n`,
    `${SESSIONS} SSE session slots, each session on one of ${CHANNELS} shared channels for 1-10 s and then replaced; ${PUBLISH_RATE} publishes a second over the shared channels; ` +
      `${DISTINCT_RATE} channels never used before a second (${DISTINCT_BATCH} items with ids a publish), the traffic that found the per-channel leak (defect 2); ${REQUEST_LOOPS} keep-alive connections ` +
      `proxying \`GET /work?ms=2\` in loops (10 ms apart); every publish on its own connection. \`push.historyMaxAgeMs: ${HISTORY_AGE_MS}\` (default 300000) so that what each distinct channel keeps expires within the run ` +
      `and a leak can be told from history that is still due to expire. Heap = V8's used heap right after a full GC forced over the inspector ` +
      `(\`HeapProfiler.collectGarbage\`, then \`Runtime.getHeapUsage\`; bench/lib/inspector-heap.mjs), every ${GC_EVERY_MS / 1000} s; RSS and open fds from /proc every ${SAMPLE_MS / 1000} s. ` +
      `A session counts a publish as expected when it was sent after the session's head arrived and answered 2xx at least ${GRACE_MS / 1000} s before the session closed.\n`,
    `| what | figure |`,
    `|---|---|`,
    `| load ran (asked ${DURATION_MS / 1000} s; until the last session closed) | ${fmt(loadMs / 1000)} s |`,
    `| SSE sessions opened | ${counts.sessions} (${fmt(counts.sessions / (loadMs / 1000), 1)}/s): ${tallyText(counts.sessionStatus)} |`,
    `| deliveries expected / received / **missing** | ${counts.expected} / ${counts.received} / ${counts.missing}${counts.missingSamples.length ? ` (e.g. ${counts.missingSamples.join('; ')})` : ''}; duplicates ${counts.duplicates} |`,
    `| publishes to shared channels | ${tallyText(counts.publishStatus)}: ${fmt(total(counts.publishStatus) / (loadMs / 1000), 1)}/s (asked ${PUBLISH_RATE}/s); answered in p50 / p99 ${fmt(percentile(counts.publishMs, 50))} / ${fmt(percentile(counts.publishMs, 99))} ms |`,
    `| publishes to distinct channels | ${tallyText(counts.distinctStatus)}: ${counts.distinctChannels} channels, ${fmt(counts.distinctChannels / (loadMs / 1000))}/s (asked ${DISTINCT_RATE}/s) |`,
    `| proxied requests | ${tallyText(counts.requestStatus)}; p50 / p99 ${fmt(percentile(counts.requestMs, 50), 1)} / ${fmt(percentile(counts.requestMs, 99), 1)} ms; hung ${counts.hung} |`,
    `| Holdfast's own counters | \`holdfast_deliveries_total\` ${deliveries ?? 'n/a'}, \`holdfast_drops_total\` ${drops} (over warm-up and soak) |`,
    `| Holdfast CPU during the load | ${fmt(cpuPct)}% of one core |`,
    `| the load generator (this one Node process): event-loop delay p50 / p99 / max | ${fmt(lag.percentile(50) / 1e6)} / ${fmt(lag.percentile(99) / 1e6)} / ${fmt(lag.max / 1e6)} ms |`,
    '',
    `| Holdfast | idle before (after a ${WARMUP_MS / 1000} s warm-up of the same load, ${idleMs / 1000} s idle and one publish with an id) | end of load | idle ${idleMs / 1000} s after | then one publish with an id | slope over the last half of the load |`,
    `|---|---:|---:|---:|---:|---:|`,
    `| RSS (MiB) | ${mib(baseline.rssKiB)} | ${mib(loadEnd.rssKiB)} | ${mib(after.rssKiB)} | ${mib(afterPoke.rssKiB)} | ${fmt(rssSlope, 2)} MiB/min |`,
    `| heap after GC (MiB) | ${hmib(baseline.heapUsed)} | ${hmib(loadEnd.heapUsed)} | ${hmib(after.heapUsed)} | ${hmib(afterPoke.heapUsed)} | ${fmt(heapSlope, 3)} MiB/min |`,
    `| open fds | ${baseline.fds} | ${loadEnd.fds} | ${after.fds} | ${afterPoke.fds} | ${fmt(fdSlope, 2)} /min |`,
    `| held connections | ${baseline.held ?? 'n/a'} | ${loadEnd.held ?? 'n/a'} | ${after.held ?? 'n/a'} | ${afterPoke.held ?? 'n/a'} | |`,
    '',
    `Heap after GC back to within 1 MiB of the idle baseline: ${backWithin(after)} after the idle period, ${backWithin(afterPoke)} after one more publish with an id. ` +
      `Open fds back to baseline: ${after.fds <= baseline.fds ? 'yes' : `**no** (+${after.fds - baseline.fds})`}.`,
    '',
    `Samples (t s: RSS MiB, fds, heap after GC MiB where taken): ${samples.filter((_, k) => k % Math.max(1, Math.floor(samples.length / 24)) === 0 || _.heapUsed !== null).map((s) => `${s.t.toFixed(0)}: ${mib(s.rssKiB)}, ${s.fds}${s.heapUsed === null ? '' : `, ${hmib(s.heapUsed)}`}`).join('; ')}`,
    '',
  ].join('\n');
  console.log(md);
  if (opts.record) {
    appendFileSync(join(benchDir, 'RESULTS.md'), md);
    log('appended to bench/RESULTS.md');
  }
}

stopAllOnSignal(log, () => {
  for (const h of halts) h.now = true;
});

main().catch(async (err) => {
  log(err.stack ?? err);
  for (const h of halts) h.now = true;
  await stopAll();
  process.exitCode = 1;
});
