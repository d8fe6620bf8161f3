#!/usr/bin/env node
// Differential conformance run: the same raw requests (conformance-cases.mjs) sent to Holdfast, nginx,
// HAProxy and Pushpin, each in front of one recording backend, and for every proxy what the client got beside what the
// backend received. Not a benchmark: no timing is measured. It finds the malformed input where Holdfast
// answers differently from the peers, so each finding can become a row in test/edge/malformed.test.ts.
//
//   node conformance.mjs               the table, recorded in RESULTS.md
//   node conformance.mjs --verbose     also the bytes each backend received, per case
//   node conformance.mjs --only 'Host' cases whose name contains the text
//
// Needs nginx-light, haproxy and pushpin from Debian (`apt-get install -y nginx-light haproxy pushpin`) and
// Holdfast built (`npm run build` at the root).
import http from 'node:http';
import net from 'node:net';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CASES, RESPONSE_CASES } from './conformance-cases.mjs';
import { startPushpin } from './fanout/peers.mjs';
import { startHaproxy, startHoldfast, startNginxProxy } from './lib/peers.mjs';
import { freePort } from './lib/ports.mjs';
import { stopAll, stopAllSync, stopProcess, waitUntilReady } from './lib/processes.mjs';
import { appendResults, markdownTable } from './lib/report.mjs';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const mainJs = process.env.HOLDFAST_MAIN_JS ?? fileURLToPath(new URL('../dist/main.js', import.meta.url));
const runDir = join(benchDir, '.run', 'conformance');
const resultsFile = join(benchDir, 'RESULTS.md');

const { values: opts } = parseArgs({
  options: {
    verbose: { type: 'boolean', default: false },
    only: { type: 'string', default: '' },
    'no-record': { type: 'boolean', default: false },
  },
});

// A client waits this long after the last byte before deciding nothing more comes (a proxy that keeps the
// connection open after a refusal, or one still waiting for a body).
const QUIET_MS = 400;
const CASE_LIMIT_MS = 2_500;
const HOLDFAST_FAIL_TIMEOUT_MS = 100;

/**
 * The backend: Node's HTTP server made as permissive as it goes, so whatever a proxy forwards is seen, plus
 * a tap on every connection's raw bytes, since a forwarded request that even the permissive parser refuses
 * must still count as forwarded.
 */
function startRecordingBackend(port) {
  const seen = { requests: [], bytes: [] };
  const server = http.createServer({ insecureHTTPParser: true, maxHeaderSize: 1 << 20, requireHostHeader: false }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.requests.push({ line: `${req.method} ${req.url} HTTP/${req.httpVersion}`, body: Buffer.concat(chunks).toString('latin1') });
      // `/slow`: the answer comes after the client's FIN has reached the proxy (the half-close rows).
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
        res.end('ok');
      }, req.url?.startsWith('/slow') ? 200 : 0);
    });
  });
  server.maxHeadersCount = 0;
  server.on('connection', (socket) => socket.on('data', (chunk) => seen.bytes.push(chunk)));
  server.on('clientError', (_err, socket) => socket.destroy());
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () =>
      resolve({
        server,
        take() {
          const out = { requests: seen.requests, bytes: Buffer.concat(seen.bytes).toString('latin1') };
          seen.requests = [];
          seen.bytes = [];
          return out;
        },
      }),
    );
  });
}

/**
 * The backend for the response half: answers `/case` with the current case's raw bytes (closing after them
 * when the case says so) and `/next` with a plain 200, reading requests off each connection in order.
 */
function startRawBackend(port) {
  const state = { current: null, connections: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    let buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const line = buffer.subarray(0, buffer.indexOf('\r\n')).toString('latin1');
        buffer = buffer.subarray(end + 4);
        const path = line.split(' ')[1] ?? '';
        const c = state.current;
        if (path.startsWith('/case') && c !== null) {
          socket.write(Buffer.from(c.bytes, 'latin1'));
          if (c.close) return void socket.end();
        } else {
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
        }
      }
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, state })));
}

