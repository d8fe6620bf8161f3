// An Express backend behind Holdfast: it answers at once with GRIP instructions and Holdfast holds the client
// (Server-Sent Events on /events, a long-poll on /poll, a WebSocket on /ws), then POST /publish reaches all
// three through Holdfast's control listener. The app keeps no connection open itself.
import express from 'express';
import { ServeGrip } from '@fanoutio/serve-grip';
import { HttpResponseFormat, HttpStreamFormat, WebSocketMessageFormat, validateSig } from '@fanoutio/grip';

const CHANNEL = 'news';
const port = Number(process.env.PORT ?? 3000);
// Holdfast's grip.sigKey (holdfast.yaml); its Grip-Sig JWTs have iss grip.sigIss, "pushpin" by default.
const sigKey = process.env.GRIP_SIG_KEY ?? 'example-secret-change-me';

const serveGrip = new ServeGrip({
  grip: {
    // Where the publisher sends items: Holdfast's control listener (`control` in holdfast.yaml).
    control_uri: process.env.GRIP_CONTROL_URL ?? 'http://127.0.0.1:5561',
    // Holdfast signs every request it forwards with a Grip-Sig JWT (HS256, iss grip.sigIss, key grip.sigKey);
    // these tell serve-grip how to check it. Without them any Grip-Sig header counts as proxied.
    verify_iss: 'pushpin',
    verify_key: sigKey,
    // Holdfast with publish.key set: Bearer <key>, as js-grip sends it.
    ...(process.env.HOLDFAST_PUBLISH_KEY ? { key: process.env.HOLDFAST_PUBLISH_KEY } : {}),
  },
});

const app = express();
// A held long-poll answer keeps the headers of the app's first answer (GRIP), an ETag included: a client
// sending that ETag back would get a 304 instead of a held poll. Held answers carry no validator.
app.set('etag', false);

// serve-grip 2.0.0 calls @fanoutio/grip's validateSig, which is async, without awaiting it, so its
// req.grip.isSigned is true for any Grip-Sig header, a forged one too. Check the signature here instead.
async function requireHoldfast(req, res, next) {
  const sig = req.get('Grip-Sig');
  if (sig !== undefined && (await validateSig(sig, sigKey, 'pushpin'))) return next();
  res.status(501).send('connect through Holdfast\n');
}
app.use(serveGrip);

// GET /events: an SSE stream Holdfast holds; each publish appends an event (with an id: line when it has one).
app.get('/events', requireHoldfast, (req, res) => {
  const instruct = res.grip.startInstruct();
  instruct.addChannel(CHANNEL);
  instruct.setHoldStream();
  res.setHeader('Content-Type', 'text/event-stream');
  res.end();
});

// GET /poll: a long-poll; the next publish is the answer, or this empty list after 20 s.
app.get('/poll', requireHoldfast, (req, res) => {
  const instruct = res.grip.startInstruct();
  instruct.addChannel(CHANNEL);
  instruct.setHoldLongPoll(20);
  res.json({ messages: [] });
});

// POST /ws: WebSocket-over-HTTP. Holdfast terminates the client's WebSocket and posts its events here.
app.post('/ws', requireHoldfast, (req, res) => {
  const ws = req.grip.wsContext;
  if (ws === null || ws === undefined) return res.status(400).send('a WebSocket-over-HTTP endpoint\n');
  if (ws.isOpening()) {
    ws.accept();
    ws.subscribe(CHANNEL);
    ws.send('welcome');
  }
  while (ws.canRecv()) {
    let message;
    try {
      message = ws.recv();
    } catch {
      break; // DISCONNECT: the client went away without a close frame; nothing to answer
    }
    if (message === null) {
      ws.close(); // the client closed: close back
      break;
    }
    ws.send(`echo: ${message}`);
  }
  res.end();
});

// POST /publish (text body): one item in all three formats, so every kind of held client gets it. An example
// route: a real app publishes from wherever its data changes, and guards a route like this.
app.post('/publish', express.text(), async (req, res) => {
  const message = typeof req.body === 'string' && req.body !== '' ? req.body : 'hello';
  const sse = message.split('\n').map((line) => `data: ${line}`).join('\n');
  await serveGrip.getPublisher().publishFormats(CHANNEL, [
    new HttpStreamFormat(`${sse}\n\n`),
    new HttpResponseFormat({ headers: { 'Content-Type': 'application/json' }, body: `${JSON.stringify({ messages: [message] })}\n` }),
    new WebSocketMessageFormat(message),
  ]);
  res.send('published\n');
});

app.listen(port, '127.0.0.1', () => console.log(`express-serve-grip example on http://127.0.0.1:${port}`));
