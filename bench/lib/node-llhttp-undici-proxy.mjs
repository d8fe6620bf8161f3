// The `node-llhttp-undici` target: what a Holdfast-shaped proxy costs without Node's HTTP server objects.
// Client side: `node:net` plus Node's own llhttp parser (`_http_common.HTTPParser`, the parser Node's http
// server uses, fed straight from the socket's handle as Node does), our own tiny response writer (head and a
// gathered small body in one writev). Backend side: one undici Pool with the legacy dispatch handler, exactly
// as `node-http-undici`. Nothing else: no checks, routing, retries, metrics, logs or timeouts. Set against
// `node-http-undici`, the difference is what IncomingMessage/ServerResponse and their streams cost; set
// against `node-floor`, the difference is undici plus a real parser. Good only for this benchmark's GETs.
//
//   node node-llhttp-undici-proxy.mjs PORT BACKEND_PORT
import net from 'node:net';
import { createRequire } from 'node:module';
import { Pool } from 'undici';

const require = createRequire(import.meta.url);
const { HTTPParser, methods } = require('_http_common');

const [port, backendPort] = process.argv.slice(2).map(Number);
const pool = new Pool(`http://127.0.0.1:${backendPort}`, { connections: 256, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);
const GATHER_MAX_BYTES = 64 * 1024;
const kOnHeadersComplete = HTTPParser.kOnHeadersComplete | 0;
const kOnMessageComplete = HTTPParser.kOnMessageComplete | 0;
const kOnExecute = HTTPParser.kOnExecute | 0;

function endToEnd(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = typeof raw[i] === 'string' ? raw[i] : raw[i].toString('latin1');
    if (!HOP.has(name.toLowerCase())) out.push(name, typeof raw[i + 1] === 'string' ? raw[i + 1] : raw[i + 1].toString('latin1'));
  }
  return out;
}

class Exchange {
  constructor(conn, keepAlive) {
    this.conn = conn;
    this.keepAlive = keepAlive;
    this.head = '';
    this.chunks = null;
    this.chunked = false;
  }
  onConnect() {}
  onHeaders(status, rawHeaders, _resume, statusText) {
    if (status < 200) return true;
    const headers = endToEnd(rawHeaders);
    let head = `HTTP/1.1 ${status} ${statusText}\r\n`;
    let length = -1;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i].length === 14 && headers[i].toLowerCase() === 'content-length') length = Number(headers[i + 1]);
      head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    }
    if (length < 0) {
      this.chunked = true;
      head += 'Transfer-Encoding: chunked\r\n';
    }
    head += this.keepAlive ? '\r\n' : 'Connection: close\r\n\r\n';
    if (length >= 0 && length <= GATHER_MAX_BYTES) {
      this.head = head;
      this.chunks = [];
    } else this.conn.socket.write(head, 'latin1');
    return true;
  }
  onData(chunk) {
    if (this.chunks !== null) this.chunks.push(chunk);
    else if (this.chunked) {
      const socket = this.conn.socket;
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      socket.write('\r\n', 'latin1');
      socket.uncork();
    } else this.conn.socket.write(chunk);
    return true;
  }
  onComplete() {
    const socket = this.conn.socket;
    if (this.chunks !== null) {
      // Head and body leave in one writev, as Node's ServerResponse sends them: no copy of the body.
      socket.cork();
      socket.write(this.head, 'latin1');
      for (const c of this.chunks) socket.write(c);
      socket.uncork();
    } else if (this.chunked) socket.write('0\r\n\r\n', 'latin1');
    this.conn.done(this.keepAlive);
  }
  onError() {
    if (this.head === '' && this.chunks === null) this.conn.socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad gateway\n');
    else this.conn.socket.destroy();
  }
}

class Connection {
  constructor(socket) {
    this.socket = socket;
    this.queue = [];
    this.busy = false;
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, 16 * 1024, 0);
    parser[kOnHeadersComplete] = (major, minor, headers, method, url, _s, _m, upgrade, shouldKeepAlive) => {
      this.queue.push({ method: methods[method], url, headers, keepAlive: shouldKeepAlive && major === 1 && minor === 1 });
    };
    parser[kOnMessageComplete] = () => this.next();
    parser[kOnExecute] = (ret) => {
      if (ret instanceof Error) socket.destroy();
    };
    this.parser = parser;
    if (socket._handle?.isStreamBase && !socket._handle._consumed) {
      socket._handle._consumed = true;
      parser.consume(socket._handle);
    } else {
      socket.on('data', (d) => {
        const ret = parser.execute(d);
        if (ret instanceof Error) socket.destroy();
      });
    }
    socket.on('error', () => {});
    socket.on('close', () => parser.free());
  }
  next() {
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const req = this.queue.shift();
    const headers = endToEnd(req.headers);
    headers.push('via', '1.1 node-llhttp-undici');
    pool.dispatch({ path: req.url, method: req.method, headers, body: null }, new Exchange(this, req.keepAlive));
  }
  done(keepAlive) {
    this.busy = false;
    if (!keepAlive) this.socket.end();
    else this.next();
  }
}

const server = net.createServer({ noDelay: true }, (socket) => new Connection(socket));
server.listen(port, '127.0.0.1', () => process.stdout.write(`node-llhttp-undici on ${port}\n`));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
