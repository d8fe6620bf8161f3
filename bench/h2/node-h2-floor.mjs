// Not a proxy: the least node:http2 can hold an SSE stream for, for reading Holdfast's KB per held HTTP/2 stream
// in fanout.mjs (issue 13). A TLS server with Holdfast's HTTP/2 settings (h2-front.ts: maxConcurrentStreams 128,
// extended CONNECT, maxHeaderListSize 16384, maxHeaderListPairs 108; Node's default windows) that answers every
// request 200 with an event-stream head and keeps the stream open, and a plain HTTP/1.1 control port taking
// bench/fanout's publish body (`{ items: [{ formats: { 'http-stream': { content } } }] }`) whose content it
// writes to every open stream. Nothing else: no checks, no backend, no logging.
//   node h2/node-h2-floor.mjs PORT CONTROL_PORT CERT KEY stream|compat [h2c]
// `stream`: the core API (the session's `stream` event, `stream.respond`, `stream.write`); `compat`: the
// compatibility API (Http2ServerRequest/Response, `res.writeHead`, `res.write`), which Holdfast uses. `h2c`:
// cleartext with prior knowledge (http2.createServer), for the same comparison as Holdfast's `--h2c`.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';

const [port, controlPort, certFile, keyFile, api, cleartext] = process.argv.slice(2);
if (api !== 'stream' && api !== 'compat') throw new Error('the last argument is stream or compat');

/** What is written to: the stream itself, or the compat response. */
const open = new Set();
const head = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

const options = { settings: { maxConcurrentStreams: 128, enableConnectProtocol: true, maxHeaderListSize: 16_384 }, maxHeaderListPairs: 108 };
const server = cleartext === 'h2c'
  ? http2.createServer(options)
  : http2.createSecureServer({ ...options, cert: readFileSync(certFile), key: readFileSync(keyFile) });
server.on('sessionError', () => {});
if (api === 'stream') {
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, ...head });
    open.add(stream);
    stream.on('close', streamOnClose);
    stream.on('error', () => {});
  });
} else {
  server.on('request', (req, res) => {
    res.writeHead(200, head);
    res.flushHeaders();
    open.add(res);
    res.on('close', responseOnClose);
  });
}
function streamOnClose() {
  open.delete(this);
}
function responseOnClose() {
  open.delete(this);
}
server.listen(Number(port), '127.0.0.1');

const control = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const { items } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    for (const item of items) {
      const bytes = Buffer.from(item.formats['http-stream'].content);
      for (const s of open) s.write(bytes);
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('Published\n');
  });
});
control.listen(Number(controlPort), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
