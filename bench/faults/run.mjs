// bench/faults: Holdfast under the faults of issue 15, each scenario a real process killed or signalled on
// loopback, with figures for what the clients got. See ../README.md. Usage:
//   node bench/faults/run.mjs [--scenarios backend-kill,holdfast-kill,sigterm,slow-backend]
//     [--bus memory,redis://127.0.0.1:6379] [--held 50] [--loops 16] [--record]
//   node bench/faults/run.mjs --scenarios never-reading [-- ARGS]   runs never-reading.mjs (defect 8) if present
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EventSource } from 'eventsource';
import { freePort, startHoldfast } from '../fanout/peers.mjs';
import { requireFreshDist } from '../lib/dist-check.mjs';
import { checkoutInfo } from '../lib/git-info.mjs';
import { get, openSse, outcomes, percentile, sleep, startWorkBackend } from '../lib/fault-clients.mjs';
import { killPid, stopAll, stopAllOnSignal, stopProcess } from '../lib/processes.mjs';
import { load1 } from '../scale/host.mjs';
import { postFresh, readCounter } from '../scale/servers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(here, '..');
const repoDir = resolve(benchDir, '..');
const runDir = join(benchDir, '.run', 'faults');
const NEVER_READING = join(here, 'never-reading.mjs');
const SCENARIOS = ['backend-kill', 'holdfast-kill', 'sigterm', 'slow-backend', 'never-reading'];

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    scenarios: { type: 'string', default: 'backend-kill,holdfast-kill,sigterm,slow-backend' },
    bus: { type: 'string', default: 'memory,redis://127.0.0.1:6379' },
    held: { type: 'string', default: '50' },
    loops: { type: 'string', default: '16' },
    cpu: { type: 'string', default: `0-${os.cpus().length - 1}` },
    'main-js': { type: 'string', default: join(repoDir, 'dist', 'main.js') },
    record: { type: 'boolean', default: false },
  },
});
const chosen = opts.scenarios.split(',');
for (const s of chosen) if (!SCENARIOS.includes(s)) throw new Error(`--scenarios: from ${SCENARIOS.join(', ')}, not ${s}`);
const HELD = Number(opts.held);
const LOOPS = Number(opts.loops);
const log = (...a) => console.error(...a);
const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
const runTag = Date.now().toString(36);

async function holdfast(name, backendPort, extraArgs = [], more = {}) {
  const dir = join(runDir, name);
  if (!more.port) rmSync(dir, { recursive: true, force: true });
  return startHoldfast({ dir, cpu: opts.cpu, backendPort, mainJs: opts['main-js'], extraArgs, name: `holdfast-${name}`, readyTimeoutMs: 60_000, ...more });
}

function publish(controlPort, channel, id, data) {
  const body = JSON.stringify({ items: [{ channel, id, formats: { 'http-stream': { content: `data: ${data}\n\n` } } }] });
  return postFresh(controlPort, '/publish', body, 'application/json', 5000);
}

/** Waits (bounded) until `done()` holds; returns whether it did. */
async function until(done, timeoutMs, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
  return true;
}

/**
 * `LOOPS` closed loops, each one keep-alive connection (an agent with one socket) sending `pathOf(k)` again as
 * soon as the last answer came (20 ms later after a failure, so a refused backend does not spin), until
 * `stop.now`. Every result carries its loop and request number.
 */
function requestLoops(port, pathOf, stop, timeoutMs) {
  const results = [];
  const loops = Array.from({ length: LOOPS }, async (_, loop) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let k = 0; !stop.now; k++) {
      const r = await get(port, pathOf(loop, k), { agent, timeoutMs });
      results.push({ ...r, loop, k, path: pathOf(loop, k) });
      if (r.status !== 200) await sleep(20);
    }
    agent.destroy();
  });
  return { results, done: Promise.all(loops) };
}

/** "a x 3, b x 1" */
function tally(labels) {
  const counts = new Map();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([l, n]) => `${l} x ${n}`).join(', ');
}