/** Responses in `text` as a client reads them: status, body length, whether the body is complete; the rest. */
function parseResponses(text, head, closed) {
  const out = [];
  let rest = text;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const lines = rest.slice(0, headEnd).split('\r\n');
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(lines[0])?.[1] ?? 0);
    const fields = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    let body = rest.slice(headEnd + 4);
    const r = { status, fields, head: rest.slice(0, headEnd), bodyLength: 0, complete: true, body: '' };
    out.push(r);
    if (status < 200 || status === 204 || status === 304 || head) {
      rest = body;
      if (status < 200) continue;
      break;
    }
    if ((fields.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) {
      let decoded = '';
      r.complete = false;
      for (;;) {
        const le = body.indexOf('\r\n');
        if (le < 0) break;
        const size = parseInt(body.slice(0, le), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          r.complete = body.indexOf('\r\n\r\n', le) >= 0 || body.slice(le, le + 4) === '\r\n\r\n';
          body = '';
          break;
        }
        if (body.length < le + 2 + size + 2) break;
        decoded += body.slice(le + 2, le + 2 + size);
        body = body.slice(le + 2 + size + 2);
      }
      r.body = decoded;
      rest = body;
    } else if (fields.has('content-length')) {
      const n = Number(fields.get('content-length'));
      r.body = body.slice(0, n);
      r.complete = body.length >= n;
      rest = body.slice(n);
    } else {
      r.body = body;
      r.complete = closed;
      rest = '';
    }
    r.bodyLength = r.body.length;
    break;
  }
  return { responses: out, rest };
}

/** One response case on one proxy: the `/case` exchange, then `/next` on the same connection if it is open. */
async function responseExchange(port, c) {
  const socket = net.connect(port, '127.0.0.1');
  const received = [];
  let closed = false;
  socket.on('data', (d) => received.push(d));
  socket.on('close', () => (closed = true));
  socket.on('error', () => (closed = true));
  await new Promise((resolve) => socket.once('connect', resolve));
  const settle = async () => {
    let seen = -1;
    const deadline = Date.now() + CASE_LIMIT_MS;
    while (!closed && Date.now() < deadline && seen !== received.length) {
      seen = received.length;
      await new Promise((r) => setTimeout(r, QUIET_MS));
    }
  };
  socket.write(`${c.head ? 'HEAD' : 'GET'} /case HTTP/1.${c.http10 ? 0 : 1}\r\nHost: example.test\r\n\r\n`);
  await settle();
  const first = parseResponses(Buffer.concat(received).toString('latin1'), c.head === true, closed);
  received.length = 0;
  let next = 'closed';
  if (!closed) {
    socket.write('GET /next HTTP/1.1\r\nHost: example.test\r\n\r\n');
    await settle();
    const second = parseResponses(Buffer.concat(received).toString('latin1'), false, closed);
    const r = second.responses[0];
    next = r?.status === 200 && r.body === '/next' ? 'ok' : `bad (${r === undefined ? 'nothing' : `${r.status} ${JSON.stringify(r.body.slice(0, 10))}`})`;
  }
  socket.destroy();
  return { first, next };
}

/** The case's hop-by-hop fields (Holdfast's own `Keep-Alive: timeout=N` for its hop is fine; the backend's 5 is not). */
const leaksHopByHop = (fields) => fields.has('x-internal') || fields.has('proxy-connection') || fields.get('keep-alive') === 'timeout=5';

function describeResponse(c, { first, next }) {
  const final = first.responses.at(-1);
  const statuses = first.responses.map((r) => r.status).join(',') || '-';
  const notes = [];
  if (final !== undefined && final.status >= 200) {
    notes.push(`b${final.bodyLength}${final.complete ? '' : '!'}`);
    if (leaksHopByHop(final.fields)) notes.push('hop-by-hop leaked');
    if (/\r\n[ \t]/.test(final.head)) notes.push('fold relayed');
  }
  if (first.rest.length > 0) notes.push(`+${first.rest.length} stray bytes`);
  notes.push(`next ${next}`);
  let kind = 'partial';
  if (final !== undefined && [502, 503, 504].includes(final.status)) kind = '502';
  else if (final !== undefined && final.status >= 200 && final.complete) kind = 'relay';
  return { kind, truncationHidden: c.truncated === true && kind === 'relay', cell: `${statuses} ${notes.join(' ')}` };
}

function flagResponse(c, results) {
  const hf = results.holdfast;
  const flags = [];
  if (hf.truncationHidden) flags.push('truncation hidden');
  if (/leaked|stray|next bad/.test(hf.cell)) flags.push('Holdfast');
  if (c.expect !== 'either' && hf.kind !== c.expect) flags.push(`RFC: ${c.expect}`);
  return flags.join(', ');
}

