#!/usr/bin/env node
// Compression and overload, on loopback in one run (see README.md):
//  1. throughput of the 10 KiB JSON response with gzip on: Holdfast (group compression) against nginx
//     (`gzip on`), same gzip level, same backend, wrk sending Accept-Encoding; plus Holdfast with brotli q4;
//  2. latency of Holdfast's group queue under overload: a backend answering in 5 ms, a cap of 4 requests at
//     once, 64 clients, so most requests wait in the queue.
//
//   node compression-bench.mjs [--duration S (8)] [--warmup S (2)] [--gzip-level N (1)] [--no-record]
import { execFileSync, spawn } from 'node:child_process';
import { holdfastEnv, holdfastNodeArgs } from './lib/holdfast-node-args.mjs';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { freePort } from './lib/ports.mjs';
import { adoptChild, httpGet, startProcess, stopAll, stopAllSync, waitUntilReady } from './lib/processes.mjs';
import { appendResults, markdownTable } from './lib/report.mjs';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const mainJs = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const runDir = join(benchDir, '.run', 'compression');
const wrkScript = join(benchDir, 'wrk', 'report.lua');
const resultsFile = join(benchDir, 'RESULTS.md');
const LOAD_CPU = 0;
const PROXY_CPU = 1;

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    'gzip-level': { type: 'string', default: '1' },
    'no-record': { type: 'boolean', default: false },
  },
});
const durationS = Number(opts.duration);
const warmupS = Number(opts.warmup);
const gzipLevel = Number(opts['gzip-level']);

/** A 10 KiB JSON document like an API answer: an array of small records. */
function json10k() {
  const items = [];
  for (let i = 0; JSON.stringify(items).length < 10_240 - 120; i++) {
    items.push({ id: i, name: `item ${i}`, price: Math.round(i * 137.5) / 100, tags: ['sale', `c${i % 7}`], inStock: i % 3 !== 0 });
  }
  return JSON.stringify(items).padEnd(10_240, ' ');
}

function nginxCommon(dir) {
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { recursive: true });
  return `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 4096; }
`;
}
const tempPaths = (dir) => ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((s) => `  ${s}_temp_path ${join(dir, s)};`).join('\n');

function startNginx(name, dir, httpBlock, cpu) {
  mkdirSync(dir, { recursive: true });
  const conf = `${nginxCommon(dir)}\nhttp {\n${tempPaths(dir)}\n  access_log off;\n${httpBlock}\n}\n`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  return startProcess({ name, command: 'nginx', args: ['-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')], cpu, logFile: join(dir, 'out.log') });
}

function startHoldfastWith(dir, port, controlPort, config, cpu) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'holdfast.json');
  writeFileSync(file, JSON.stringify({ listen: `127.0.0.1:${port}`, control: `127.0.0.1:${controlPort}`, log: { level: 'warn' }, limits: { maxRequestsPerConnection: 0 }, ...config }, null, 2));
  return startProcess({ name: `holdfast (${dir.split('/').pop()})`, command: process.execPath, args: [...holdfastNodeArgs(mainJs), mainJs, '--config', file], cpu, logFile: join(dir, 'out.log'), cwd: dir, env: holdfastEnv(mainJs) });
}

function wrk({ url, connections, seconds, headers = [] }) {
  const args = ['-c', String(LOAD_CPU), 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', wrkScript];
  for (const h of headers) args.push('-H', h);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    adoptChild('wrk', child);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
      if (code !== 0 || line === undefined) return reject(new Error(`wrk exited ${code}:\n${out}`));
      const r = JSON.parse(line.slice(9));
      r.rps = r.requests / (r.durationUs / 1e6);
      r.non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      resolve(r);
    });
  });
}

async function measure(url, connections, headers) {
  if (warmupS > 0) await wrk({ url, connections, seconds: warmupS, headers });
  return wrk({ url, connections, seconds: durationS, headers });
}