const inFlightAt = (results, t) => results.filter((r) => r.startedAt < t && r.endedAt > t);

// ------------------------------------------------------------------------- 1. backend SIGKILL

async function backendKill() {
  const downMs = 2000;
  const backendPort = await freePort();
  let backend = await startWorkBackend(backendPort);
  const hf = await holdfast('backend-kill', backendPort, ['--upstream-timeout', '10000']);
  const channel = `bk-${runTag}`;
  const held = Array.from({ length: HELD }, () => openSse(hf.port, `/sub/${channel}`));
  await Promise.all(held.map((s) => s.opened));
  const got = (data) => held.filter((s) => s.events.some((e) => e.data === data)).length;
  await publish(hf.controlPort, channel, 'm1', 'm1');
  await until(() => got('m1') === HELD, 10_000);

  const stop = { now: false };
  const load = requestLoops(hf.port, () => '/work?ms=300', stop, 30_000);
  await sleep(2000);
  const killedAt = performance.now();
  killPid(backend.proc.pid, 'SIGKILL');
  await backend.proc.exited;
  const m2 = await publish(hf.controlPort, channel, 'm2', 'm2');
  await sleep(downMs);
  backend = await startWorkBackend(backendPort);
  const readyAt = backend.readyAt;
  // A prober on fresh connections: the first 200 through Holdfast after the backend listens again.
  let first200 = null;
  let probes = 0;
  const probeOutcomes = [];
  while (first200 === null && performance.now() - readyAt < 30_000) {
    const r = await get(hf.port, '/work?ms=0', { timeoutMs: 10_000 });
    probes++;
    probeOutcomes.push(r);
    if (r.status === 200) first200 = r.endedAt - readyAt;
    else await sleep(25);
  }
  await publish(hf.controlPort, channel, 'm3', 'm3');
  await sleep(3000);
  stop.now = true;
  await load.done;
  await until(() => got('m3') === HELD, 5000);
  const stillOpen = held.filter((s) => s.ended === null).length;
  for (const s of held) s.close();
  const exitBefore = hf.proc.exitCode;
  await stopProcess(hf.proc);
  await stopProcess(backend.proc);

  const rs = load.results;
  const atKill = inFlightAt(rs, killedAt);
  const down = rs.filter((r) => r.startedAt >= killedAt && r.startedAt < readyAt && !atKill.includes(r));
  const after = rs.filter((r) => r.startedAt >= readyAt);
  const loops200 = after.filter((r) => r.status === 200).map((r) => r.endedAt - readyAt);
  const hung = rs.filter((r) => r.timedOut).length;
  const row = {
    heldStayed: stillOpen,
    m2: got('m2'),
    m3: got('m3'),
    m2Answer: `${m2.status}${m2.headers?.['x-holdfast-delivered'] !== undefined ? `, x-holdfast-delivered ${m2.headers['x-holdfast-delivered']}` : ''}`,
    atKill,
    down,
    after,
    hung,
    maxMs: Math.max(...rs.map((r) => r.ms)),
    first200,
    probes,
    probeOutcomes,
    loopsFirst200: loops200.length ? Math.min(...loops200) : NaN,
    exitBefore,
  };
  log(`  backend-kill: ${JSON.stringify({ ...row, atKill: outcomes(atKill), down: outcomes(down), after: outcomes(after), probeOutcomes: outcomes(probeOutcomes) })}`);
  return [
    `### Backend SIGKILL with held clients and requests in flight`,
    '',
    `One backend process (\`lib/work-backend.mjs\`), Holdfast in front (\`--upstream-timeout 10000\`, other settings default: \`upstream.retries\` 2, \`maxFails\` 1, \`failTimeoutMs\` 10000). ` +
      `${HELD} held SSE clients on one channel; ${LOOPS} keep-alive client connections each sending \`GET /work?ms=300\` in a closed loop. ` +
      `The backend is SIGKILLed 2 s into the load, started again on the same port ${downMs} ms later; the load runs 3 s more.`,
    '',
    `| what | figure |`,
    `|---|---|`,
    `| held SSE clients still open at the end | ${row.heldStayed} / ${HELD} |`,
    `| published while the backend was down (answer ${row.m2Answer}): received | ${row.m2} / ${HELD} |`,
    `| published after the restart: received | ${row.m3} / ${HELD} |`,
    `| requests in flight at the kill | ${atKill.length}: ${outcomes(atKill)} |`,
    `| requests sent while the backend was down | ${down.length}: ${outcomes(down)} |`,
    `| requests sent after it listened again | ${after.length}: ${outcomes(after)} |`,
    `| requests that hung (no answer in 30 s) | ${hung}; slowest answer ${fmt(row.maxMs)} ms |`,
    `| first 200 after the backend listened again | ${fmt(first200)} ms (prober on fresh connections, ${probes} tries: ${outcomes(probeOutcomes)}); the loops' first: ${fmt(row.loopsFirst200)} ms |`,
    '',
  ].join('\n');
}

