// The servers of bench/scale, built on bench/fanout/peers.mjs: Holdfast as one node with `--workers N`, as
// several nodes over `--bus redis://...` or `--bus nats://...`, and nginx + nchan with N worker processes.
// Every server is a tree of processes (primary + workers, master + workers); memory and CPU are summed over
// the whole tree, and stopping it checks by PID that no worker is left behind.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { httpGet } from '../lib/processes.mjs';
import http from 'node:http';
import { descendants, kernelAndTotalSeconds, killPid, rssKiB, sleep, startHoldfast, startNchan, stopProcess } from '../fanout/peers.mjs';

/**
 * What this build of Holdfast accepts, read from its `--help`: `--workers` and `--bus` are being built
 * (issue 11); a run against a build without them says so instead of failing on an unknown flag.
 */
export function holdfastFeatures(mainJs) {
  let help = '';
  try {
    help = execFileSync(process.execPath, [mainJs, '--help'], { encoding: 'utf8', timeout: 10_000 });
  } catch (err) {
    help = `${err.stdout ?? ''}${err.stderr ?? ''}`;
  }
  return { workers: /--workers\b/.test(help), bus: /--bus\b/.test(help) };
}

/** Proportional set size in KiB (shared pages split between the processes that map them); 0 when gone. */
export function pssKiB(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Every PID of a process tree: the root and its descendants, looked up now (workers may be restarted). */
export function treePids(rootPid) {
  return [rootPid, ...descendants(rootPid).map((d) => d.pid)];
}

/** Sums over a list of PIDs: VmRSS, Pss (KiB) and utime + stime (s); `count` processes. */
export function treeStats(pids) {
  let rss = 0;
  let pss = 0;
  let cpu = 0;
  let kernel = 0;
  for (const pid of pids) {
    rss += rssKiB(pid);
    pss += pssKiB(pid);
    const t = kernelAndTotalSeconds(pid);
    cpu += t.total;
    kernel += t.kernel;
  }
  return { rssKiB: rss, pssKiB: pss, cpuS: cpu, kernelCpuS: kernel, count: pids.length };
}

/** SIGTERM to the root (both Holdfast's primary and nginx's master stop their workers), then any survivor by PID. */
async function stopTree(proc) {
  const children = descendants(proc.pid);
  await stopProcess(proc, 10_000);
  await sleep(300);
  for (const c of children) {
    if (!isAlive(c.pid, c.comm)) continue;
    console.error(`  ${proc.name}: worker ${c.comm} (${c.pid}) still running after its parent stopped: SIGTERM`);
    killPid(c.pid, 'SIGTERM');
    await sleep(2000);
    if (isAlive(c.pid, c.comm)) killPid(c.pid, 'SIGKILL');
  }
}

function isAlive(pid, comm) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === comm;
  } catch {
    return false;
  }
}

/**
 * Reads one Prometheus counter from a node's `/metrics`, summed over the series whose labels include
 * `labels` (e.g. `direction="in"`). null when the metric is absent: the report prints n/a, never a number.
 */
export async function readCounter(controlPort, name, labels = '') {
  let body;
  try {
    body = (await httpGet(`http://127.0.0.1:${controlPort}/metrics`)).body.toString();
  } catch {
    return null;
  }
  let found = false;
  let total = 0;
  for (const line of body.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels !== '' && !line.includes(labels)) continue;
    found = true;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return found ? total : null;
}

/**
 * POST on a fresh connection (no keep-alive agent: a pooled socket the server closed while idle would turn a
 * publish into a reset that is not the server's answer). Resolves { status, ms, headers, error }; status 0 =
 * no answer, `error` says why; bounded by `timeoutMs`.
 */
export function postFresh(port, path, body, contentType, timeoutMs = 120_000) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8').slice(0, 200);
          resolve({ status: res.statusCode, ms: performance.now() - started, headers: res.headers, error: res.statusCode >= 300 ? `${res.headers['x-holdfast-error'] ?? ''} ${text}`.trim() : null });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.once('error', (err) => resolve({ status: 0, ms: performance.now() - started, headers: {}, error: `${err.code ?? ''} ${err.message}`.trim() }));
    req.end(body);
  });
}

/** Pushpin's publish body, one item of `http-stream` content, to a Holdfast control port. */
function publishGrip(controlPort, ch, id, content) {
  const body = JSON.stringify({ items: [{ channel: ch, id, formats: { 'http-stream': { content } } }] });
  return postFresh(controlPort, '/publish', body, 'application/json');
}

/**
 * `nodes` Holdfast processes (each a cluster of `workers` when > 1), each on its own client and control
 * port, all with the same `bus` URL (`memory` = no flag). Publishes go to node 0's control port.
 * `--workers` / `--bus` are passed only when asked for, so a build without them runs the memory-bus,
 * one-process configuration unchanged.
 */
// 90 s to serve: a primary forking 7 workers on 2 cores at load 12 did not open its port within 15 s.
export async function startHoldfastCluster({ dirOf, cpu, backendPort, mainJs, nodes, workers, bus, maxConnections, nodeArgs = [] }) {
  const started = [];
  try {
    for (let k = 0; k < nodes; k++) {
      const extraArgs = [];
      if (workers > 1) extraArgs.push('--workers', String(workers));
      if (bus !== 'memory') extraArgs.push('--bus', bus);
      started.push(await startHoldfast({ dir: dirOf(k), cpu, backendPort, mainJs, nodeArgs, extraArgs, maxConnections, name: `holdfast-node${k}`, readyTimeoutMs: 90_000 }));
    }
  } catch (err) {
    await Promise.all(started.map((s) => stopTree(s.proc)));
    throw err;
  }
  return {
    kind: 'holdfast',
    nodes: started.map((s) => ({ port: s.port, controlPort: s.controlPort, rootPid: s.proc.pid })),
    pids: () => started.flatMap((s) => treePids(s.proc.pid)),
    /** `<seq> <t0>` to channel `ch` through node 0: { status, ms, headers }. */
    publish: (ch, id, content) => publishGrip(started[0].controlPort, ch, id, content),
    stop: () => Promise.all(started.map((s) => stopTree(s.proc))),
  };
}

/** nginx + nchan with `workers` worker processes, each under its own 20,000-fd limit (reuseport spreads clients). */
export async function startNchanWorkers({ dir, cpu, workers }) {
  const s = await startNchan({ dir, cpu, workers, workerConnections: 19000, sharedMemory: '1024M', reuseport: workers > 1 });
  return {
    kind: 'nchan',
    nodes: [{ port: s.port, controlPort: null, rootPid: s.proc.pid }],
    pids: () => treePids(s.proc.pid),
    // nchan frames the body as `data: ...` itself; it answers after writing to the subscribers.
    publish: (ch, id, content) => postFresh(s.port, `/pub/${ch}`, content.replace(/^data: /, '').replace(/\n+$/, ''), 'text/plain'),
    stop: () => stopTree(s.proc),
  };
}

/** PIDs of the local Redis and NATS servers (read-only: their CPU during a run is the broker's load). */
export function brokerPids() {
  const out = { redis: [], nats: [] };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm === 'redis-server') out.redis.push(Number(entry));
      else if (comm === 'nats-server') out.nats.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return out;
}
