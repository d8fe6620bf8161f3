#!/usr/bin/env node
// WebSocket passthrough: messages/s and latency percentiles of a closed-loop echo load, directly against a ws
// echo backend and through Holdfast, nginx and HAProxy tunnelling it, all started here on loopback.
//
//   node ws-bench.mjs                options: --duration S (8) --warmup S (2) --connections N (50)
//                                    --size BYTES (64) --no-record (do not append to RESULTS.md)
//
// Cores as in http-proxy-bench.mjs: the proxy under test alone on core 1; the load generator and the backend
// share core 0. The load generator is a Node `ws` client (one process): each connection sends a message,
// waits for its echo, sends the next, so messages/s is also a latency measurement (Little's law).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { holdfastEnv, holdfastNodeArgs } from './lib/holdfast-node-args.mjs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { treeCpuUs } from './lib/cpu.mjs';
import { freePort } from './lib/ports.mjs';
import { startProcess, stopAll, stopAllSync, stopProcess, waitUntilReady } from './lib/processes.mjs';
import { appendResults, markdownTable } from './lib/report.mjs';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const mainJs = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const runDir = join(benchDir, '.run', 'ws');
const resultsFile = join(benchDir, 'RESULTS.md');
const LOAD_CPU = 0;
const PROXY_CPU = 1;

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    size: { type: 'string', default: '64' },
    'no-record': { type: 'boolean', default: false },
  },
});
const durationS = Number(opts.duration);
const warmupS = Number(opts.warmup);
const connections = Number(opts.connections);
const size = Number(opts.size);

process.on('SIGINT', () => {
  stopAllSync();
  process.exit(130);
});

/** The backend: ws echo on node:http, as a child process pinned to the load core. */
const BACKEND_JS = `
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
const server = createServer((req, res) => { res.writeHead(200); res.end('ok'); });
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
server.listen(Number(process.argv[2]), '127.0.0.1');
`;

/** The load: N connections in a closed loop; prints one JSON line with counts and latency percentiles. */
const CLIENT_JS = `
import { WebSocket } from 'ws';
const [url, n, warmupMs, durationMs, size] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
const payload = Buffer.alloc(size, 120);
const samples = [];
let count = 0;
let measuring = false;
const sockets = [];
await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  sockets.push(ws);
  let sentAt = 0n;
  const send = () => { sentAt = process.hrtime.bigint(); ws.send(payload); };
  ws.on('open', () => { resolve(); send(); });
  ws.on('message', () => {
    if (measuring) { count++; if (count % 4 === 0) samples.push(Number(process.hrtime.bigint() - sentAt) / 1000); }
    send();
  });
  ws.on('error', reject);
})));
await new Promise((r) => setTimeout(r, warmupMs));
measuring = true;
const started = process.hrtime.bigint();
await new Promise((r) => setTimeout(r, durationMs));
measuring = false;
const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
samples.sort((a, b) => a - b);
const pct = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
console.log(JSON.stringify({ messages: count, elapsedS, p50us: pct(50), p99us: pct(99), p999us: pct(99.9) }));
for (const ws of sockets) ws.terminate();
process.exit(0);
`;

function nginxConf(dir, port, backendPort) {
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { recursive: true });
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((s) => `  ${s}_temp_path ${join(dir, s)};`).join('\n');
  return `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 4096; }
http {
${temp}
  access_log off;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://127.0.0.1:${backendPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 300s;
    }
  }
}
`;
}

function haproxyConf(port, backendPort) {
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 300s
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server s1 127.0.0.1:${backendPort}
`;
}

async function startPeer(name, backendPort) {
  const dir = join(runDir, name);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let proc;
  if (name === 'holdfast') {
    proc = startProcess({
      name,
      command: process.execPath,
      args: [...holdfastNodeArgs(mainJs), mainJs, '--listen', `127.0.0.1:${port}`, '--control', `127.0.0.1:${await freePort()}`, '--backend', `http://127.0.0.1:${backendPort}`, '--log-level', 'warn'],
      cpu: PROXY_CPU,
      logFile: join(dir, 'out.log'),
      cwd: dir,
      env: holdfastEnv(mainJs),
    });
  } else if (name === 'nginx') {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf(dir, port, backendPort));
    proc = startProcess({ name, command: 'nginx', args: ['-e', 'stderr', '-p', dir, '-c', conf], cpu: PROXY_CPU, logFile: join(dir, 'out.log') });
  } else {
    const conf = join(dir, 'haproxy.cfg');
    writeFileSync(conf, haproxyConf(port, backendPort));
    proc = startProcess({ name, command: 'haproxy', args: ['-db', '-f', conf], cpu: PROXY_CPU, logFile: join(dir, 'out.log') });
  }
  await waitUntilReady(proc, `http://127.0.0.1:${port}/`);
  return { proc, port };
}