function otherWrk() {
  try {
    return execFileSync('pgrep', ['-a', 'wrk'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

async function histogram(controlPort, name) {
  const text = (await httpGet(`http://127.0.0.1:${controlPort}/metrics`)).body.toString();
  return text.split('\n').filter((l) => l.startsWith(name));
}

/** Percentile from Prometheus cumulative buckets (upper bound of the bucket it falls in). */
function bucketPercentile(lines, outcome, p) {
  const buckets = lines
    .filter((l) => l.includes('_bucket{') && l.includes(`outcome="${outcome}"`))
    .map((l) => ({ le: l.match(/le="([^"]+)"/)[1], count: Number(l.split(' ').pop()) }));
  const total = buckets.at(-1)?.count ?? 0;
  const hit = buckets.find((b) => b.count >= total * p);
  return { total, le: hit?.le ?? 'n/a' };
}

async function main() {
  if (!existsSync(mainJs)) throw new Error(`no ${mainJs}: run \`npm run build\` in the repository root first`);
  const busy = otherWrk();
  if (busy !== '') throw new Error(`another benchmark is running (pgrep -a wrk):\n${busy}`);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const body = json10k();

  // Backend: nginx serving the JSON from memory (open-file cache), never compressing itself.
  const www = join(runDir, 'backend', 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'data.json'), body);
  const backendPort = await freePort();
  const backend = startNginx(
    'backend (nginx)',
    join(runDir, 'backend'),
    `  keepalive_requests 10000000;\n  keepalive_timeout 120s;\n  open_file_cache max=16 inactive=10m;\n  types { application/json json; }\n  default_type application/octet-stream;\n  server {\n    listen 127.0.0.1:${backendPort} backlog=4096;\n    root ${www};\n  }`,
    LOAD_CPU,
  );
  await waitUntilReady(backend, `http://127.0.0.1:${backendPort}/data.json`);

  // A slow backend for the queue: Node, 5 ms per answer, as many at once as asked.
  const slowPort = await freePort();
  const slow = startProcess({
    name: 'slow backend',
    command: process.execPath,
    args: ['-e', `require('http').createServer((q, s) => setTimeout(() => s.end('ok'), 5)).listen(${slowPort}, '127.0.0.1')`],
    cpu: LOAD_CPU,
    logFile: join(runDir, 'slow.log'),
  });
  await waitUntilReady(slow, `http://127.0.0.1:${slowPort}/`);

  const nginxPort = await freePort();
  const nginx = startNginx(
    'nginx gzip',
    join(runDir, 'nginx'),
    `  keepalive_requests 10000000;\n  keepalive_timeout 120s;\n  upstream b { server 127.0.0.1:${backendPort}; keepalive 64; }\n  gzip on;\n  gzip_comp_level ${gzipLevel};\n  gzip_types application/json;\n  gzip_proxied any;\n  gzip_min_length 1024;\n  gzip_vary on;\n  server {\n    listen 127.0.0.1:${nginxPort} backlog=4096;\n    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }`,
    PROXY_CPU,
  );
  const hfPort = await freePort();
  const hfControl = await freePort();
  const holdfast = startHoldfastWith(
    join(runDir, 'holdfast'),
    hfPort,
    hfControl,
    {
      groups: {
        api: { servers: [{ url: `http://127.0.0.1:${backendPort}` }], compression: { gzipLevel, brotliQuality: 4 } },
        slow: { servers: [{ url: `http://127.0.0.1:${slowPort}` }], maxConcurrentPerServer: 4, queue: { maxLength: 1000, timeoutMs: 2000 } },
      },
      routes: [{ pathPrefix: '/slow', group: 'slow', stripPrefix: true }, { group: 'api' }],
    },
    PROXY_CPU,
  );
  const gz = (r) => r.headers['content-encoding'] === 'gzip' && gunzipSync(r.body).toString() === body;
  const check = async (proc, url) => {
    await waitUntilReady(proc, url);
    const r = await new Promise((resolve, reject) => {
      import('node:http').then(({ get }) =>
        get(url, { agent: false, headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        }).on('error', reject),
      );
    });
    if (!gz(r)) throw new Error(`${proc.name} did not answer gzip of the body at ${url}`);
    return r.body.length;
  };
  const nginxBytes = await check(nginx, `http://127.0.0.1:${nginxPort}/data.json`);
  const hfBytes = await check(holdfast, `http://127.0.0.1:${hfPort}/data.json`);

  const rows = [];
  const cells = [
    ['nginx gzip', `http://127.0.0.1:${nginxPort}/data.json`, 'gzip'],
    ['Holdfast gzip', `http://127.0.0.1:${hfPort}/data.json`, 'gzip'],
    ['Holdfast brotli q4', `http://127.0.0.1:${hfPort}/data.json`, 'br'],
    ['Holdfast identity', `http://127.0.0.1:${hfPort}/data.json`, 'identity'],
  ];
  const results = {};
  for (const [name, url, encoding] of cells) {
    const r = await measure(url, 50, [`Accept-Encoding: ${encoding}`]);
    results[name] = r;
    rows.push([name, encoding, Math.round(r.rps).toLocaleString('en-US'), (r.p50Us / 1000).toFixed(2), (r.p99Us / 1000).toFixed(2), Math.round(r.bytes / r.requests).toLocaleString('en-US'), r.non2xx]);
    console.log(name, Math.round(r.rps), 'req/s');
  }
  const ratio = results['Holdfast gzip'].rps / results['nginx gzip'].rps;

  // Queue under overload: 64 clients against a cap of 4 x 5 ms (about 800 req/s of capacity).
  const queueRun = await measure(`http://127.0.0.1:${hfPort}/slow/`, 64, []);
  const waits = await histogram(hfControl, 'holdfast_queue_wait_seconds');
  const served50 = bucketPercentile(waits, 'served', 0.5);
  const served99 = bucketPercentile(waits, 'served', 0.99);
  const timedOut = bucketPercentile(waits, 'timeout', 1);

  const when = new Date().toISOString().slice(0, 10);
  const command = `cd bench && node compression-bench.mjs --duration ${durationS} --warmup ${warmupS} --gzip-level ${gzipLevel}`;
  const text = [
    `## ${when}: compression (10 KiB JSON) against nginx gzip, and queue latency under overload`,
    '',
    `Command: \`${command}\` (after \`npm run build\`; wrk -t1 -c50 on core ${LOAD_CPU} with the backend, each proxy alone on core ${PROXY_CPU}; gzip level ${gzipLevel} on both, nginx's default; body ${body.length} B, gzip ${nginxBytes} B from nginx, ${hfBytes} B from Holdfast)`,
    '',
    markdownTable(['proxy', 'Accept-Encoding', 'req/s', 'p50 ms', 'p99 ms', 'bytes/resp', 'non-2xx'], rows),
    '',
    `Holdfast gzip / nginx gzip throughput: **${ratio.toFixed(2)}x**.`,
    '',
    `Queue under overload (group \`slow\`: maxConcurrentPerServer 4, queue 1000 / 2000 ms, backend 5 ms per answer, wrk -c64 for ${durationS} s): ${Math.round(queueRun.rps)} req/s (capacity ~800), client p50 ${(queueRun.p50Us / 1000).toFixed(1)} ms, p99 ${(queueRun.p99Us / 1000).toFixed(1)} ms, ${queueRun.non2xx} non-2xx; holdfast_queue_wait_seconds: ${served50.total} served, p50 <= ${served50.le} s, p99 <= ${served99.le} s; ${timedOut.total} timed out.`,
    '',
  ].join('\n');
  console.log(`\n${text}`);
  if (!opts['no-record']) appendResults(resultsFile, text);
}

process.on('SIGINT', () => {
  stopAllSync();
  process.exit(130);
});
main()
  .catch((err) => {
    console.error(err.stack ?? err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