// --------------------------------------------------------------- 2. Holdfast SIGKILL and restart

async function holdfastKill(bus) {
  const clientsN = 20;
  const awayN = 5;
  const historyItems = 1000;
  const periodMs = 20;
  const downMs = 2000;
  const backendPort = await freePort();
  const backend = await startWorkBackend(backendPort);
  const port = await freePort();
  const controlPort = await freePort();
  const busArgs = bus === 'memory' ? [] : ['--bus', bus];
  const name = `holdfast-kill-${bus === 'memory' ? 'memory' : bus.split(':')[0]}`;
  // A history of 1,000 items (20 s at this rate): the default 100 is 2 s here, less than EventSource's 3 s
  // retry, and the clients would lose what overflowed it whatever the bus (measured; see the table's text).
  const start = () => holdfast(name, backendPort, busArgs, { port, controlPort, config: { push: { historyMaxItems: historyItems } } });
  rmSync(join(runDir, name), { recursive: true, force: true });
  let hf = await start();
  const channel = `lei-${runTag}-${name}`; // new per run: a Redis history from an earlier run must not replay here
  const url = `http://127.0.0.1:${port}/sub/${channel}`;
  /** An EventSource for client `c`; a reopened one sends the last id it saw, as a page reloaded by its app would. */
  const connect = (c, lastEventId) => {
    const init = lastEventId === undefined ? undefined : { fetch: (input, req) => fetch(input, { ...req, headers: { ...req.headers, 'last-event-id': lastEventId } }) };
    c.es = new EventSource(url, init);
    c.es.addEventListener('open', () => {
      const t = performance.now();
      c.opens.push(t);
      c.firstOpenAt ??= t;
    });
    c.es.addEventListener('message', (e) => {
      c.lastId = e.lastEventId;
      c.received.set(e.data, (c.received.get(e.data) ?? 0) + 1);
    });
    c.es.addEventListener('holdfast-gap', () => c.gaps++);
  };
  const clients = Array.from({ length: clientsN }, (_, k) => {
    const c = { es: null, opens: [], firstOpenAt: null, received: new Map(), gaps: 0, lastId: undefined, away: k < awayN };
    connect(c, undefined);
    return c;
  });
  await until(() => clients.every((c) => c.firstOpenAt !== null), 20_000);

  const published = [];
  const pub = { stop: false };
  const publisher = (async () => {
    for (let seq = 1; !pub.stop; seq++) {
      const t = performance.now();
      const r = await publish(controlPort, channel, `${runTag}-${seq}`, String(seq));
      published.push({ seq, startedAt: t, accepted: r.status >= 200 && r.status < 300, status: r.status, error: r.error });
      const wait = periodMs - (performance.now() - t);
      if (wait > 0) await sleep(wait);
    }
  })();
  await sleep(2000);
  // The first `awayN` clients lose their connection 1 s before the crash (a network blip) and come back after
  // the restart with their Last-Event-ID: what was published meanwhile is only in the history.
  for (const c of clients.filter((x) => x.away)) c.es.close();
  await sleep(1000);
  const killedAt = performance.now();
  killPid(hf.proc.pid, 'SIGKILL');
  await hf.proc.exited;
  await sleep(downMs);
  const restartAt = performance.now();
  hf = await start();
  const readyAt = performance.now();
  await sleep(500);
  for (const c of clients.filter((x) => x.away)) connect(c, c.lastId);
  await sleep(7500); // EventSource retries every 3 s: every client is back and has caught up
  pub.stop = true;
  await publisher;
  const accepted = published.filter((p) => p.accepted);
  const lastSeq = String(accepted.at(-1)?.seq);
  await until(() => clients.every((c) => c.received.has(lastSeq)), 10_000);
  for (const c of clients) c.es.close();
  await stopProcess(hf.proc);
  await stopProcess(backend.proc);

  const perClient = clients.map((c) => {
    const expected = accepted.filter((p) => p.startedAt >= c.firstOpenAt);
    const lost = expected.filter((p) => !c.received.has(String(p.seq)));
    const reopen = c.opens.find((t) => t > killedAt);
    return {
      expected: expected.length,
      lost: lost.length,
      lostBefore: lost.filter((p) => p.startedAt < killedAt).length,
      lostAfter: lost.filter((p) => p.startedAt >= killedAt).length,
      dups: [...c.received.values()].filter((n) => n > 1).length,
      gaps: c.gaps,
      reconnectMs: reopen === undefined ? NaN : reopen - readyAt,
    };
  });
  const sum = (k, list = perClient) => list.reduce((a, c) => a + c[k], 0);
  const awayClients = perClient.filter((_, k) => clients[k].away);
  const refused = published.filter((p) => !p.accepted);
  const row = {
    bus,
    clients: clientsN,
    published: published.length,
    accepted: accepted.length,
    refused: refused.length,
    refusedHow: outcomes(refused.map((p) => ({ status: p.status, failure: p.error?.split(' ')[0], code: null }))),
    downMs: readyAt - killedAt,
    startMs: readyAt - restartAt,
    expected: sum('expected'),
    lost: sum('lost'),
    lostBefore: sum('lostBefore'),
    lostAfter: sum('lostAfter'),
    worstClient: Math.max(...perClient.map((c) => c.lost)),
    away: awayN,
    awayLost: sum('lost', awayClients),
    awayExpected: sum('expected', awayClients),
    dups: sum('dups'),
    gaps: sum('gaps'),
    clientsGapped: perClient.filter((c) => c.gaps > 0).length,
    reconnected: perClient.filter((c) => !Number.isNaN(c.reconnectMs)).length,
    reconnectP50: percentile(perClient.map((c) => c.reconnectMs).filter((x) => !Number.isNaN(x)), 50),
    reconnectMax: Math.max(...perClient.map((c) => c.reconnectMs).filter((x) => !Number.isNaN(x))),
  };
  log(`  holdfast-kill ${bus}: ${JSON.stringify(row)}`);
  return row;
}

