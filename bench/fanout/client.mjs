// One subscriber process of the fan-out bench: holds many SSE connections on raw `net` sockets and
// records, per connection, when each published message arrived. Driven by run.mjs over IPC.
//
// Why raw sockets: a full EventSource per connection costs 10-17 us of client CPU per event, which at 15k
// subscribers on a 2-core machine is 150-250 ms per message of client-side delay. Here each socket reads
// into one shared buffer (`onread`, no stream machinery, no allocation per read) and a byte-level state
// machine keeps a few integers per connection in typed arrays.
//
// Wire contract (the same for every peer): each message carries a line `data: <seq> <t0>` where t0 is the
// publisher's CLOCK_MONOTONIC in microseconds (process.hrtime, shared by all processes on the host).
// seq 0 is a warm-up message (proves the subscription is live), 1..M are measured. Anything else in the
// stream (chunk sizes, `id:` lines, heartbeats, nchan's comments) is skipped by the matcher.
//
// WebSocket (`transport: 'ws'`): the request is an RFC 6455 upgrade with a random Sec-WebSocket-Key, the
// head must be `101`, then server frames (unmasked) are parsed byte by byte: header byte 0 (FIN, opcode),
// byte 1 (length < 126, or 126 + 2 bytes, or 127 + 8 bytes), payload. A text frame's payload is
// `<seq> <t0>` (published as a `ws-message`). Pings are answered with a masked pong (zero mask key) so the
// server's liveness check keeps the socket; a close frame is counted as closed. The Sec-WebSocket-Accept
// value is not verified (the bench measures fan-out, not handshake correctness).
import { randomBytes } from 'node:crypto';
import net from 'node:net';

const HEAD_END = [13, 10, 13, 10]; // \r\n\r\n
const DATA = [100, 97, 116, 97, 58, 32]; // "data: "

let host = '127.0.0.1';
let port = 0;
let path = '/';
let total = 0; // connections this process should hold
let messages = 0; // measured messages expected per connection (latency mode)
let mode = 'latency'; // or 'throughput': only counts and order per connection
let window = 128; // connections in flight (connecting or waiting for the head) at once
let limit = 0; // connections allowed so far (the probe process is raised gradually)
let transport = 'sse'; // or 'ws'
let localAddress; // source address of every socket (127.0.0.2, ...: past the ephemeral ports of one address)
// With a source address, the source port is chosen here too (10000, 10001, ... per attempt): a bind() to
// port 0 makes the kernel search for a free port, which slowed connects to about 200/s per process past
// ~10k sockets on one address (bench/scale/README.md); an explicit port is one hash lookup.
const LOCAL_PORT_FIRST = 10000;
const LOCAL_PORT_SPAN = 55000;
let localPortNext = 0;

let sockets = [];
let closing = false;
let opened = 0; // connections started
let inFlight = 0;
let heads = 0;
let badStatus = 0;
let closed = 0; // closed by the server or by error after the head
let errors = 0; // gave up: failed before the head MAX_ATTEMPTS times
let retried = 0; // attempts that failed before the head (connect error, close, non-200) and were retried
// Like an EventSource, a subscriber whose request fails (error, non-200) reconnects after a second.
const MAX_ATTEMPTS = 5;
const RETRY_MS = 1000;
let lastHeadUs = 0;
let firstError = null;

// Per-connection parser state.
let attempts;
let headMatch, dataMatch, field, seqAcc, t0Acc, gotHead, warm, count, lastSeq, outOfOrder;
let lat; // latency mode: Float64Array(total * messages), NaN = not received
let dups = 0;
let receivedTotal = 0;
let warmCount = 0;
let warmTotal = 0; // warm-up messages received, repeats included
let complete = 0; // connections that have every expected message
let completeAtUs = 0;
let tpTotal = 0; // throughput mode: messages expected per connection
// WebSocket frame parser state per connection: 0 = header byte 0, 1 = byte 1, 2 = extended length bytes
// (wsExt of them left), 3 = payload (wsRem bytes left).
let wsState, wsOp, wsExt, wsRem;
let pings = 0;
let pingPayload = new Map(); // connection -> bytes of a ping being read (rare)

const readBuf = Buffer.allocUnsafe(64 * 1024);

function nowUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

