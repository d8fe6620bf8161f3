// The Node incumbent, configured as its README recommends for a reverse proxy. Without the keep-alive agent
// http-proxy sends `Connection: close` upstream and opens a backend connection per request.
// Usage: node http-proxy-server.mjs <listenPort> <backendOrigin>
import http from 'node:http';
import httpProxy from 'http-proxy';

const [portText, target] = process.argv.slice(2);
if (portText === undefined || target === undefined) {
  process.stderr.write('usage: node http-proxy-server.mjs <listenPort> <backendOrigin>\n');
  process.exit(2);
}

const proxy = httpProxy.createProxyServer({ target, agent: new http.Agent({ keepAlive: true }) });
proxy.on('error', (err, _req, res) => {
  // Without a handler http-proxy rethrows and the process dies mid-run.
  if (res.writeHead !== undefined && !res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
  res.end(`bad gateway: ${err.message}\n`);
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.listen(Number(portText), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
