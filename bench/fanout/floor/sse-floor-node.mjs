// sse-floor.c in plain Node: `node:net` only, no http module, one `socket.write(sharedBuffer)` per
// subscriber. Next to the C floor it shows what Node's socket layer (libuv, the stream machinery, one
// WriteWrap per write) costs on top of the write syscall. Not a server to use; see README.md, "Floor peers".
//
//   node sse-floor-node.mjs PORT
//
// The same wire behaviour as sse-floor.c: `GET` = a subscriber, answered `200`, `text/event-stream`,
// chunked, and kept; `POST` with a Content-Length body = a publish, framed once as one chunk, written to
// every subscriber, then answered `200` with `X-Delivered`. Unlike the C floor there is no drop: Node queues
// in user space what the kernel does not take (no subscriber here falls behind; the queue is counted at exit).
import net from 'node:net';

const HEAD_MAX = 8192;
const BODY_MAX = 1 << 20;
const HEAD_END = Buffer.from('\r\n\r\n');
const SUB_HEAD = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n');

/** Held subscriber sockets; removal by swap with the last one (each socket keeps its index). */
const subs = [];
let publishes = 0;
let written = 0; // socket.write calls for publishes (Node accepts them all; a dead socket is removed on 'close')

function removeSubscriber(socket) {
  const i = socket.subIndex;
  if (i < 0) return;
  const last = subs.pop();
  if (last !== socket) {
    subs[i] = last;
    last.subIndex = i;
  }
  socket.subIndex = -1;
}

function fanOut(body) {
  if (body.length === 0) return 0; // a zero-size chunk would end every stream
  const frame = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`, 'latin1'), body, CRLF]);
  const n = subs.length;
  const wall0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) subs[i].write(frame);
  const wall = Number(process.hrtime.bigint() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  publishes++;
  written += n;
  // The write loop alone (see sse-floor.c); Node writes to the kernel synchronously when the socket's queue is empty.
  if (n > 0) {
    const cpuUs = cpu.user + cpu.system;
    console.error(`sse-floor-node: publish ${publishes}: ${n} writes in ${wall.toFixed(0)} us wall, ${cpuUs} us CPU (${(wall / n).toFixed(2)} / ${(cpuUs / n).toFixed(2)} us per write)`);
  }
  return n;
}

function contentLength(head) {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return m === null ? 0 : Number(m[1]);
}

/** Every complete publish request in the buffer; false when the connection must close. */
function servePublisher(socket) {
  for (;;) {
    if (socket.need === 0) {
      const end = socket.buf.indexOf(HEAD_END);
      if (end < 0) return socket.buf.length < HEAD_MAX;
      const headLength = end + 4;
      const bodyLength = contentLength(socket.buf.toString('latin1', 0, headLength));
      if (bodyLength > BODY_MAX) return false;
      socket.headLength = headLength;
      socket.need = headLength + bodyLength;
    }
    if (socket.buf.length < socket.need) return true;
    const ok = fanOut(socket.buf.subarray(socket.headLength, socket.need));
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Delivered: ${ok}\r\n\r\n`);
    socket.buf = socket.buf.subarray(socket.need);
    socket.need = 0;
  }
}

function socketOnData(chunk) {
  const socket = this;
  if (socket.kind === 'subscriber') return; // whatever a subscriber sends after its head is ignored
  socket.buf = socket.buf.length === 0 ? chunk : Buffer.concat([socket.buf, chunk]);
  if (socket.kind === 'pending') {
    if (socket.buf.length >= 5 && socket.buf.toString('latin1', 0, 5) === 'POST ') socket.kind = 'publisher';
    else if (socket.buf.indexOf(HEAD_END) >= 0) {
      socket.kind = 'subscriber';
      socket.buf = EMPTY;
      socket.subIndex = subs.length;
      subs.push(socket);
      socket.write(SUB_HEAD);
      return;
    } else if (socket.buf.length >= HEAD_MAX) {
      socket.destroy();
      return;
    }
  }
  if (socket.kind === 'publisher' && !servePublisher(socket)) socket.destroy();
}

function socketOnClose() {
  removeSubscriber(this);
}

function socketOnError() {
  // A reset subscriber: 'close' follows and removes it.
}

const EMPTY = Buffer.alloc(0);

function onConnection(socket) {
  socket.kind = 'pending';
  socket.buf = EMPTY;
  socket.need = 0;
  socket.headLength = 0;
  socket.subIndex = -1;
  socket.on('data', socketOnData);
  socket.on('close', socketOnClose);
  socket.on('error', socketOnError);
}

const port = Number(process.argv[2]);
const server = net.createServer({ noDelay: true }, onConnection);
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => console.error(`sse-floor-node: listening on 127.0.0.1:${port}`));

function stop() {
  let queued = 0;
  for (const s of subs) queued += s.writableLength;
  console.error(`sse-floor-node: ${publishes} publishes, ${written} subscriber writes; ${subs.length} subscribers held, ${queued} bytes queued in user space`);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