async function runLoad(port) {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    'taskset',
    ['-c', String(LOAD_CPU), process.execPath, join(runDir, 'client.mjs'), `ws://127.0.0.1:${port}/echo`, String(connections), String(warmupS * 1000), String(durationS * 1000), String(size)],
    { cwd: benchDir, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  await new Promise((resolve) => child.once('exit', resolve));
  return JSON.parse(out.trim().split('\n').pop());
}

async function main() {
  const loadBefore = os.loadavg()[0];
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const backendPort = await freePort();
  writeFileSync(join(runDir, 'backend.mjs'), BACKEND_JS);
  writeFileSync(join(runDir, 'client.mjs'), CLIENT_JS);
  const backend = startProcess({
    name: 'ws echo backend',
    command: process.execPath,
    args: [join(runDir, 'backend.mjs'), String(backendPort)],
    cpu: LOAD_CPU,
    logFile: join(runDir, 'backend.log'),
    cwd: benchDir,
  });
  await waitUntilReady(backend, `http://127.0.0.1:${backendPort}/`);
  const rows = [];
  for (const name of ['direct', 'holdfast', 'nginx', 'haproxy']) {
    const peer = name === 'direct' ? { proc: null, port: backendPort } : await startPeer(name, backendPort);
    const cpuBefore = peer.proc === null ? 0 : treeCpuUs(peer.proc.pid);
    const r = await runLoad(peer.port);
    const cpuUs = peer.proc === null ? 0 : treeCpuUs(peer.proc.pid) - cpuBefore;
    const rate = r.messages / r.elapsedS;
    rows.push({ name, rate, ...r, cpuPerMsgUs: peer.proc === null ? null : cpuUs / r.messages });
    console.log(`${name}: ${Math.round(rate)} msg/s p50 ${r.p50us.toFixed(0)} us p99 ${r.p99us.toFixed(0)} us`);
    if (peer.proc !== null) await stopProcess(peer.proc);
  }
  await stopProcess(backend);
  const best = Math.max(...rows.filter((r) => r.name === 'nginx' || r.name === 'haproxy').map((r) => r.rate));
  const table = markdownTable(
    ['path', 'msg/s', 'vs best peer', 'p50 (us)', 'p99 (us)', 'p99.9 (us)', 'proxy CPU/msg (us)'],
    rows.map((r) => [
      r.name,
      String(Math.round(r.rate)),
      r.name === 'direct' ? '' : `${(r.rate / best).toFixed(2)}x`,
      r.p50us.toFixed(0),
      r.p99us.toFixed(0),
      r.p999us.toFixed(0),
      r.cpuPerMsgUs === null ? '' : r.cpuPerMsgUs.toFixed(1),
    ]),
  );
  const command = `cd bench && node ws-bench.mjs ${process.argv.slice(2).join(' ')}`.trim();
  const section = `## WebSocket passthrough echo, ${new Date().toISOString().slice(0, 10)}

\`${command}\` (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}, Node ${process.version}; 1-minute load average ${loadBefore.toFixed(1)} at the start: other jobs shared the machine)

${connections} connections, ${size}-byte binary messages, closed loop (each connection sends its next message when the echo of the last arrived), ${durationS} s measured after ${warmupS} s warm-up. Backend: a \`ws\` echo server (Node), on core 0 with the load generator (one Node \`ws\` client process); each proxy alone on core 1 (nginx \`worker_processes 1\`, HAProxy \`nbthread 1\`, Holdfast one process, passthrough mode). Latency is the round trip of one message, sampled every 4th message. CPU/msg counts the proxy's own utime+stime per echoed message (two frames through it).

${table}
`;
  console.log(section);
  if (!opts['no-record']) appendResults(resultsFile, section);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
