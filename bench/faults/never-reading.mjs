#!/usr/bin/env node
// Clients that never read (issue 15, defect 8): N SSE clients open a held stream and never read a byte, one
// client reads everything, and 64 KB items are published on their channel until well past the send deadline
// (timeouts.sendStallMs). Samples Holdfast's RSS and the kernel's TCP memory (/proc/net/sockstat `TCP: mem`,
// pages; on loopback it counts both ends), split per side with `ss -tm` (Holdfast's send queues, the clients'
// receive queues), before, at the peak and after; prints a Markdown section. Measured, never asserted.
//
//   node faults/never-reading.mjs                          1000 clients, the default 30 s deadline
//   node faults/never-reading.mjs --stall-ms 3600000       the deadline out of the way (as before the fix)
//   node faults/never-reading.mjs --clients 200 --trickle-s 20
//
// Two phases: `fill` publishes 64 KB items until the kernel takes no more (Holdfast's send queues, read with
// `ss`, stop growing: tcp_wmem's maximum per socket, or less once the kernel's tcp_mem pressure threshold is
// reached), which leaves Holdfast's own queue under push.maxQueuedBytesPerConnection; `trickle`
// then publishes a 1 KB item a second, as a quiet channel does, so what cuts the clients is the send deadline
// and not the queue bound (a fast channel reaches the 1 MiB bound first: both are counted).
//
// Needs Holdfast built (`npm run build` at the root); HOLDFAST_MAIN_JS points at another build.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { treeRssKiB } from '../lib/cpu.mjs';
import { startHoldfast } from '../lib/peers.mjs';
import { freePort } from '../lib/ports.mjs';
import { stopAll, stopAllSync, waitUntilReady } from '../lib/processes.mjs';
import { markdownTable } from '../lib/report.mjs';

const benchDir = fileURLToPath(new URL('..', import.meta.url));
const mainJs = process.env.HOLDFAST_MAIN_JS ?? fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const runDir = join(benchDir, '.run', 'never-reading');

const { values: opts } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    'item-kb': { type: 'string', default: '64' },
    'stall-ms': { type: 'string', default: '30000' },
    'interval-ms': { type: 'string', default: '100' },
    // How long the trickle lasts: past the deadline, so the cut is seen while the publisher still pushes.
    'trickle-s': { type: 'string', default: '' },
    cpu: { type: 'string', default: '1' },
  },
});
const clients = Number(opts.clients);
const itemBytes = Number(opts['item-kb']) * 1024;
const stallMs = Number(opts['stall-ms']);
const intervalMs = Number(opts['interval-ms']);
const trickleS = opts['trickle-s'] === '' ? Math.min(stallMs / 1000, 120) + 15 : Number(opts['trickle-s']);
const wmemMax = Number(readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'utf8').trim().split(/\s+/)[2]);
const fillItemsMax = Math.ceil((wmemMax + 384 * 1024) / itemBytes);
const PAGE = 4096;

/** The GRIP backend: every request becomes an SSE hold on channel `slow`. */
function startGripBackend(port) {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'grip-hold': 'stream', 'grip-channel': 'slow' });
    res.end();
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

function tcpMemBytes() {
  const m = /TCP:.* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'));
  return m ? Number(m[1]) * PAGE : 0;
}

/** Sum of the kernel's per-socket memory on Holdfast's client port: its send side and the clients' receive side. */
function socketMemory(port) {
  const sum = (filter, field) => {
    const out = execFileSync('ss', ['-tmnH', 'state', 'established', filter], { encoding: 'utf8', maxBuffer: 64 << 20 });
    let total = 0;
    for (const m of out.matchAll(new RegExp(`[(,]${field}(\\d+)`, 'g'))) total += Number(m[1]);
    return total;
  };
  // w: sk_wmem_queued (Holdfast's send queue); r: rmem_alloc (what the client side holds unread).
  return { holdfastSend: sum(`( sport = :${port} )`, 'w'), clientsRecv: sum(`( dport = :${port} )`, 'r') };
}

