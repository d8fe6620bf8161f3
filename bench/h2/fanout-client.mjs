// One subscriber process of the HTTP/2 fan-out bench (h2/fanout.mjs): holds `connections` HTTP/2 connections
// (node:http2 connect(), TLS unless the URL is http:), each with `streams` SSE streams `GET <path>`, and records
// when each published message arrived on each stream. Driven over IPC like bench/fanout/client.mjs, with the
// same wire contract: every message carries a line `data: <seq> <t0>`, t0 being the publisher's
// CLOCK_MONOTONIC in microseconds; seq 0 is a warm-up message, 1..M are measured.
//
// Unlike bench/fanout/client.mjs (raw sockets, a few integers per connection), each stream here is a
// node:http2 ClientHttp2Stream with a 'data' listener: the per-event cost of Node's HTTP/2 client is part of
// the measured latency. The probe process (few streams, normal priority) shows how much.
import http2 from 'node:http2';

const MAX_ATTEMPTS = 5;
const RETRY_MS = 1000;

let cfg; // { url, path, connections, streams, messages, window, localAddress? }
let total = 0; // streams
let closing = false;
const sessions = [];
let inFlight = 0; // connections opening (not every stream answered yet)
let opened = 0;
let heads = 0;
let badStatus = 0;
let retried = 0;
let errors = 0;
let closed = 0; // streams that ended or failed after their head
let firstError = null;
let warmCount = 0;
let warmTotal = 0;
let receivedTotal = 0;
let complete = 0;
let dups = 0;
let lat; // Float64Array(total * messages), NaN = not received
let warm;
let count;
let attempts;

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

function onMessage(i, seq, t0, now) {
  if (seq === 0) {
    warmTotal++;
    if (!warm[i]) {
      warm[i] = 1;
      warmCount++;
    }
    return;
  }
  if (seq > cfg.messages) return;
  const k = i * cfg.messages + seq - 1;
  if (!Number.isNaN(lat[k])) {
    dups++;
    return;
  }
  lat[k] = now - t0;
  receivedTotal++;
  if (++count[i] === cfg.messages) complete++;
}

/** A line parser per stream: `data: <seq> <t0>` lines, anything else (ids, comments, blank lines) skipped. */
function lineParser(i) {
  let rest = '';
  return (chunk) => {
    const now = nowUs();
    const text = rest + chunk.toString('latin1');
    const lines = text.split('\n');
    rest = lines.pop();
    for (const line of lines) {
      if (!line.startsWith('data: ')) continue;
      const space = line.indexOf(' ', 6);
      if (space < 0) continue;
      onMessage(i, Number(line.slice(6, space)), Number(line.slice(space + 1)), now);
    }
  };
}

/** Connection c carries streams c*streams .. c*streams+streams-1. */
function openConnection(c) {
  inFlight++;
  let pending = cfg.streams;
  let failed = false;
  const session = http2.connect(cfg.url, {
    rejectUnauthorized: false,
    ...(cfg.localAddress === undefined ? {} : { localAddress: cfg.localAddress }),
  });
  sessions[c] = session;
  const headDone = () => {
    if (--pending === 0) {
      inFlight--;
      pump();
    }
  };
  const fail = (why) => {
    if (failed) return;
    failed = true;
    if (firstError === null) firstError = why;
    session.destroy();
    if (pending === 0 || closing) return;
    // Some streams of this connection never got a head: open the whole connection again, as a browser would.
    inFlight--;
    heads -= cfg.streams - pending;
    if (++attempts[c] < MAX_ATTEMPTS) {
      retried++;
      setTimeout(() => {
        if (!closing) openConnection(c);
      }, RETRY_MS);
    } else errors++;
    pump();
  };
  session.on('error', (err) => fail(`${err.code ?? ''} ${err.message}`));
  session.on('goaway', (code) => fail(`GOAWAY ${code}`));
  for (let s = 0; s < cfg.streams; s++) {
    const i = c * cfg.streams + s;
    const req = session.request({ ':path': cfg.path, accept: 'text/event-stream', 'cache-control': 'no-cache' });
    let gotHead = false;
    req.on('response', (headers) => {
      if (headers[':status'] !== 200) {
        badStatus++;
        fail(`status ${headers[':status']}`);
        return;
      }
      gotHead = true;
      heads++;
      headDone();
    });
    req.on('data', lineParser(i));
    req.on('error', (err) => {
      if (!gotHead) fail(`stream ${err.code ?? ''} ${err.message}`);
    });
    req.on('close', () => {
      if (gotHead && !closing) closed++;
    });
  }
}

function pump() {
  while (inFlight < cfg.window && opened < cfg.connections) openConnection(opened++);
}

function status() {
  return { heads, badStatus, errors, retried, closed, warm: warmCount, warmTotal, complete, receivedTotal, firstError, opened };
}

process.on('message', (msg) => {
  switch (msg.cmd) {
    case 'connect':
      cfg = msg;
      total = cfg.connections * cfg.streams;
      lat = new Float64Array(total * cfg.messages).fill(NaN);
      warm = new Uint8Array(total);
      count = new Uint32Array(total);
      attempts = new Uint8Array(cfg.connections);
      pump();
      process.send({ id: msg.id, ok: true });
      break;
    case 'status':
      process.send({ id: msg.id, ...status() });
      break;
    case 'report':
      process.send({ id: msg.id, ...status(), dups, lat: Array.from(lat) });
      break;
    case 'close':
      closing = true;
      for (const s of sessions) s?.destroy();
      process.send({ id: msg.id, ok: true });
      setImmediate(() => process.exit(0));
      break;
  }
});
