import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pushSchema, type HoldfastConfig } from '../config/schema.js';
import { FAVICON_SVG } from '../control/favicon.js';
import { publishMessage } from '../control/publish-client.js';
import { demoPage } from './page.js';

export const DEMO_CHANNEL = 'demo';

/** What the demo page polls (every second, and a long-poll after each answer): not worth an access line each. */
export const DEMO_QUIET_PATHS = ['/api/info', '/poll'] as const;

/** The demo's configuration: the given one, with the page's own polling left out of the access log. */
export function withDemoQuietPaths(config: HoldfastConfig): HoldfastConfig {
  const excluded = new Set([...config.log.accessExcludePaths, ...DEMO_QUIET_PATHS]);
  return { ...config, log: { ...config.log, accessExcludePaths: [...excluded] } };
}

/** The SSE event type of Holdfast's gap notice (push.sseGapEvent's default), which the page shows. */
const GAP_EVENT = /^event: *(\S+)/m.exec(pushSchema.parse({}).sseGapEvent)?.[1] ?? 'holdfast-gap';

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
        res.end(demoPage({ control: controlUrl().replace(/^http:\/\//, ''), gapEvent: GAP_EVENT }));
        return;
      case '/favicon.ico':
        // The page links an inline icon; this is for clients that ask for the usual path anyway.
        res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'max-age=86400' });
        res.end(FAVICON_SVG);
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
