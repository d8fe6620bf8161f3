import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * The built-in demo backend `holdfast demo` puts behind Holdfast: an ordinary, stateless HTTP app that shows
 * what arrived through the proxy (which pooled connection, the forwarded headers).
 */
export function createDemoBackend(): Server {
  let requests = 0;
  const connectionIds = new WeakMap<object, number>();
  let nextConnectionId = 1;
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    let connectionId = connectionIds.get(req.socket);
    if (connectionId === undefined) {
      connectionId = nextConnectionId++;
      connectionIds.set(req.socket, connectionId);
    }
    const url = new URL(req.url ?? '/', 'http://demo');
    if (url.pathname === '/api/info') {
      const body = JSON.stringify({
        requests,
        backendConnection: connectionId,
        backendConnectionsOpened: nextConnectionId - 1,
        forwardedFor: req.headers['x-forwarded-for'] ?? null,
        via: req.headers.via ?? null,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (url.pathname !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(demoPage());
  });
}

function demoPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Holdfast demo</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
code,pre{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}#stats{font-size:1.1rem}</style></head>
<body>
<h1>Holdfast is in front of this page</h1>
<p>This page comes from the demo backend, through Holdfast. Below, your browser asks the backend for
<code>/api/info</code> 20 times a second over keep-alive: watch how few backend connections serve them all.</p>
<pre id="stats">waiting...</pre>
<script>
let n = 0;
async function tick() {
  const info = await (await fetch('/api/info')).json();
  n++;
  document.getElementById('stats').textContent =
    'requests seen by the backend:      ' + info.requests + '\\n' +
    'backend connections ever opened:   ' + info.backendConnectionsOpened + '\\n' +
    'this one came on backend conn #    ' + info.backendConnection + '\\n' +
    'X-Forwarded-For:                   ' + info.forwardedFor + '\\n' +
    'Via:                               ' + info.via;
}
setInterval(() => { tick().catch(() => {}); }, 50);
</script>
</body></html>
`;
}