async function metric(controlPort, name, labels) {
  const text = await (await fetch(`http://127.0.0.1:${controlPort}/metrics`)).text();
  const want = labels ? `${name}{${labels}}` : name;
  const line = text.split('\n').find((l) => l.startsWith(`${want} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

function connectClient(port, onData) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('GET /events HTTP/1.1\r\nHost: bench\r\n\r\n');
      resolve(socket);
    });
    socket.once('error', reject);
    if (onData === null) socket.pause(); // never reads: the kernel's buffers fill, then Holdfast's queue
    else socket.on('data', onData);
  });
}

const mb = (bytes) => (bytes / 1048576).toFixed(1);

async function main() {
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const [backendPort, port, controlPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const backend = await startGripBackend(backendPort);
  const configFile = join(runDir, 'holdfast.json');
  writeFileSync(configFile, JSON.stringify({ timeouts: { sendStallMs: stallMs }, limits: { maxConnectionsPerClient: clients + 100 } }));
  const holdfast = startHoldfast({
    dir: runDir, port, controlPort, backendPort, cpu: Number(opts.cpu), mainJs, extraArgs: ['--config', configFile],
  });
  await waitUntilReady(holdfast, `http://127.0.0.1:${controlPort}/healthz`);

  const sample = (label) => {
    const sockets = socketMemory(port);
    return { label, rssKiB: treeRssKiB(holdfast.pid), tcpMem: tcpMemBytes(), ...sockets };
  };
  const before = sample('before (Holdfast idle)');

  let readerBytes = 0;
  const reader = await connectClient(port, (chunk) => (readerBytes += chunk.length));
  const stalled = [];
  for (let i = 0; i < clients; i++) stalled.push(await connectClient(port, null));
  for (;;) {
    if ((await metric(controlPort, 'holdfast_held_connections', 'transport="sse"')) >= clients + 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const held = sample(`${clients + 1} held, nothing published`);

  const item = (bytes) => `data: ${'x'.repeat(bytes - 8)}\n\n`;
  const publishBody = (content) => JSON.stringify({ items: [{ channel: 'slow', formats: { 'http-stream': { content } } }] });
  const fill = publishBody(item(itemBytes));
  const trickle = publishBody(item(1024));
  const framed = (bytes) => bytes + `${bytes.toString(16)}\r\n\r\n`.length;
  let expectedReaderBytes = 0;
  const started = Date.now();
  let trickleStarted = null;
  let published = 0;
  let fillItems = fillItemsMax;
  let lastSend = 0;
  let flat = 0;
  let peak = held;
  let droppedAt = null;
  const timeline = [];
  let nextSampleMs = started;
  while (trickleStarted === null || Date.now() - trickleStarted < trickleS * 1000) {
    if (trickleStarted === null && published > 0) {
      const send = socketMemory(port).holdfastSend;
      flat = send <= lastSend * 1.01 ? flat + 1 : 0;
      lastSend = send;
      if (flat >= 2 || published >= fillItemsMax) fillItems = published;
    }
    const filling = published < fillItems;
    if (!filling) trickleStarted ??= Date.now();
    const body = filling ? fill : trickle;
    const res = await fetch(`http://127.0.0.1:${controlPort}/publish/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await res.text();
    published++;
    expectedReaderBytes += framed(filling ? itemBytes : 1024);
    if (Date.now() >= nextSampleMs) {
      nextSampleMs += 2_000;
      const s = sample(`t+${((Date.now() - started) / 1000).toFixed(0)} s`);
      const drops = await metric(controlPort, 'holdfast_drops_total', 'reason="drain_timeout"');
      const slow = await metric(controlPort, 'holdfast_drops_total', 'reason="slow_consumer"');
      const heldNow = await metric(controlPort, 'holdfast_held_connections', 'transport="sse"');
      timeline.push({ ...s, drops, slow, heldNow, published });
      if (s.tcpMem > peak.tcpMem) peak = { ...s, label: `peak (${s.label})` };
      if (droppedAt === null && drops >= clients) droppedAt = (Date.now() - started) / 1000;
    }
    await new Promise((r) => setTimeout(r, filling ? intervalMs : 1_000));
  }
  await new Promise((r) => setTimeout(r, 3_000));
  const after = sample('after (publishing stopped 3 s)');
  const drops = await metric(controlPort, 'holdfast_drops_total', 'reason="drain_timeout"');
  const slowDrops = await metric(controlPort, 'holdfast_drops_total', 'reason="slow_consumer"');
  const heldAfter = await metric(controlPort, 'holdfast_held_connections', 'transport="sse"');
  // A reset client socket keeps what it received unread until it is closed: the attacker's memory, which
  // sockstat counts too on loopback.
  for (const socket of stalled) socket.destroy();
  await new Promise((r) => setTimeout(r, 1_000));
  const closed = sample('after the clients closed their sockets');

  const rows = [before, held, peak, after, closed].map((s) => [
    s.label, `${mb(s.rssKiB * 1024)} MB`, `${mb(s.tcpMem)} MB`, `${mb(s.holdfastSend)} MB`, `${mb(s.clientsRecv)} MB`,
  ]);
  const lines = [
    `### Clients that never read: ${clients} SSE clients, ${fillItems} items of ${opts['item-kb']} KB every ${intervalMs} ms (until the kernel took no more), ` +
      `then 1 KB a second for ${trickleS} s; timeouts.sendStallMs ${stallMs}`,
    '',
    `\`node faults/never-reading.mjs --clients ${clients} --item-kb ${opts['item-kb']} --stall-ms ${stallMs} --interval-ms ${intervalMs} --trickle-s ${trickleS}\``,
    '',
    `Kernel: net.ipv4.tcp_wmem maximum ${mb(wmemMax)} MB per socket. On loopback sockstat counts both ends; the clients' ` +
      'receive queues are the attacker\'s memory on a real network.',
    '',
    markdownTable(['when', 'Holdfast RSS', 'kernel TCP memory (sockstat, both ends)', 'Holdfast send queues (ss w)', 'clients\' receive queues (ss r)'], rows),
    '',
    `- published ${published} items; the reading client got ${readerBytes} of ${expectedReaderBytes} body bytes expected ` +
      `(${readerBytes >= expectedReaderBytes ? 'all' : 'NOT all'}; the head and framing make up the rest of its count)`,
    `- dropped by the send deadline (holdfast_drops_total{reason="drain_timeout"}): ${drops}; as slow consumers (queue bound): ${slowDrops}; ` +
      `held after: ${heldAfter}` + (droppedAt === null ? '' : `; all ${clients} cut by t+${droppedAt.toFixed(0)} s`) +
      (trickleStarted === null ? '' : `; the trickle began at t+${((trickleStarted - started) / 1000).toFixed(0)} s`),
    '',
    markdownTable(
      ['t', 'published', 'held', 'drain_timeout drops', 'slow_consumer drops', 'Holdfast RSS', 'kernel TCP memory'],
      timeline.filter((_, i) => i % 3 === 0 || i === timeline.length - 1).map((s) => [
        s.label, s.published, s.heldNow, s.drops, s.slow, `${mb(s.rssKiB * 1024)} MB`, `${mb(s.tcpMem)} MB`,
      ]),
    ),
    '',
  ];
  console.log(lines.join('\n'));
  reader.destroy();
  backend.close();
  await stopAll();
}

process.on('SIGINT', () => {
  stopAllSync();
  process.exit(130);
});
main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
