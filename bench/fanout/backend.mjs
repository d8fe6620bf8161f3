// The GRIP backend for Holdfast and Pushpin. nchan needs none. Usage: node backend.mjs PORT
//
// - SSE (`GET /sub/<ch>`): every request is told to hold as an SSE stream on the channel named by the last
//   path segment, with an empty initial body.
// - WebSocket-over-HTTP (`POST /ws/<ch>`, `Content-Type: application/websocket-events`, GRIP.md §4): the
//   answer to a batch starting with OPEN accepts with `Sec-WebSocket-Extensions: grip` and the events
//   `OPEN\r\n` + `TEXT <hex>\r\nc:{"type":"subscribe","channel":"<ch>"}\r\n` (GRIP over WebSocket: a control
//   message subscribing the socket). Any later batch (CLOSE, DISCONNECT, PING) gets an empty 200 answer.
import http from 'node:http';

const port = Number(process.argv[2]);
const WS_EVENTS = 'application/websocket-events';

function wsOpenAnswer(channel) {
  const control = Buffer.from(`c:${JSON.stringify({ type: 'subscribe', channel })}`, 'utf8');
  return Buffer.concat([Buffer.from(`OPEN\r\nTEXT ${control.length.toString(16)}\r\n`, 'latin1'), control, Buffer.from('\r\n', 'latin1')]);
}

const server = http.createServer((req, res) => {
  const channel = (req.url ?? '/').split('?')[0].split('/').pop() || 'bench';
  if ((req.headers['content-type'] ?? '').startsWith(WS_EVENTS)) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const open = body.length >= 4 && body.toString('latin1', 0, 4) === 'OPEN';
      const answer = open ? wsOpenAnswer(channel) : Buffer.alloc(0);
      const headers = { 'Content-Type': WS_EVENTS, 'Content-Length': String(answer.length) };
      if (open) headers['Sec-WebSocket-Extensions'] = 'grip';
      res.writeHead(200, headers);
      res.end(answer);
    });
    return;
  }
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
