// Chromium over HTTP/2: one page, 20 EventSources and a WebSocket to Holdfast's TLS listener, all on one
// connection (the six-connection limit of HTTP/1.1 gone), and one publish reaching all of them.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { HttpStreamFormat, WebSocketMessageFormat } from '@fanoutio/grip';
import { encodeEvents, WEBSOCKET_EVENTS } from '../../src/ws/websocket-events.js';
import { startBackend } from '../helpers/backend.js';
import { certDir, makeCert } from '../helpers/certs.js';
import { chromiumMissing, launchChromium, watchFailures } from '../helpers/chromium.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { eventually } from '../helpers/until.js';
import { publisherFor } from '../hold/push-helpers.js';

const SOURCES = 20;

const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>h2</title><script>
window.got = 0; window.opened = 0; window.wsOpen = false;
for (let i = 0; i < ${SOURCES}; i++) {
  const es = new EventSource('/events/news?i=' + i);
  es.onopen = () => window.opened++;
  es.onmessage = (e) => { if (e.data === 'hello') window.got++; };
}
const ws = new WebSocket('wss://' + location.host + '/ws/room');
ws.onopen = () => (window.wsOpen = true);
ws.onmessage = (e) => { if (e.data === 'hello') window.got++; };
</script>`;

/** The page, SSE holds on `news`, and a WebSocket-over-HTTP backend that subscribes its socket to `news`. */
function backendHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  } else if (url.startsWith('/events/')) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'grip-hold': 'stream', 'grip-channel': 'news' });
    res.end(': open\n\n');
  } else if (url === '/ws/room' && req.method === 'POST') {
    // OPEN is accepted with the grip extension and a control message subscribing the socket; later POSTs get nothing back.
    const opening = req.headers['content-length'] === '6';
    const body = opening
      ? encodeEvents([
          { type: 'OPEN', content: null },
          { type: 'TEXT', content: Buffer.from(`c:${JSON.stringify({ type: 'subscribe', channel: 'news' })}`) },
        ])
      : Buffer.alloc(0);
    res.writeHead(200, { 'content-type': WEBSOCKET_EVENTS, ...(opening ? { 'sec-websocket-extensions': 'grip' } : {}) });
    res.end(body);
  } else {
    res.writeHead(404);
    res.end();
  }
}

test('h2 in Chromium: 20 EventSources and a WebSocket on one HTTP/2 connection all get one publish', { skip: chromiumMissing }, async (t) => {
  const backend = await startBackend(t, backendHandler);
  const cert = makeCert(certDir(t), 'localhost');
  const hf = await startTestHoldfast(t, [backend.url], {
    tls: { listen: '127.0.0.1:0', certificates: [cert] },
    websocket: { overHttpPaths: ['/ws'] },
  });
  const browser = await launchChromium(t);
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const failed = watchFailures(page);
  await page.goto(`https://localhost:${hf.tlsAddress!.port}/`, { timeout: 30_000 });
  await page.waitForFunction(`window.opened === ${SOURCES} && window.wsOpen`, undefined, { timeout: 30_000 });
  // Held on Holdfast's side: every EventSource and the subscribed socket.
  await eventually(() => hf.holds.heldCount === SOURCES + 1, 20_000, `${SOURCES + 1} held clients`);
  assert.equal(hf.holds.heldCount, SOURCES + 1);

  await publisherFor(hf).publishFormats('news', [new HttpStreamFormat('data: hello\n\n'), new WebSocketMessageFormat('hello')]);
  await page.waitForFunction(`window.got === ${SOURCES + 1}`, undefined, { timeout: 20_000 });

  // One connection carried it all, over HTTP/2: the page says h2, Holdfast counts one TLS connection, one
  // HTTP/2 connection, and 21 streams on it (the WebSocket is one of them: RFC 8441, not an HTTP/1.1 upgrade).
  assert.equal(await page.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol'), 'h2');
  assert.equal(await metricValue(hf, 'holdfast_h2_connections_open'), 1);
  assert.equal(await metricValue(hf, 'holdfast_client_connections_open'), 1);
  assert.equal(await metricValue(hf, 'holdfast_h2_streams_open'), SOURCES + 1);
  assert.equal(await metricValue(hf, 'holdfast_ws_connections', { mode: 'over-http' }), 1);
  assert.deepEqual(failed, []);
});