/** Send `bytes` on a fresh connection; collect everything until the proxy closes or goes quiet. */
function exchange(port, bytes, halfClose = false) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    let closed = false;
    let quiet;
    const finish = () => {
      clearTimeout(quiet);
      clearTimeout(limit);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const limit = setTimeout(finish, CASE_LIMIT_MS);
    const arm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(finish, QUIET_MS);
    };
    socket.on('connect', () => {
      if (halfClose) socket.end(Buffer.from(bytes, 'latin1'));
      else socket.write(Buffer.from(bytes, 'latin1'));
      arm();
    });
    socket.on('data', (c) => {
      chunks.push(c);
      arm();
    });
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('error', () => {
      closed = true;
      finish();
    });
  });
}

/** What the client got, in a few characters: the statuses in order, `-` for none, `x` if it was closed. */
function describe(client, backend) {
  // Anywhere, not only at a line start: a pipelined answer follows the previous body directly.
  const statuses = [...client.text.matchAll(/HTTP\/\d\.\d (\d{3}) /g)].map((m) => m[1]);
  const forwarded = backend.requests.length > 0 || backend.bytes.length > 0 ? backend.requests.length || '?' : 0;
  const got = statuses.length === 0 ? '-' : statuses.join(',');
  return { statuses, forwarded, cell: `${got} fwd ${forwarded}${client.closed ? '' : ' open'}` };
}

function classify(d, c) {
  const refused = d.statuses.some((s) => Number(s) >= 400);
  if (d.forwarded === 0) return refused ? 'refuse' : 'silent';
  // Bytes but no complete request: a streamed body cut short, aborted before the backend could take it as whole.
  if (d.forwarded === '?' && d.statuses.some((s) => s.startsWith('4'))) return 'refuse';
  // A peer that sent on what our permissive backend still could not parse (a method Node does not know) did forward it.
  if (d.forwarded === '?') return 'forward';
  return d.forwarded === (c.requests ?? 1) && d.statuses.every((s) => s === '200') ? 'forward' : 'partial';
}

/** A row is flagged when Holdfast breaks what the RFC asks or, where the RFC leaves a choice, both peers agree against it. */
function flag(c, results) {
  const hf = results.holdfast.kind;
  if (hf === 'silent' || hf === 'partial') return `Holdfast ${hf}`;
  if (c.expect !== 'either' && hf !== c.expect) return `RFC: ${c.expect}`;
  if (c.expect === 'either' && results.nginx.kind === results.haproxy.kind && results.nginx.kind !== hf) return 'peers agree otherwise';
  return '';
}