function holdfastKillTable(rows) {
  return [
    `### Holdfast SIGKILL and restart with reconnecting \`Last-Event-ID\` clients`,
    '',
    `20 \`eventsource\` clients (the npm package: reconnects after 3 s with \`Last-Event-ID\`) on one channel; a publisher posts one item with an id every 20 ms ` +
      `on a fresh connection each. Holdfast is SIGKILLed 3 s in, started again on the same ports 2 s later, and publishing goes on 8 s after it serves. ` +
      `5 of the 20 clients are away when it crashes: their connection closes 1 s before the kill and they reconnect with their \`Last-Event-ID\` 0.5 s after Holdfast serves again, ` +
      `so what was published in that second is theirs only from the history. \`push.historyMaxItems: 1000\` (20 s at this rate): with the default 100 (2 s here) ` +
      `the clients' last ids fell out of the history before EventSource's 3 s retry and they lost what overflowed it, with either bus (130 of 7,860 deliveries with Redis in one run). ` +
      `Expected per client = every publish answered 2xx that was sent after the client's first open; lost = expected and never received (duplicates: ids received twice, which clients de-duplicate). ` +
      `Publishes while Holdfast was down got no answer: the publisher knows they failed, so they are counted apart, not as lost.`,
    '',
    '| bus | publishes answered 2xx / sent | not answered (Holdfast down) | down (kill to serving again) | Holdfast start | deliveries expected | lost | lost: published before the kill / after | worst client lost | of which the 5 away clients | duplicates | clients sent holdfast-gap | reconnected, p50 / max after it served |',
    '|---|---:|---|---:|---:|---:|---:|---|---:|---|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.bus} | ${r.accepted} / ${r.published} | ${r.refused}: ${r.refusedHow} | ${fmt(r.downMs)} ms | ${fmt(r.startMs)} ms | ${r.expected} | ${r.lost ? `**${r.lost}**` : 0} | ${r.lostBefore} / ${r.lostAfter} | ${r.worstClient} | ${r.awayLost} of ${r.awayExpected} | ${r.dups} | ${r.clientsGapped} | ${r.reconnected}/${r.clients}, ${fmt(r.reconnectP50)} / ${fmt(r.reconnectMax)} ms |`,
    ),
    '',
  ].join('\n');
}