function alloc() {
  attempts = new Uint8Array(total);
  headMatch = new Uint8Array(total);
  dataMatch = new Uint8Array(total);
  field = new Uint8Array(total); // 0 = matching "data: ", 1 = seq digits, 2 = t0 digits
  seqAcc = new Float64Array(total);
  t0Acc = new Float64Array(total);
  gotHead = new Uint8Array(total);
  warm = new Uint8Array(total);
  count = new Uint32Array(total);
  lastSeq = new Float64Array(total);
  outOfOrder = new Uint32Array(total);
  lat = mode === 'latency' ? new Float64Array(total * messages).fill(NaN) : null;
  wsState = new Uint8Array(total);
  wsOp = new Uint8Array(total);
  wsExt = new Uint8Array(total);
  wsRem = new Float64Array(total);
}

function onMessage(i, seq, t0, now) {
  if (seq === 0) {
    warmTotal++;
    if (!warm[i]) {
      warm[i] = 1;
      warmCount++;
    }
    return;
  }
  if (mode === 'latency') {
    if (seq > messages) return;
    const k = i * messages + seq - 1;
    if (Number.isNaN(lat[k])) {
      lat[k] = now - t0;
      receivedTotal++;
      if (++count[i] === messages) markComplete(now);
    } else dups++;
    return;
  }
  if (seq !== lastSeq[i] + 1) outOfOrder[i]++;
  lastSeq[i] = seq;
  receivedTotal++;
  if (++count[i] === tpTotal) markComplete(now);
}

function markComplete(now) {
  if (++complete === total) completeAtUs = now;
}

function parse(i, buf, n) {
  let p = 0;
  const now = nowUs();
  if (!gotHead[i]) {
    // Status line first: "HTTP/1.1 200 ..." (SSE) or "HTTP/1.1 101 ..." (WebSocket).
    const okStatus = transport === 'ws' ? buf[9] === 49 && buf[10] === 48 && buf[11] === 49 : buf[9] === 50 && buf[10] === 48 && buf[11] === 48;
    if (headMatch[i] === 0 && n >= 12 && !okStatus) {
      badStatus++;
      if (firstError === null) firstError = `status ${buf.toString('latin1', 0, Math.min(n, 200)).split('\r\n')[0]}`;
      sockets[i].destroy(); // retried from the close handler
      return;
      return;
    }
    let m = headMatch[i];
    while (p < n) {
      const b = buf[p++];
      if (b === HEAD_END[m]) {
        if (++m === 4) break;
      } else m = b === 13 ? 1 : 0;
    }
    headMatch[i] = m;
    if (m < 4) return;
    gotHead[i] = 1;
    heads++;
    inFlight--;
    lastHeadUs = now;
    pump();
  }
  if (transport === 'ws') {
    parseWs(i, buf, p, n, now);
    return;
  }
  let f = field[i];
  let d = dataMatch[i];
  let seq = seqAcc[i];
  let t0 = t0Acc[i];
  while (p < n) {
    const b = buf[p++];
    if (f === 0) {
      if (b === DATA[d]) {
        if (++d === 6) {
          f = 1;
          seq = 0;
          d = 0;
        }
      } else d = b === 100 ? 1 : 0;
    } else if (b >= 48 && b <= 57) {
      if (f === 1) seq = seq * 10 + (b - 48);
      else t0 = t0 * 10 + (b - 48);
    } else if (f === 1 && b === 32) {
      f = 2;
      t0 = 0;
    } else {
      if (f === 2) onMessage(i, seq, t0, now);
      f = 0;
      d = b === 100 ? 1 : 0;
    }
  }
  field[i] = f;
  dataMatch[i] = d;
  seqAcc[i] = seq;
  t0Acc[i] = t0;
}

