#!/usr/bin/env node
// A hostile pipelining client against Holdfast, nginx and HAProxy in the same run: one connection writes
// tiny pipelined GETs as fast as the proxy accepts them and never reads an answer. What matters is what the
// proxy holds meanwhile (its resident memory, process tree) and whether it keeps taking input without bound.
//
//   node pipeline-flood.mjs [--requests 200000] [--seconds 8] [--no-record]
//
// Needs nginx-light and haproxy from Debian and Holdfast built (`npm run build` at the root).
import net from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { backendCounters, backendDelta } from './lib/counters.mjs';
import { treeRssKiB } from './lib/cpu.mjs';
import { startBackend, startHaproxy, startHoldfast, startNginxProxy } from './lib/peers.mjs';
import { freePort } from './lib/ports.mjs';
import { stopAll, stopAllSync, waitUntilReady } from './lib/processes.mjs';
import { appendResults, markdownTable } from './lib/report.mjs';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const mainJs = process.env.HOLDFAST_MAIN_JS ?? fileURLToPath(new URL('../dist/main.js', import.meta.url));
const runDir = join(benchDir, '.run', 'flood');
const { values: opts } = parseArgs({
  options: {
    requests: { type: 'string', default: '200000' },
    seconds: { type: 'string', default: '8' },
    'no-record': { type: 'boolean', default: false },
  },
});
const REQUESTS = Number(opts.requests);
const SECONDS = Number(opts.seconds);
const REQUEST = 'GET /small HTTP/1.1\r\nHost: flood.test\r\n\r\n';

/** One flooding connection for SECONDS: bytes accepted, the proxy's peak and final RSS growth. */
async function flood(target) {
  const before = treeRssKiB(target.proc.pid);
  const socket = net.connect(target.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.pause(); // never read an answer
  await new Promise((resolve) => socket.once('connect', resolve));
  const batch = Buffer.from(REQUEST.repeat(1_000));
  let written = 0;
  const pump = () => {
    while (written < REQUESTS && !socket.destroyed) {
      written += 1_000;
      if (!socket.write(batch)) return void socket.once('drain', pump);
    }
  };
  pump();
  let peak = before;
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    peak = Math.max(peak, treeRssKiB(target.proc.pid));
  }
  const final = treeRssKiB(target.proc.pid);
  socket.destroy();
  return { before, peak, final, written };
}

async function main() {
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const [port, statusPort] = [await freePort(), await freePort()];
  const be = startBackend({ dir: join(runDir, 'backend'), port, statusPort, cpu: 0 });
  await waitUntilReady(be, `http://127.0.0.1:${port}/small`);
  const statusUrl = `http://127.0.0.1:${statusPort}/status`;
  const targets = [];
  const hfPort = await freePort();
  targets.push({ name: 'holdfast', port: hfPort, proc: startHoldfast({ dir: join(runDir, 'holdfast'), port: hfPort, controlPort: await freePort(), backendPort: port, cpu: 1, mainJs }) });
  const ngPort = await freePort();
  targets.push({ name: 'nginx', port: ngPort, proc: startNginxProxy({ dir: join(runDir, 'nginx'), port: ngPort, backendPort: port, cpu: 1 }) });
  const haPort = await freePort();
  targets.push({ name: 'haproxy', port: haPort, proc: startHaproxy({ dir: join(runDir, 'haproxy'), port: haPort, backendPort: port, cpu: 1 }) });
  const rows = [];
  for (const t of targets) {
    await waitUntilReady(t.proc, `http://127.0.0.1:${t.port}/small`);
    const counters = await backendCounters(statusUrl);
    const r = await flood(t);
    const served = backendDelta(counters, await backendCounters(statusUrl)).requests;
    const mib = (kib) => (kib / 1024).toFixed(1);
    rows.push([t.name, mib(r.before), `+${mib(r.peak - r.before)}`, `+${mib(r.final - r.before)}`, served.toLocaleString('en-US')]);
    process.stderr.write(`${t.name}: ${JSON.stringify(r)} served ${served}\n`);
  }
  const table = markdownTable(['target', 'RSS before MiB', 'peak growth MiB', 'growth at the end MiB', 'forwarded'], rows);
  const text = `One connection writes up to ${REQUESTS.toLocaleString('en-US')} pipelined \`GET /small\` (${REQUEST.length} bytes each) for ${SECONDS} s and never reads;` +
    ` "forwarded" is what the backend answered meanwhile (the answers wait, unread, in the proxy and the kernel).` +
    ` HOLDFAST_MAIN_JS=${process.env.HOLDFAST_MAIN_JS === undefined ? '(this checkout)' : 'an older build, see the reading'}.\n\n${table}\n`;
  process.stdout.write(`\n${text}`);
  if (!opts['no-record']) {
    const command = ['node', 'pipeline-flood.mjs', ...process.argv.slice(2)].join(' ');
    appendResults(join(benchDir, 'RESULTS.md'), `## ${new Date().toISOString().slice(0, 10)}: a pipelining client that never reads\n\nCommand: \`cd bench && ${command}\`\n\n${text}`);
  }
}

process.on('exit', stopAllSync);
try {
  await main();
} finally {
  await stopAll();
}