// --------------------------------------------------------------------------------- 3. SIGTERM

/** A raw keep-alive connection that sent one request and now sits idle: resolves when the server closes it. */
function idleKeepAlive(port) {
  return new Promise((resolveOpen) => {
    const c = { closedAt: null, answered: false };
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write('GET /work?ms=0 HTTP/1.1\r\nHost: bench\r\n\r\n'));
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (!c.answered && /\r\n\r\nok 0\n$/.test(buf)) {
        c.answered = true;
        resolveOpen(c);
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      c.closedAt = performance.now();
      resolveOpen(c);
    });
    c.socket = s;
  });
}

async function sigterm() {
  const drainMs = 3000;
  const backendPort = await freePort();
  const backend = await startWorkBackend(backendPort);
  const hf = await holdfast('sigterm', backendPort, ['--drain-timeout', String(drainMs)]);
  const channel = `term-${runTag}`;
  const held = Array.from({ length: HELD }, () => openSse(hf.port, `/sub/${channel}`));
  await Promise.all(held.map((s) => s.opened));
  const idle = await Promise.all(Array.from({ length: 10 }, () => idleKeepAlive(hf.port)));
  const short = Array.from({ length: 10 }, () => get(hf.port, '/work?ms=1500', { timeoutMs: 30_000 }));
  const long = Array.from({ length: 10 }, () => get(hf.port, '/work?ms=8000', { timeoutMs: 30_000 }));
  await sleep(300);
  const termAt = performance.now();
  killPid(hf.proc.pid, 'SIGTERM');
  await sleep(100);
  const newConn = await get(hf.port, '/work?ms=0', { timeoutMs: 5000 });
  const code = await hf.proc.exited;
  const exitMs = performance.now() - termAt;
  const shortR = await Promise.all(short);
  const longR = await Promise.all(long);
  await stopProcess(backend.proc);
  await until(() => held.every((s) => s.ended !== null), 5000);
  const heldEnds = tally(held.map((s) => (s.ended === null ? 'still open' : s.ended.how === 'end' ? 'ended cleanly (last chunk)' : `cut (${s.ended.how})`)));
  const heldAt = held.filter((s) => s.ended !== null).map((s) => s.ended.at - termAt);
  const idleAt = idle.filter((c) => c.closedAt !== null).map((c) => c.closedAt - termAt);
  const logLines = readFileSync(hf.proc.logFile, 'utf8')
    .split('\n')
    .filter((l) => /drain|cut/i.test(l))
    .map((l) => {
      const { msg, cutRequests, open } = JSON.parse(l);
      return JSON.stringify({ msg, cutRequests, open });
    });
  const endedAt = (rs) => rs.map((r) => r.endedAt - termAt);
  log(`  sigterm: exit ${code} after ${exitMs.toFixed(0)} ms; short ${outcomes(shortR)}; long ${outcomes(longR)}; held ${heldEnds}`);
  return [
    `### SIGTERM with held clients and requests in flight`,
    '',
    `Holdfast with \`--drain-timeout ${drainMs}\`; ${HELD} held SSE clients, 10 idle keep-alive client connections, 10 requests the backend answers after 1.5 s ` +
      `and 10 after 8 s, all in flight when SIGTERM comes (300 ms after they were sent); 100 ms after it a new request on a new connection.`,
    '',
    `| what | figure |`,
    `|---|---|`,
    `| exit code, time from SIGTERM to exit | ${code}, ${fmt(exitMs)} ms |`,
    `| held SSE streams | ${heldEnds}; ended ${fmt(Math.min(...heldAt))}-${fmt(Math.max(...heldAt))} ms after SIGTERM |`,
    `| idle keep-alive connections | ${idleAt.length} / 10 closed by Holdfast, ${fmt(Math.min(...idleAt))}-${fmt(Math.max(...idleAt))} ms after SIGTERM |`,
    `| requests answered in 1.5 s | ${outcomes(shortR)}; with \`Connection: close\`: ${shortR.filter((r) => r.close).length}; done ${fmt(Math.min(...endedAt(shortR)))}-${fmt(Math.max(...endedAt(shortR)))} ms after SIGTERM |`,
    `| requests answered in 8 s (past the deadline) | ${outcomes(longR)}; ended ${fmt(Math.min(...endedAt(longR)))}-${fmt(Math.max(...endedAt(longR)))} ms after SIGTERM |`,
    `| a new request 100 ms after SIGTERM | ${outcomes([newConn])} |`,
    `| Holdfast's log (warn and above) about the drain | ${logLines.length ? logLines.map((l) => `\`${l.replaceAll('|', '/')}\``).join('<br>') : 'nothing'} |`,
    '',
  ].join('\n');
}

// -------------------------------------------------------------- 4. slow backend, low upstream timeout

async function slowBackend() {
  const timeoutMs = 500;
  const durationMs = 10_000;
  const backendPort = await freePort();
  const backend = await startWorkBackend(backendPort);
  const hf = await holdfast('slow-backend', backendPort, ['--upstream-timeout', String(timeoutMs)]);
  // Every fifth request of a loop takes 1.5 s at the backend (a 504 due), the others 20 ms.
  const slow = (loop, k) => (k + loop) % 5 === 0;
  const stop = { now: false };
  const load = requestLoops(hf.port, (loop, k) => `/work?ms=${slow(loop, k) ? 1500 : 20}`, stop, 30_000);
  await sleep(durationMs);
  stop.now = true;
  await load.done;
  const up = await readCounter(hf.controlPort, 'holdfast_backend_up');
  const toDown = await readCounter(hf.controlPort, 'holdfast_backend_transitions_total', 'to="down"');
  await stopProcess(hf.proc);
  await stopProcess(backend.proc);
  const rs = load.results;
  const slowR = rs.filter((r) => r.path.endsWith('=1500'));
  const fastR = rs.filter((r) => r.path.endsWith('=20'));
  const lat = (list) => `${fmt(percentile(list.map((r) => r.ms), 50))} / ${fmt(percentile(list.map((r) => r.ms), 99))} / ${fmt(Math.max(...list.map((r) => r.ms)))}`;
  const fastBad = fastR.filter((r) => r.status !== 200);
  log(`  slow-backend: slow ${outcomes(slowR)}; fast ${outcomes(fastR)}; backend_up ${up}, to down ${toDown}`);
  return [
    `### A slow backend with a low upstream timeout`,
    '',
    `Holdfast with \`--upstream-timeout ${timeoutMs}\` in front of one backend (default passive health: \`maxFails\` 1, \`failTimeoutMs\` 10000); ${LOOPS} keep-alive connections in closed loops for ${durationMs / 1000} s, ` +
      `every fifth request of each answered by the backend after 1.5 s, the others after 20 ms. A timeout counts as a failure for passive health, so the lone server is marked down; ` +
      `nginx's rule (issue 15, defect 4) still sends it traffic, so the fast requests must all be 200.`,
    '',
    `| requests | count | what they got | p50 / p99 / max (ms) |`,
    `|---|---:|---|---|`,
    `| slow (backend 1.5 s) | ${slowR.length} | ${outcomes(slowR)} | ${lat(slowR)} |`,
    `| fast (backend 20 ms) | ${fastR.length} | ${outcomes(fastR)} | ${lat(fastR)} |`,
    '',
    `Fast requests not answered 200: ${fastBad.length}${fastBad.length ? ` (**${outcomes(fastBad)}**)` : ''}. ` +
      `\`holdfast_backend_transitions_total{to="down"}\` ${up === null ? 'n/a' : toDown ?? 0}, \`holdfast_backend_up\` at the end ${up ?? 'n/a'}.`,
    '',
  ].join('\n');
}