/** Holdfast, nginx and HAProxy, each in front of the backend on `backendPort`, ready. */
async function startProxies(dir, backendPort) {
  const [hfPort, hfControl, nginxPort, haPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  // Passive health would take the lone backend out for 10 s after the first broken answer, and every later
  // case would get 503 (nginx never marks a lone server down; HAProxy has no passive marking unless asked).
  // The run compares protocol handling, so the down time is the shortest allowed, and cases are spaced past it.
  mkdirSync(join(dir, 'holdfast'), { recursive: true });
  const config = join(dir, 'holdfast', 'holdfast.json');
  writeFileSync(config, JSON.stringify({ upstream: { failTimeoutMs: HOLDFAST_FAIL_TIMEOUT_MS } }));
  const proxies = {
    holdfast: {
      port: hfPort,
      proc: startHoldfast({ dir: join(dir, 'holdfast'), port: hfPort, controlPort: hfControl, backendPort, cpu: 1, mainJs, extraArgs: ['--config', config] }),
    },
    nginx: { port: nginxPort, proc: startNginxProxy({ dir: join(dir, 'nginx'), port: nginxPort, backendPort, cpu: 1 }) },
    haproxy: { port: haPort, proc: startHaproxy({ dir: join(dir, 'haproxy'), port: haPort, backendPort, cpu: 1 }) },
  };
  // Pushpin for reference (what a Pushpin user sees): not part of the flag rule, which reads nginx and HAProxy.
  const pushpin = await startPushpin({ dir: join(dir, 'pushpin'), cpu: 1, backendPort, throttle: true });
  proxies.pushpin = { port: pushpin.port, proc: pushpin.proc, stop: pushpin.stop };
  for (const p of Object.values(proxies)) await waitUntilReady(p.proc, `http://127.0.0.1:${p.port}/ready`, (r) => r.status === 200, 15_000);
  return proxies;
}

async function requestHalf() {
  const backendPort = await freePort();
  const backend = await startRecordingBackend(backendPort);
  const proxies = await startProxies(join(runDir, 'requests'), backendPort);
  backend.take();

  const cases = CASES.filter((c) => c.name.includes(opts.only));
  // Each proxy's first request after start-up may open its pooled backend connection; take that out of the way.
  const rows = [];
  const details = [];
  for (const c of cases) {
    const results = {};
    for (const [name, p] of Object.entries(proxies)) {
      const client = await exchange(p.port, c.bytes, c.halfClose === true);
      await new Promise((r) => setTimeout(r, 50)); // let a forwarded tail reach the backend
      const seen = backend.take();
      const d = describe(client, seen);
      results[name] = { ...d, kind: classify(d, c) };
      if (opts.verbose) details.push(`### ${c.name}: ${name}\n\nclient got:\n\n${fence(client.text)}\nbackend got:\n\n${fence(seen.bytes)}`);
    }
    rows.push([c.name, c.expect, results.holdfast.cell, results.nginx.cell, results.haproxy.cell, results.pushpin.cell, flag(c, results)]);
  }
  const table = markdownTable(['case', 'RFC', 'holdfast', 'nginx', 'haproxy', 'pushpin', 'flag'], rows);
  const flagged = rows.filter((r) => r[6] !== '').length;
  const text = `Requests:\n\n${table}\n\n${flagged} of ${rows.length} rows flagged. A cell is the statuses the client got, how many requests the backend` +
    ' received (`?` when it got bytes but no complete request), and `open` when the proxy kept the connection after answering.';
  if (opts.verbose) process.stdout.write(`\n${details.join('\n')}\n`);
  for (const p of Object.values(proxies)) await (p.stop?.() ?? stopProcess(p.proc));
  backend.server.close();
  backend.server.closeAllConnections();
  return text;
}

async function responseHalf() {
  const backendPort = await freePort();
  const backend = await startRawBackend(backendPort);
  const proxies = await startProxies(join(runDir, 'responses'), backendPort);
  const rows = [];
  for (const c of RESPONSE_CASES.filter((x) => x.name.includes(opts.only))) {
    backend.state.current = c;
    const results = {};
    for (const [name, p] of Object.entries(proxies)) {
      await new Promise((r) => setTimeout(r, HOLDFAST_FAIL_TIMEOUT_MS + 20));
      const outcome = await responseExchange(p.port, c);
      results[name] = describeResponse(c, outcome);
      if (opts.verbose) {
        const text = outcome.first.responses.map((r) => `${r.head}\n\n${r.body}`).join('\n---\n');
        process.stdout.write(`\n### ${c.name}: ${name}\n\n${fence(text)}`);
      }
    }
    rows.push([c.name, c.expect, results.holdfast.cell, results.nginx.cell, results.haproxy.cell, results.pushpin.cell, flagResponse(c, results)]);
  }
  backend.state.current = null;
  for (const p of Object.values(proxies)) await (p.stop?.() ?? stopProcess(p.proc));
  backend.server.close();
  const table = markdownTable(['backend answer', 'RFC', 'holdfast', 'nginx', 'haproxy', 'pushpin', 'flag'], rows);
  const flagged = rows.filter((r) => r[6] !== '').length;
  return `Backend answers:\n\n${table}\n\n${flagged} of ${rows.length} rows flagged. A cell is the statuses the client got, the final` +
    ' body length (`!` when the client could tell it was incomplete), and whether a second request on the same' +
    ' client connection then got its own answer (`next ok`), a wrong one, or found the connection closed.';
}

async function main() {
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const text = `${await requestHalf()}\n\n${await responseHalf()}`;
  process.stdout.write(`\n${text}\n`);
  if (!opts['no-record'] && opts.only === '') {
    const command = ['node', 'conformance.mjs', ...process.argv.slice(2)].join(' ');
    appendResults(resultsFile, `## ${new Date().toISOString().slice(0, 10)}: conformance against nginx and HAProxy\n\nCommand: \`cd bench && ${command}\`\n\n${text}\n`);
  }
}

function fence(text) {
  return `\`\`\`\n${JSON.stringify(text).slice(1, -1).replaceAll('\\r\\n', '\\r\\n\n')}\n\`\`\`\n`;
}

process.on('exit', stopAllSync);
try {
  await main();
} finally {
  await stopAll();
}
