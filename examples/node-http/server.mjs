// A plain node:http backend behind Holdfast, no framework: GRIP instructions are two response headers, a
// publish is one JSON POST to Holdfast's control listener. @fanoutio/grip is used only to check Grip-Sig
// and to read and write WebSocket-over-HTTP events.
import { createServer } from 'node:http';
import {
  WebSocketEvent,
  createWebSocketControlMessage,
  decodeWebSocketEvents,
  encodeWebSocketEvents,
  validateSig,
} from '@fanoutio/grip';

const CHANNEL = 'news';
const port = Number(process.env.PORT ?? 3000);
const controlUrl = process.env.GRIP_CONTROL_URL ?? 'http://127.0.0.1:5561';
// Holdfast's grip.sigKey (holdfast.yaml); its Grip-Sig JWTs have iss grip.sigIss, "pushpin" by default.
const sigKey = process.env.GRIP_SIG_KEY ?? 'example-secret-change-me';

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://backend');
  // An example route: a real app publishes from wherever its data changes, and guards a route like this.
  if (url.pathname === '/publish' && req.method === 'POST') return publish(await readBody(req), res);

  // Only Holdfast can hold a client: a request that did not come through it gets an error, not a hang.
  const sig = req.headers['grip-sig'];
  if (typeof sig !== 'string' || !(await validateSig(sig, sigKey, 'pushpin'))) {
    res.writeHead(501, { 'Content-Type': 'text/plain' }).end('connect through Holdfast\n');
    return;
  }
  if (url.pathname === '/ws' && req.method === 'POST') {
    webSocketEvents(await readBody(req), res);
  } else if (url.pathname === '/events') {
    // Server-Sent Events: Holdfast keeps the stream open and appends each publish to it.
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Grip-Hold': 'stream', 'Grip-Channel': CHANNEL }).end();
  } else if (url.pathname === '/poll') {
    // Long-poll: the next publish is the answer; after Grip-Timeout seconds, this body is.
    res
      .writeHead(200, { 'Content-Type': 'application/json', 'Grip-Hold': 'response', 'Grip-Channel': CHANNEL, 'Grip-Timeout': '20' })
      .end('{"messages":[]}\n');
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  }
}

// WebSocket-over-HTTP: Holdfast terminates the client's WebSocket and posts its events (OPEN, TEXT, CLOSE...)
// here; the answer carries the events to send back, and `c:` control messages such as subscribe.
function webSocketEvents(body, res) {
  const out = [];
  for (const event of decodeWebSocketEvents(body)) {
    const type = event.getType();
    if (type === 'OPEN') {
      out.push(new WebSocketEvent('OPEN'));
      out.push(new WebSocketEvent('TEXT', `c:${createWebSocketControlMessage('subscribe', { channel: CHANNEL })}`));
      out.push(new WebSocketEvent('TEXT', 'm:welcome'));
    } else if (type === 'TEXT') {
      out.push(new WebSocketEvent('TEXT', `m:echo: ${String(event.getContent())}`));
    } else if (type === 'CLOSE') {
      out.push(new WebSocketEvent('CLOSE', event.getContent()));
    }
  }
  res.writeHead(200, {
    'Content-Type': 'application/websocket-events',
    // The grip extension lets the answer carry control messages (c:) besides messages (m:).
    'Sec-WebSocket-Extensions': 'grip',
  });
  res.end(Buffer.from(encodeWebSocketEvents(out)));
}

// One item in the three formats, so every kind of held client gets the message.
async function publish(body, res) {
  const message = body.length > 0 ? body.toString('utf8') : 'hello';
  const item = {
    channel: CHANNEL,
    formats: {
      'http-stream': { content: `${message.split('\n').map((line) => `data: ${line}`).join('\n')}\n\n` },
      'http-response': {
        headers: { 'Content-Type': 'application/json' },
        body: `${JSON.stringify({ messages: [message] })}\n`,
      },
      'ws-message': { content: message },
    },
  };
  const headers = { 'Content-Type': 'application/json' };
  if (process.env.HOLDFAST_PUBLISH_KEY) headers.Authorization = `Bearer ${process.env.HOLDFAST_PUBLISH_KEY}`;
  const answer = await fetch(`${controlUrl}/publish/`, { method: 'POST', headers, body: JSON.stringify({ items: [item] }) });
  const delivered = answer.headers.get('x-holdfast-delivered') ?? '?';
  res.writeHead(answer.ok ? 200 : 502, { 'Content-Type': 'text/plain' });
  res.end(answer.ok ? `published, delivered to ${delivered}\n` : `publish failed: ${answer.status} ${await answer.text()}`);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end('internal error\n');
  });
}).listen(port, '127.0.0.1', () => console.log(`node-http example on http://127.0.0.1:${port}`));
