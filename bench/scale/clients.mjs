// Subscriber processes of bench/scale: bench/fanout/client.mjs (raw `net` sockets, a byte-level `data:`
// parser, a few typed-array integers per connection), several processes, each under its 20,000-fd limit and
// bound to its own source address (127.0.0.2, 127.0.0.3, ...) so that no (source address, server port) pair
// needs more than the 28,232 ephemeral ports of 32768-60999.
import { fork } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../fanout/peers.mjs';

const clientJs = join(dirname(fileURLToPath(import.meta.url)), '..', 'fanout', 'client.mjs');

/** Every client process this run forked, so an interrupted run kills each by its PID. */
export const clients = new Set();

let nextId = 1;
/** One IPC request to a client process; rejects when it exits or does not answer within `timeoutMs`. */
export function call(child, msg, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    const onMsg = (m) => {
      if (m.id !== id) return;
      done();
      resolve(m);
    };
    const onExit = (code) => {
      done();
      reject(new Error(`client ${child.pid} exited (${code})`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`client ${child.pid}: no answer to ${msg.cmd} in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send({ ...msg, id });
  });
}

function forkClient(nice) {
  const child = fork(clientJs, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=2048'] });
  clients.add(child);
  child.once('exit', () => clients.delete(child));
  if (nice !== 0) os.setPriority(child.pid, nice);
  return child;
}

export function killClients() {
  for (const c of clients) c.kill('SIGKILL');
  clients.clear();
}

export async function closeClients(list) {
  await Promise.all(list.map((c) => call(c, { cmd: 'close' }, 10_000).catch(() => {})));
  await Promise.all(
    list.map((c) =>
      c.exitCode === null && c.signalCode === null
        ? Promise.race([new Promise((r) => c.once('exit', r)), sleep(5_000).then(() => c.kill('SIGKILL'))])
        : null,
    ),
  );
}

export const sum = (list, key) => list.reduce((a, s) => a + (s[key] ?? 0), 0);

export const statusAll = (list) => Promise.all(list.map((c) => call(c, { cmd: 'status' })));

/**
 * Opens `n` SSE subscribers of `path` spread over `ports` (one port per Holdfast node; client process i
 * goes to ports[i % ports.length]). Bulk processes of at most `perProcess` sockets run at nice 10; a probe
 * process of `probeN` sockets runs at normal priority and opens its sockets along the bulk's progress (see
 * bench/fanout/README.md, "the probe"). At most `window` subscribes in flight over all processes.
 * Resolves when every subscriber has its response head, or the connect stalled for 15 s (bounded by
 * `timeoutMs` in all).
 */
export async function connectAll({ ports, path, n, perProcess, probeN, window, messages, timeoutMs = 300_000, log }) {
  const bulkN = n - probeN;
  const procs = Math.max(ports.length, Math.ceil(bulkN / perProcess));
  if (procs + 2 > 250) throw new Error(`${procs} client processes: more than the 127.0.0.2-127.0.0.254 source addresses`);
  const bulk = [];
  for (let i = 0; i < procs; i++) bulk.push(forkClient(probeN > 0 ? 10 : 0));
  const probe = probeN > 0 ? forkClient(0) : null;
  const all = probe ? [...bulk, probe] : bulk;
  const counts = bulk.map((_, i) => Math.floor(bulkN / procs) + (i < bulkN % procs ? 1 : 0));
  const perPort = ports.map(() => 0);
  // Wait until every client process has booted, so the clock measures the server, not `fork`.
  await statusAll(all);
  const base = { host: '127.0.0.1', path, transport: 'sse', messages, mode: 'latency', window: Math.max(8, Math.floor(window / procs)) };
  const t0Us = Number(process.hrtime.bigint() / 1000n);
  await Promise.all(
    bulk.map((c, i) => {
      perPort[i % ports.length] += counts[i];
      return call(c, { cmd: 'connect', ...base, port: ports[i % ports.length], localAddress: `127.0.0.${2 + i}`, total: counts[i] });
    }),
  );
  if (probe) {
    perPort[procs % ports.length] += probeN;
    await call(probe, { cmd: 'connect', ...base, port: ports[procs % ports.length], localAddress: `127.0.0.${2 + procs}`, total: probeN, gradual: true });
  }
  const deadline = Date.now() + timeoutMs;
  let st;
  let last = -1;
  let lastProgress = Date.now();
  let lastLog = Date.now();
  for (;;) {
    await sleep(200);
    st = await statusAll(all);
    const bulkHeads = sum(st.slice(0, bulk.length), 'heads');
    if (probe) await call(probe, { cmd: 'grow', upTo: Math.ceil((probeN * bulkHeads) / Math.max(1, bulkN)) });
    const heads = sum(st, 'heads');
    const failed = sum(st, 'errors');
    if (heads + failed >= n) break;
    if (heads + failed !== last) {
      last = heads + failed;
      lastProgress = Date.now();
    }
    if (Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      log(`  ... ${heads}/${n} connected, ${failed} gave up, ${sum(st, 'retried')} retried`);
    }
    if (Date.now() > deadline || Date.now() - lastProgress > 15_000) {
      log(`  connect stalled: ${heads}/${n} heads, ${failed} gave up, the rest no answer for 15 s (first error: ${st.find((x) => x.firstError)?.firstError ?? 'none'})`);
      break;
    }
  }
  const lastHeadUs = Math.max(...st.map((x) => x.lastHeadUs));
  return {
    all,
    bulk,
    probe,
    probeN,
    procs: all.length,
    perPort,
    connectMs: (lastHeadUs - t0Us) / 1000,
    heads: sum(st, 'heads'),
    gaveUp: sum(st, 'errors'),
    retried: sum(st, 'retried'),
    badStatus: sum(st, 'badStatus'),
    firstError: st.find((x) => x.firstError)?.firstError ?? null,
  };
}
