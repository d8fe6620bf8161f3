// Starting, measuring and stopping the servers of the fan-out bench: Holdfast, Pushpin 1.36,
// nginx + nchan and the two floor servers (floor/), each in the foreground from its own folder under
// bench/.run/fanout/, pinned with taskset, stopped by its own PID.
import { execFileSync } from 'node:child_process';
import { holdfastEnv, holdfastNodeArgs } from '../lib/holdfast-node-args.mjs';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Process bookkeeping (start pinned, stop by PID, stop everything on failure) is the HTTP bench's.
export { adoptChild, killPid, startProcess, stopAll, stopProcess } from '../lib/processes.mjs';
import { killPid, startProcess, stopProcess } from '../lib/processes.mjs';

/** pid -> { ppid, comm } for every process on the host. */
function processTable() {
  const table = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      table.set(Number(entry), { ppid, comm });
    } catch {
      // exited while we looked
    }
  }
  return table;
}

export function descendants(pid) {
  const table = processTable();
  const out = [];
  const walk = (p) => {
    for (const [child, info] of table) {
      if (info.ppid === p) {
        out.push({ pid: child, comm: info.comm });
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** VmRSS in KiB, 0 if the process is gone. */
export function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** utime + stime in seconds of one process. */
export function cpuSeconds(pid) {
  return kernelAndTotalSeconds(pid).total;
}

/** CPU time of a process from /proc (USER_HZ = 100 on Linux): in the kernel (stime) and in all (utime + stime). */
export function kernelAndTotalSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const kernel = Number(fields[12]) / 100;
    return { kernel, total: Number(fields[11]) / 100 + kernel };
  } catch {
    return { kernel: 0, total: 0 };
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, timeoutMs, proc) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== undefined) throw new Error(`${proc.name} exited (${proc.exitCode}); see ${proc.logFile}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} not open after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends one request head on a fresh connection and resolves true when the answer's status line starts with
 * `expected` (the socket is closed right after): whether a peer serves, and a warm-up of its code paths.
 */
function probeHead(port, head, expected, timeoutMs) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => s.write(head));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) done(buf.startsWith(expected));
    });
    s.once('error', () => done(false));
  });
}

/** One SSE subscribe through the peer, to know it serves (and to warm its code paths before RSS idle). */
export function probeSubscribe(port, path, timeoutMs = 3000) {
  return probeHead(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`, 'HTTP/1.1 200', timeoutMs);
}

export async function waitServing(port, path, timeoutMs, proc) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probeSubscribe(port, path))) {
    if (proc.exitCode !== undefined) throw new Error(`${proc.name} exited (${proc.exitCode}); see ${proc.logFile}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} does not serve ${path} after ${timeoutMs} ms; see ${proc.logFile}`);
    await sleep(200);
  }
}

const publishAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** POST and resolve { status, ms, headers }; never rejects (errors become status 0). */
export function post(port, path, body, contentType) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: publishAgent, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode, ms: performance.now() - started, headers: res.headers }));
      },
    );
    req.once('error', (err) => resolve({ status: 0, ms: performance.now() - started, error: err.message, headers: {} }));
    req.end(body);
  });
}

/** `data: <seq> <t0>`: the line every peer delivers, see client.mjs. */
export function sseLine(seq, t0Us) {
  return `data: ${seq} ${t0Us}\n\n`;
}

/** `<seq> <t0>`: the payload of the text frame every WebSocket subscriber gets, see client.mjs. */
export function wsPayload(seq, t0Us) {
  return `${seq} ${t0Us}`;
}

/** One WebSocket handshake through the peer: true when it answered 101. */
export function probeWebSocket(port, path, timeoutMs = 3000) {
  const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString('base64');
  const head =
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return probeHead(port, head, 'HTTP/1.1 101', timeoutMs);
}

