import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { publishMessage } from '../control/publish-client.js';
import { demoPage } from './page.js';

export const DEMO_CHANNEL = 'demo';

/**
 * The built-in demo backend `holdfast demo` puts behind Holdfast: an ordinary, stateless HTTP app. It never
 * holds a connection itself: `/events` and `/poll` answer at once with GRIP instructions and Holdfast holds
 * the clients; `/api/publish` publishes with one POST to Holdfast's control listener.
 */
export function createDemoBackend(controlUrl: () => string): Server {
  const state = { requests: 0, nextConnectionId: 1, nextMessageId: 1, connectionIds: new WeakMap<object, number>() };
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    let connectionId = state.connectionIds.get(req.socket);
    if (connectionId === undefined) {
      connectionId = state.nextConnectionId++;
      state.connectionIds.set(req.socket, connectionId);
    }
    const url = new URL(req.url ?? '/', 'http://demo');
    switch (url.pathname) {
      case '/':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(demoPage());
        return;
      case '/events':
        // Server-Sent Events: hold the client on the demo channel; Holdfast adds ids, heartbeats, replay.
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          'grip-hold': 'stream',
          'grip-channel': DEMO_CHANNEL,
        });
        res.end('event: hello\ndata: connected through Holdfast\n\n');
        return;
      case '/poll':
        // Long-poll: the answer is the next published message, or this one after 20 s.
        res.writeHead(200, {
          'content-type': 'text/plain; charset=utf-8',
          'grip-hold': 'response',
          'grip-channel': DEMO_CHANNEL,
          'grip-timeout': '20',
        });
        res.end('');
        return;
      case '/api/info':
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(
          JSON.stringify({
            requests: state.requests,
            backendConnection: connectionId,
            backendConnectionsOpened: state.nextConnectionId - 1,
            forwardedFor: req.headers['x-forwarded-for'] ?? null,
            via: req.headers.via ?? null,
          }),
        );
        return;
      case '/api/publish':
        if (req.method !== 'POST') break;
        readSmallBody(req)
          .then((text) =>
            publishMessage({
              controlUrl: controlUrl(),
              channel: DEMO_CHANNEL,
              message: text.slice(0, 500) || '(empty)',
              id: String(state.nextMessageId++),
            }),
          )
          .then((outcome) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ delivered: outcome.delivered }));
          })
          .catch((err: unknown) => {
            res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`publish failed: ${(err as Error).message}\n`);
          });
        return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
}

function readSmallBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 4096) req.destroy(new Error('message too long'));
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}
