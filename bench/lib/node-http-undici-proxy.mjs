// The `node-http-undici` target: the least a proxy built like Holdfast can do. Node's http server on the
// client side, one undici Pool (legacy dispatch handler, as Holdfast uses) on the backend side, and nothing
// else: no request checks, no routing, no retries, no metrics, no logs, no timeouts beyond the defaults.
// What Holdfast costs above this row is Holdfast's own work; what this row costs above `node-floor` is
// Node's HTTP server plus undici. Good only for this benchmark's GETs. Not a product.
//
//   node node-http-undici-proxy.mjs PORT BACKEND_PORT
import http from 'node:http';
import { Pool } from 'undici';

const [port, backendPort] = process.argv.slice(2).map(Number);
const pool = new Pool(`http://127.0.0.1:${backendPort}`, { connections: 256, pipelining: 1 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);
const GATHER_MAX_BYTES = 64 * 1024;

/** Hop-by-hop fields out of a raw [name, value, ...] list (Buffers from undici, strings from Node). */
function endToEnd(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1');
    if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
  }
  return out;
}

class Exchange {
  constructor(res) {
    this.res = res;
    this.chunks = null;
  }
  onConnect() {}
  onHeaders(status, rawHeaders, _resume, statusText) {
    if (status < 200) return true;
    const headers = endToEnd(rawHeaders);
    const lengthAt = headers.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length');
    const length = lengthAt < 0 ? -1 : Number(headers[lengthAt + 1]);
    // Small answers of known length leave in one write, as Holdfast's gathered body does.
    if (length >= 0 && length <= GATHER_MAX_BYTES) this.chunks = [];
    this.res.writeHead(status, statusText, headers);
    return true;
  }
  onData(chunk) {
    if (this.chunks !== null) this.chunks.push(chunk);
    else this.res.write(chunk);
    return true;
  }
  onComplete() {
    if (this.chunks !== null) this.res.end(Buffer.concat(this.chunks));
    else this.res.end();
  }
  onError(err) {
    if (this.res.headersSent) this.res.destroy(err);
    else {
      this.res.writeHead(502, { 'content-type': 'text/plain' });
      this.res.end('bad gateway\n');
    }
  }
}

const server = http.createServer({ noDelay: true, keepAliveTimeout: 15_000 }, (req, res) => {
  const headers = endToEnd(req.rawHeaders);
  headers.push('via', '1.1 node-http-undici');
  pool.dispatch({ path: req.url, method: req.method, headers, body: null }, new Exchange(res));
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`node-http-undici on ${port}\n`));
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(0));