// ------------------------------------------------------------------------- 5. never-reading clients

function neverReading() {
  if (!existsSync(NEVER_READING)) {
    log('  never-reading: bench/faults/never-reading.mjs is not on this branch (written separately for defect 8)');
    return null;
  }
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [NEVER_READING, ...positionals], { stdio: 'inherit' });
    child.once('exit', (code) => (code === 0 ? resolveRun(null) : reject(new Error(`never-reading.mjs exited ${code}`))));
  });
}

// ------------------------------------------------------------------------------------------------ main

async function main() {
  requireFreshDist(repoDir, 'bench/faults');
  mkdirSync(runDir, { recursive: true });
  const { commit, dirty } = checkoutInfo(repoDir, ['src', 'bench/faults', 'bench/lib']);
  const started = new Date().toISOString();
  const sections = [];
  const loads = [];
  const run = async (name, fn) => {
    const before = load1();
    log(`\n== ${name} (load ${before})`);
    try {
      const out = await fn();
      if (out !== null) sections.push(out);
    } catch (err) {
      log(`  ${name} failed: ${err.stack ?? err}`);
      sections.push(`### ${name}\n\nfailed: ${String(err.message ?? err).split('\n')[0]}\n`);
    } finally {
      await stopAll();
    }
    loads.push(`${name} ${before.toFixed(2)} -> ${load1().toFixed(2)}`);
  };
  for (const name of chosen) {
    if (name === 'backend-kill') await run(name, backendKill);
    else if (name === 'sigterm') await run(name, sigterm);
    else if (name === 'slow-backend') await run(name, slowBackend);
    else if (name === 'never-reading') await run(name, neverReading);
    else if (name === 'holdfast-kill') {
      const rows = [];
      for (const bus of opts.bus.split(',')) {
        await run(`holdfast-kill ${bus}`, async () => {
          rows.push(await holdfastKill(bus));
          return null;
        });
      }
      if (rows.length) sections.push(holdfastKillTable(rows));
    }
  }
  const cmd = `node bench/faults/run.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const md =
    `\n## ${started.slice(0, 10)}: faults (issue 15)\n\n` +
    `\`${cmd}\` (started ${started}; commit ${commit}${dirty}, Holdfast from dist/; ${os.cpus().length} cores, Node ${process.version}; ` +
    `1-minute load average before -> after each scenario: ${loads.join(', ')}). The machine was shared with other developers' test runs.\n` +
    `${existsSync(NEVER_READING) ? '' : '\n1,000 clients that never read (defect 8): bench/faults/never-reading.mjs, not on this branch; `--scenarios never-reading` runs it when present.\n'}\n` +
    `${sections.join('\n')}`;
  console.log(md);
  if (opts.record && sections.length) {
    appendFileSync(join(benchDir, 'RESULTS.md'), md);
    log('appended to bench/RESULTS.md');
  }
}

stopAllOnSignal(log);

main().catch(async (err) => {
  log(err.stack ?? err);
  await stopAll();
  process.exitCode = 1;
});
