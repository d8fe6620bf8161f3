// The floor for a Node HTTP/1.1 reverse proxy on this machine: `node:net` only (no http module, no undici, no
// dependencies), doing the least a keep-alive proxy must do per request, so that http-proxy-bench.mjs can show
// how much of a Node proxy's CPU per request is the runtime and the kernel, and how much is the proxy's own
// code. Not a proxy to use; see README.md, "node-floor".
//
//   node node-floor-proxy.mjs <listenPort> <backendPort>
//
// Good only for this benchmark's traffic (wrk and Node's http.get against nginx serving static files), and
// it says so by closing the connection on anything else. No RFC 9112 checks: no request-line or field
// syntax validation, no obs-fold, no duplicate or conflicting Content-Length handling, no existing Via or
// X-Forwarded-For to append to, no chunked bodies, no timeouts.
//
// Client side: a request is the bytes up to CRLFCRLF; only `GET ... HTTP/1.1` without a body is accepted.
// One request at a time per client connection (wrk -t1 does not pipeline; a pipelined request waits in the
// buffer until the response before it is done). `Connection` is removed (hop-by-hop, RFC 9110 §7.6.1) and
// remembered: `close` ends the client connection after its response.
// Upstream side: a shared LIFO free-list of persistent connections to the backend, opened when none is idle
// (so at most one per client connection with a request in flight). The rewritten head goes out with one
// write(). The response head is parsed for the status line, Content-Length (nginx always sends one for a
// static file) and `Connection: close`, and the response is passed through byte for byte: when it arrives in
// one read, as it does on loopback, it reaches the client with one write() of the buffer that was read.
import net from 'node:net';

const HEAD_MAX = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const BODY_FIELD = /\r\n(?:content-length|transfer-encoding)[ \t]*:/i;
const CONNECTION_FIELD = /\r\nconnection[ \t]*:([^\r]*)/i;
const CONTENT_LENGTH = /\r\ncontent-length[ \t]*:[ \t]*(\d+)/i;
const CONNECTION_CLOSE = /\r\nconnection[ \t]*:[ \t]*close/i;

const [listenText, backendText] = process.argv.slice(2);
if (listenText === undefined || backendText === undefined) {
  process.stderr.write('usage: node node-floor-proxy.mjs <listenPort> <backendPort>\n');
  process.exit(2);
}
const backendPort = Number(backendText);

/** Idle upstream connections, last released first (the warmest socket). */
const idle = [];
let requests = 0;
let upstreamsOpened = 0;

function connectUpstream() {
  const upstream = net.connect({ host: '127.0.0.1', port: backendPort, noDelay: true });
  upstreamsOpened++;
  upstream.client = null;
  upstream.buf = EMPTY;
  upstream.remaining = -1; // bytes of the response still to forward; -1 while its head is incomplete
  upstream.reusable = true;
  upstream.on('data', upstreamOnData);
  upstream.on('close', upstreamOnClose);
  upstream.on('error', upstreamOnError);
  return upstream;
}

/** Parse and forward every complete request in the client's buffer, one exchange at a time. */
function clientNextRequest(client) {
  const buf = client.buf;
  const end = buf.indexOf(HEAD_END);
  if (end < 0) {
    if (buf.length > HEAD_MAX) client.destroy();
    return;
  }
  let head = buf.toString('latin1', 0, end);
  client.buf = end + 4 === buf.length ? EMPTY : buf.subarray(end + 4);
  const lineEnd = head.indexOf('\r\n');
  if (!head.startsWith('GET ') || !head.startsWith(' HTTP/1.1', (lineEnd < 0 ? head.length : lineEnd) - 9) || BODY_FIELD.test(head)) {
    client.destroy();
    return;
  }
  const connection = CONNECTION_FIELD.exec(head);
  if (connection !== null) {
    client.closeAfter = /close/i.test(connection[1]);
    head = head.slice(0, connection.index) + head.slice(connection.index + connection[0].length);
  }
  requests++;
  const upstream = idle.pop() ?? connectUpstream();
  upstream.client = client;
  client.upstream = upstream;
  upstream.write(`${head}\r\nX-Forwarded-For: ${client.forwardedFor}\r\nVia: 1.1 node-floor\r\n\r\n`, 'latin1');
}

