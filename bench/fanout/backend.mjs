// The GRIP backend for Holdfast and Pushpin: every request is told to hold as an SSE stream on the
// channel named by the last path segment (`/sub/<ch>`), with an empty initial body. nchan needs none.
// Usage: node backend.mjs PORT
import http from 'node:http';

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  const channel = (req.url ?? '/').split('?')[0].split('/').pop() || 'bench';
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Grip-Hold': 'stream',
    'Grip-Channel': channel,
    'Content-Length': '0',
  });
  res.end();
  // Drain any request body so keep-alive works.
  req.resume();
});
server.keepAliveTimeout = 120_000;
server.maxRequestsPerSocket = 0;
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => process.send?.({ ready: true }));
process.on('SIGTERM', () => process.exit(0));