export async function waitServingWebSocket(port, path, timeoutMs, proc) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probeWebSocket(port, path))) {
    if (proc.exitCode !== undefined) throw new Error(`${proc.name} exited (${proc.exitCode}); see ${proc.logFile}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} does not accept a WebSocket at ${path} after ${timeoutMs} ms; see ${proc.logFile}`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------- Holdfast

/**
 * Holdfast from the repository's dist/. `--log-level warn` (no access line per request); the connection
 * limits are raised because every subscriber comes from 127.0.0.1 (default 1000 per client address, 10000
 * in all); nothing else is tuned.
 */
export async function startHoldfast({ dir, cpu, backendPort, mainJs, nodeArgs = [], wsPath = null, extraArgs = [], maxConnections = 30000, name = 'holdfast', readyTimeoutMs = 15_000, port: askedPort, controlPort: askedControlPort, config = {} }) {
  mkdirSync(dir, { recursive: true });
  // Given ports: a restart on the same address (bench/faults), which reconnecting clients need.
  const port = askedPort ?? (await freePort());
  const controlPort = askedControlPort ?? (await freePort());
  // A config file (YAML; JSON is YAML) when asked: `config` as given (bench/soak: short history), and for
  // WebSocket runs wsPath served as WebSocket-over-HTTP. The flags below still apply on top.
  const configArgs = [];
  const fileConfig = wsPath === null ? config : { ...config, websocket: { ...config.websocket, overHttpPaths: [wsPath] } };
  if (Object.keys(fileConfig).length > 0) {
    const configFile = join(dir, 'holdfast.yaml');
    writeFileSync(configFile, `${JSON.stringify(fileConfig)}\n`);
    configArgs.push('--config', configFile);
  }
  const proc = startProcess({
    name,
    command: process.execPath,
    args: [
      ...holdfastNodeArgs(mainJs),
      ...nodeArgs,
      mainJs,
      ...configArgs,
      '--listen', `127.0.0.1:${port}`,
      '--control', `127.0.0.1:${controlPort}`,
      '--backend', `http://127.0.0.1:${backendPort}`,
      '--log-level', 'warn',
      '--max-connections', String(maxConnections),
      '--max-connections-per-client', String(maxConnections),
      '--drain-timeout', '1000',
      ...extraArgs,
    ],
    cpu,
    logFile: join(dir, 'out.log'),
    cwd: dir,
    env: holdfastEnv(mainJs),
  });
  await waitForPort(port, readyTimeoutMs, proc);
  await waitForPort(controlPort, readyTimeoutMs, proc);
  await waitServing(port, '/sub/ready', readyTimeoutMs, proc);
  if (wsPath !== null) await waitServingWebSocket(port, `${wsPath}/ready`, readyTimeoutMs, proc);
  return {
    name,
    proc,
    port,
    controlPort,
    pids: () => [proc.pid],
    cpuPids: () => [proc.pid],
    publish: (items) => publishGrip(controlPort, items),
    stop: () => stopProcess(proc),
  };
}

/** Items `{ channel, id, content, format }`, format `http-stream` (default) or `ws-message`. */
export function publishGrip(controlPort, items) {
  const body = JSON.stringify({
    items: items.map(({ channel, id, content, format = 'http-stream' }) => ({ channel, id, formats: { [format]: { content } } })),
  });
  return post(controlPort, '/publish', body, 'application/json');
}

// ----------------------------------------------------------------------------------------------- Pushpin

/**
 * Pushpin 1.36 from Debian, following PEERS.md: our own copies of pushpin.conf and internal.conf, zurl on
 * IPC sockets in our rundir, every port moved. `throttle: false` raises message_rate and message_hwm
 * (defaults 2500/s and 25000) so fan-out is not rate limited. log_level=1 (warnings): at the default 2 it
 * logs a line per request, which Holdfast (`--log-level warn`) does not pay either.
 */
export async function startPushpin({ dir, cpu, backendPort, throttle, wsPath = null }) {
  rmSync(dir, { recursive: true, force: true });
  const run = join(dir, 'run');
  const log = join(dir, 'log');
  mkdirSync(run, { recursive: true });
  mkdirSync(log, { recursive: true });
  const [port, pushPort, pushInSpec, pushInSub, command] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const internal = readFileSync('/usr/lib/pushpin/internal.conf', 'utf8').replaceAll('ipc:///var/run/zurl/zurl-', 'ipc://{rundir}/{ipc_prefix}zurl-');
  writeFileSync(join(dir, 'internal.conf'), internal);
  // WebSocket runs: wsPath as WebSocket-over-HTTP (PEERS.md), before the catch-all.
  const wsRoute = wsPath === null ? '' : `*,path_beg=${wsPath} 127.0.0.1:${backendPort},over_http\n`;
  writeFileSync(join(dir, 'routes'), `${wsRoute}* 127.0.0.1:${backendPort}\n`);
  const set = {
    include: join(dir, 'internal.conf'),
    rundir: run,
    logdir: log,
    services: 'condure,zurl,pushpin-proxy,pushpin-handler',
    http_port: `127.0.0.1:${port}`,
    log_level: process.env.FANOUT_PUSHPIN_LOG_LEVEL ?? '1',
    routesfile: join(dir, 'routes'),
    push_in_spec: `tcp://127.0.0.1:${pushInSpec}`,
    push_in_sub_specs: `tcp://127.0.0.1:${pushInSub}`,
    command_spec: `tcp://127.0.0.1:${command}`,
    push_in_http_port: String(pushPort),
    updates_check: 'off',
  };
  if (!throttle) {
    set.message_rate = '1000000';
    set.message_hwm = '1000000';
  }
  const seen = new Set();
  const conf = readFileSync('/etc/pushpin/pushpin.conf', 'utf8')
    .split('\n')
    .map((line) => {
      const m = /^([a-z_]+)=/.exec(line);
      if (!m || !(m[1] in set)) return line;
      seen.add(m[1]);
      return `${m[1]}=${set[m[1]]}`;
    })
    .join('\n');
  const missing = Object.keys(set).filter((k) => !seen.has(k));
  if (missing.length > 0) throw new Error(`pushpin.conf has no ${missing.join(', ')}`);
  const confFile = join(dir, 'pushpin.conf');
  writeFileSync(confFile, conf);
  const proc = startProcess({
    name: throttle ? 'pushpin' : 'pushpin (unthrottled)',
    command: 'pushpin',
    args: ['--config', confFile, '--merge-output'],
    cpu,
    logFile: join(dir, 'out.log'),
    cwd: dir,
  });
  let children = [];
  const server = {
    name: throttle ? 'pushpin' : 'pushpin-raised',
    proc,
    port,
    // RSS: the four services (condure, zurl, pushpin-proxy, pushpin-handler); the runner is constant.
    pids: () => descendants(proc.pid).map((d) => d.pid),
    cpuPids: () => descendants(proc.pid).map((d) => d.pid),
    publish: (items) => publishGrip(pushPort, items),
    stop: async () => {
      children = descendants(proc.pid).length > 0 ? descendants(proc.pid) : children;
      await stopProcess(proc, 15_000);
      // The runner stops its services on SIGTERM; make sure, by PID, that none is left behind.
      await sleep(300);
      for (const c of children) {
        if (processTable().get(c.pid)?.comm === c.comm) {
          console.error(`  pushpin left ${c.comm} (${c.pid}) running: SIGTERM`);
          killPid(c.pid, 'SIGTERM');
          await sleep(1000);
          if (processTable().get(c.pid)?.comm === c.comm) killPid(c.pid, 'SIGKILL');
        }
      }
    },
  };
  try {
    await waitForPort(port, 20_000, proc);
    await waitForPort(pushPort, 20_000, proc);
    children = descendants(proc.pid);
    await waitServing(port, '/sub/ready', 20_000, proc);
    if (wsPath !== null) await waitServingWebSocket(port, `${wsPath}/ready`, 20_000, proc);
    children = descendants(proc.pid);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

// ----------------------------------------------------------------------------------------- nginx + nchan

/**
 * nginx 1.22 + nchan from Debian: one worker (bench/scale asks for more, with `reuseport` so the kernel spreads
 * connections evenly and no worker passes its own fd limit), eventsource subscribers at /sub/<ch>, publisher
 * at /pub/<ch>.
 */
export async function startNchan({ dir, cpu, workers = 1, workerConnections = 19000, sharedMemory = '256M', reuseport = false, tls = null }) {
  mkdirSync(dir, { recursive: true });
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { recursive: true });
  const port = await freePort();
  // `tls: { cert, key }` (bench/h2): subscribers on a TLS + HTTP/2 listener (`tlsPort`), publishes and the
  // readiness probe stay on the plain one.
  const tlsPort = tls === null ? null : await freePort();
  const tlsListen = tls === null ? '' : `
    listen 127.0.0.1:${tlsPort} ssl http2 backlog=4096;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};`;
  const conf = `load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
daemon off;
worker_processes ${workers};
worker_rlimit_nofile 20000;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections ${workerConnections}; }
http {
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((s) => `  ${s}_temp_path ${join(dir, s)};`).join('\n')}
  access_log off;
  nchan_shared_memory_size ${sharedMemory};
  server {
    listen 127.0.0.1:${port} backlog=4096${reuseport ? ' reuseport' : ''};${tlsListen}
    location ~ ^/sub/(\\w+)$ {
      nchan_subscriber eventsource;
      nchan_channel_id $1;
    }
    location ~ ^/pub/(\\w+)$ {
      nchan_publisher;
      nchan_channel_id $1;
    }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const proc = startProcess({ name: 'nginx+nchan', command: 'nginx', args: ['-e', 'stderr', '-p', dir, '-c', confFile], cpu, logFile: join(dir, 'out.log') });
  await waitForPort(port, 10_000, proc);
  await waitServing(port, '/sub/ready', 10_000, proc);
  const pids = () => [proc.pid, ...descendants(proc.pid).map((d) => d.pid)];
  return {
    name: 'nchan',
    proc,
    port,
    tlsPort,
    pids,
    cpuPids: pids,
    // nchan takes one message per request; a batch is sent as concurrent requests.
    publish: async (items) => {
      const results = await Promise.all(items.map((it) => post(port, `/pub/${it.channel}`, it.content.replace(/^data: /, '').replace(/\n+$/, ''), 'text/plain')));
      const bad = results.find((r) => r.status < 200 || r.status >= 300);
      return bad ?? results[0];
    },
    stop: () => stopProcess(proc),
  };
}

// ------------------------------------------------------------------------------------------------ floors

const floorDir = join(dirname(fileURLToPath(import.meta.url)), 'floor');

/**
 * Floor servers take the publish body as the event bytes (`data: <seq> <t0>\n\n`, several items concatenated)
 * and answer after writing it to every subscriber, as nchan does.
 */
function floorServer(name, proc, port) {
  return {
    name,
    proc,
    port,
    pids: () => [proc.pid],
    cpuPids: () => [proc.pid],
    publish: (items) => post(port, '/pub/fan', items.map((it) => it.content).join(''), 'text/event-stream'),
    stop: () => stopProcess(proc),
  };
}

/**
 * floor/sse-floor.c, compiled with `gcc -O2` into `binDir` at every run (so the binary matches the source):
 * one write() of a pre-framed chunk per subscriber, nothing else. Throws, and the cell is reported as failed,
 * when gcc is missing.
 */
export async function startFloorC({ dir, cpu, binDir }) {
  mkdirSync(dir, { recursive: true });
  const bin = join(binDir, 'sse-floor');
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', bin, join(floorDir, 'sse-floor.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (err) {
    throw new Error(err.code === 'ENOENT' ? 'floor-c skipped: gcc is not installed' : `floor-c skipped: gcc failed (${err.message.split('\n')[0]})`);
  }
  const port = await freePort();
  const proc = startProcess({ name: 'sse-floor', command: bin, args: [String(port)], cpu, logFile: join(dir, 'out.log'), cwd: dir });
  await waitForPort(port, 5_000, proc);
  await waitServing(port, '/sub/ready', 5_000, proc);
  return floorServer('floor-c', proc, port);
}

/** floor/sse-floor-node.mjs: the same in plain Node (`node:net`, one `socket.write(sharedBuffer)` each). */
export async function startFloorNode({ dir, cpu }) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const proc = startProcess({
    name: 'sse-floor-node',
    command: process.execPath,
    args: [join(floorDir, 'sse-floor-node.mjs'), String(port)],
    cpu,
    logFile: join(dir, 'out.log'),
    cwd: dir,
  });
  await waitForPort(port, 10_000, proc);
  await waitServing(port, '/sub/ready', 10_000, proc);
  return floorServer('floor-node', proc, port);
}

export function checkNoLeftovers() {
  const out = [];
  for (const name of ['pushpin', 'condure', 'zurl']) {
    try {
      out.push(execFileSync('pgrep', ['-a', name], { encoding: 'utf8' }).trim());
    } catch {
      // pgrep exits 1 when nothing matches
    }
  }
  return out.filter((s) => s !== '');
}