/** Server frames after the 101; see the header comment. */
function parseWs(i, buf, p, n, now) {
  let st = wsState[i];
  let op = wsOp[i];
  let ext = wsExt[i];
  let rem = wsRem[i];
  let f = field[i];
  let seq = seqAcc[i];
  let t0 = t0Acc[i];
  while (p < n) {
    if (st === 0) {
      op = buf[p++] & 0x0f;
      st = 1;
      f = 1;
      seq = 0;
      t0 = 0;
      continue;
    }
    if (st === 1) {
      const b = buf[p++] & 0x7f;
      if (b < 126) {
        rem = b;
        st = 3;
      } else {
        ext = b === 126 ? 2 : 8;
        rem = 0;
        st = 2;
        continue;
      }
    } else if (st === 2) {
      rem = rem * 256 + buf[p++];
      if (--ext > 0) continue;
      st = 3;
    } else {
      const end = Math.min(n, p + rem);
      rem -= end - p;
      if (op === 1) {
        for (; p < end; p++) {
          const b = buf[p];
          if (b >= 48 && b <= 57) {
            if (f === 1) seq = seq * 10 + (b - 48);
            else t0 = t0 * 10 + (b - 48);
          } else if (b === 32 && f === 1) f = 2;
        }
      } else if (op === 9) {
        const got = pingPayload.get(i) ?? [];
        for (; p < end; p++) got.push(buf[p]);
        pingPayload.set(i, got);
      } else p = end;
    }
    if (st === 3 && rem === 0) {
      // End of a frame (also a zero-length one).
      if (op === 1 && f === 2) onMessage(i, seq, t0, now);
      else if (op === 9) {
        const payload = pingPayload.get(i) ?? [];
        pingPayload.delete(i);
        pings++;
        // Client frames must be masked: FIN + pong, mask bit + length, a zero mask key, the payload as is.
        sockets[i].write(Buffer.from([0x8a, 0x80 | payload.length, 0, 0, 0, 0, ...payload]));
      } else if (op === 8) {
        sockets[i].destroy();
      }
      st = 0;
    }
  }
  wsState[i] = st;
  wsOp[i] = op;
  wsExt[i] = ext;
  wsRem[i] = rem;
  field[i] = f;
  seqAcc[i] = seq;
  t0Acc[i] = t0;
}

function openOne(i) {
  inFlight++;
  const request =
    transport === 'ws'
      ? `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      : `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n`;
  const sock = net.connect({
    host,
    port,
    ...(localAddress === undefined ? {} : { localAddress, localPort: LOCAL_PORT_FIRST + (localPortNext++ % LOCAL_PORT_SPAN) }),
    noDelay: true,
    onread: { buffer: readBuf, callback: (n, buf) => parse(i, buf, n) },
  });
  sockets[i] = sock;
  sock.once('connect', () => sock.write(request));
  sock.on('error', (err) => {
    if (firstError === null) firstError = `${err.code ?? ''} ${err.message}`;
  });
  sock.once('close', () => {
    if (gotHead[i] === 1) {
      closed++;
      return;
    }
    inFlight--;
    if (closing) return;
    if (++attempts[i] < MAX_ATTEMPTS) {
      retried++;
      headMatch[i] = 0;
      setTimeout(() => {
        if (!closing) openOne(i);
      }, RETRY_MS);
    } else errors++;
    pump();
  });
}

function pump() {
  while (inFlight < window && opened < limit) openOne(opened++);
}

function status() {
  return { heads, badStatus, errors, retried, closed, warm: warmCount, warmTotal, complete, receivedTotal, lastHeadUs, completeAtUs, firstError, opened, pings };
}

function report() {
  let received = 0;
  let missingConns = 0;
  let ooo = 0;
  for (let i = 0; i < total; i++) {
    received += count[i];
    if (gotHead[i] === 1 && count[i] < (mode === 'latency' ? messages : tpTotal)) missingConns++;
    ooo += outOfOrder[i];
  }
  return {
    ...status(),
    received,
    missingConns,
    dups,
    outOfOrder: ooo,
    // Latencies in microseconds; NaN (missing) becomes null in JSON and is counted as lost by the runner.
    lat: lat === null ? null : Array.from(lat),
  };
}

process.on('message', (msg) => {
  switch (msg.cmd) {
    case 'connect':
      ({ host, port, path, total, messages, mode, window } = msg);
      transport = msg.transport ?? 'sse';
      localAddress = msg.localAddress;
      tpTotal = msg.tpTotal ?? 0;
      limit = msg.gradual ? 0 : total;
      alloc();
      pump();
      process.send({ id: msg.id, ok: true });
      break;
    case 'grow':
      // The probe process opens its sockets gradually, interleaved with the bulk ones (see run.mjs).
      limit = Math.min(total, Math.max(limit, msg.upTo));
      pump();
      process.send({ id: msg.id, ok: true });
      break;
    case 'status':
      process.send({ id: msg.id, ...status() });
      break;
    case 'report':
      process.send({ id: msg.id, ...report() });
      break;
    case 'close':
      closing = true;
      for (const s of sockets) s?.destroy();
      process.send({ id: msg.id, ok: true });
      setImmediate(() => process.exit(0));
      break;
  }
});
