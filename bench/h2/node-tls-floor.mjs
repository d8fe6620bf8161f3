// Not a proxy: the least a Node TLS front can do per request, for reading Holdfast's rows in tls-bench.mjs.
// node:http2 createSecureServer with allowHTTP1 (ALPN h2 and http/1.1), the same certificate, answering the
// backend's two bodies itself from memory: no backend request, no checks, no logging. Holdfast minus this row is
// what proxying and Holdfast's own work cost on top of Node's TLS and HTTP layers.
//   node h2/node-tls-floor.mjs PORT CERT KEY
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { BODIES } from '../lib/peers.mjs';

const [port, certFile, keyFile] = process.argv.slice(2);
const bodies = new Map(Object.values(BODIES).map((b) => [b.path, Buffer.from(b.text)]));
const server = http2.createSecureServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), allowHTTP1: true }, (req, res) => {
  const body = bodies.get(req.url);
  if (body === undefined) {
    res.writeHead(404, { 'content-length': '0' });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
  res.end(body);
});
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
