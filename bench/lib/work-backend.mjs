// The backend of bench/faults and bench/soak, run as a child process (so it can be killed for real):
//   GET /sub/<ch>      held by Holdfast as an SSE stream on <ch> (GRIP `Grip-Hold: stream`), empty body
//   GET /work?ms=N     a plain 200 with a short body after N ms (0 = at once): the proxied requests
// Usage: node work-backend.mjs PORT. Tells its parent { ready: true } over IPC once listening.
import http from 'node:http';

const port = Number(process.argv[2]);

const server = http.createServer((req, res) => {
  req.resume();
  const url = new URL(req.url ?? '/', 'http://backend');
  if (url.pathname.startsWith('/sub/')) {
    const channel = url.pathname.slice('/sub/'.length) || 'bench';
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Grip-Hold': 'stream', 'Grip-Channel': channel, 'Content-Length': '0' });
    res.end();
    return;
  }
  const ms = Number(url.searchParams.get('ms') ?? '0');
  const answer = () => {
    const body = `ok ${ms}\n`;
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
    res.end(body);
  };
  if (ms > 0) setTimeout(answer, ms);
  else answer();
});
server.keepAliveTimeout = 120_000;
server.maxRequestsPerSocket = 0;
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => process.send?.({ ready: true }));
process.on('SIGTERM', () => process.exit(0));