function socketOnData(chunk) {
  const client = this;
  if (client.closeAfter && client.upstream === null) return; // answered its last request, ending
  client.buf = client.buf.length === 0 ? chunk : Buffer.concat([client.buf, chunk]);
  if (client.upstream === null) clientNextRequest(client);
  else if (client.buf.length > HEAD_MAX) client.destroy();
}

function socketOnDrain() {
  const upstream = this.upstream;
  if (upstream !== null && upstream.isPaused()) upstream.resume();
}

function socketOnClose() {
  const upstream = this.upstream;
  if (upstream === null) return;
  // Mid-response: the rest of it would arrive on a pooled connection, so that connection cannot be reused.
  this.upstream = null;
  upstream.client = null;
  upstream.destroy();
}

function socketOnError() {
  // A reset client: 'close' follows.
}

function badGateway(client, reason) {
  client.upstream = null;
  client.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: ${reason.length + 1}\r\nConnection: close\r\n\r\n${reason}\n`, 'latin1');
}

/** The upstream broke the exchange: a 502 when nothing was forwarded yet, else the client connection ends. */
function upstreamFailed(upstream, reason) {
  const client = upstream.client;
  upstream.client = null;
  upstream.destroy();
  if (client === null) return;
  if (upstream.remaining < 0) badGateway(client, `node-floor: backend 127.0.0.1:${backendPort}: ${reason}`);
  else {
    client.upstream = null;
    client.destroy();
  }
}

function upstreamOnData(chunk) {
  const upstream = this;
  if (upstream.client === null) {
    upstreamFailed(upstream, 'bytes on an idle connection');
    return;
  }
  if (upstream.remaining < 0) {
    const buf = upstream.buf.length === 0 ? chunk : Buffer.concat([upstream.buf, chunk]);
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      if (buf.length > HEAD_MAX) upstreamFailed(upstream, 'response head too large');
      else upstream.buf = buf;
      return;
    }
    const head = buf.toString('latin1', 0, end);
    const length = CONTENT_LENGTH.exec(head);
    if (!head.startsWith('HTTP/1.1 ') || length === null) {
      upstreamFailed(upstream, 'response without Content-Length');
      return;
    }
    if (CONNECTION_CLOSE.test(head)) upstream.reusable = false;
    upstream.remaining = end + 4 + Number(length[1]);
    upstream.buf = EMPTY;
    chunk = buf;
  }
  if (chunk.length > upstream.remaining) {
    upstreamFailed(upstream, 'more bytes than Content-Length');
    return;
  }
  upstream.remaining -= chunk.length;
  const client = upstream.client;
  if (!client.write(chunk)) upstream.pause();
  if (upstream.remaining === 0) finishExchange(client, upstream);
}

function finishExchange(client, upstream) {
  upstream.client = null;
  upstream.remaining = -1;
  client.upstream = null;
  if (upstream.reusable) {
    if (upstream.isPaused()) upstream.resume();
    idle.push(upstream);
  } else upstream.destroy();
  if (client.closeAfter) client.end();
  else if (client.buf.length > 0) clientNextRequest(client);
}

function upstreamOnClose() {
  const upstream = this;
  if (upstream.client !== null) {
    upstreamFailed(upstream, 'connection closed');
    return;
  }
  const i = idle.indexOf(upstream);
  if (i >= 0) idle.splice(i, 1);
}

function upstreamOnError(err) {
  const upstream = this;
  if (upstream.client !== null) upstreamFailed(upstream, err.code ?? err.message);
}

function onConnection(client) {
  client.buf = EMPTY;
  client.upstream = null;
  client.closeAfter = false;
  client.forwardedFor = client.remoteAddress;
  client.on('data', socketOnData);
  client.on('drain', socketOnDrain);
  client.on('close', socketOnClose);
  client.on('error', socketOnError);
}

const server = net.createServer({ noDelay: true }, onConnection);
server.listen({ host: '127.0.0.1', port: Number(listenText), backlog: 4096 }, () => {
  process.stderr.write(`node-floor: listening on 127.0.0.1:${listenText}, backend 127.0.0.1:${backendPort}\n`);
});

function stop() {
  process.stderr.write(`node-floor: ${requests} requests over ${upstreamsOpened} upstream connections, ${idle.length} idle at exit\n`);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
