// A GRIP backend that serves every transport, for tests of several Holdfast nodes over a shared bus.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { GripInstruct } from '@fanoutio/grip';
import { ServeGrip } from '@fanoutio/serve-grip';
import { startBackend, type RecordingBackend } from '../helpers/backend.js';

type GripRes = { grip: { startInstruct(): GripInstruct } };

/**
 * One backend for every transport, written with @fanoutio/serve-grip: `/events?ch=` holds an SSE stream,
 * `/stream?ch=` a plain HTTP stream, `/poll?ch=` a long-poll, and POSTs to `/ws?ch=` are WebSocket-over-HTTP
 * (accept and subscribe on OPEN). The recording backend reads each body first; serve-grip reads a copy.
 */
export async function startEveryTransportBackend(t: TestContext): Promise<RecordingBackend> {
  const serveGrip = new ServeGrip({ grip: { control_uri: 'http://127.0.0.1:9/', verify_iss: 'pushpin', verify_key: 'changeme' } });
  return startBackend(t, async (original, res, body) => {
    const req = Object.assign(Readable.from([body]), { headers: original.headers, method: original.method, url: original.url }) as unknown as IncomingMessage;
    if (!(await serveGrip.run(req, res))) return;
    const url = new URL(original.url ?? '/', 'http://backend');
    const channel = url.searchParams.get('ch') ?? 'feed';
    const grip = (res as unknown as GripRes).grip;
    if (url.pathname === '/ws') {
      const ws = req.grip?.wsContext;
      if (ws === undefined || ws === null) {
        res.statusCode = 400;
        res.end('not websocket-over-http\n');
        return;
      }
      if (ws.isOpening()) {
        ws.accept();
        ws.subscribe(channel);
      }
      while (ws.canRecv()) {
        if (ws.recv() === null) {
          ws.close();
          break;
        }
      }
      res.end();
      return;
    }
    const instruct = grip.startInstruct();
    instruct.addChannel(channel);
    if (url.pathname === '/poll') {
      instruct.setHoldLongPoll(60);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('timed out\n');
      return;
    }
    instruct.setHoldStream();
    if (url.pathname === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end('retry: 20\n\n');
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('[start]\n');
    }
  });
}
