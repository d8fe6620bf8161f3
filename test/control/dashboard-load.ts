import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { Inbox, openEventSource } from '../helpers/sse.js';
import { eventually } from '../helpers/until.js';

/**
 * Real load for the dashboard tests (the feed's and the browser's): proxied requests, SSE clients held on
 * two channels, one publish, and one connection refused at the connection limit; with what the dashboard
 * must then say.
 */
export interface DashboardLoad {
  hf: TestHoldfast;
  backendUrl: string;
  held: { alpha: number; beta: number };
  proxiedRequests: number;
  /** Deliveries of the one publish (to alpha's subscribers). */
  delivered: number;
  /** The refused connection's x-holdfast-error. */
  refusedCode: string;
}

export const LOAD = { alpha: 3, beta: 2, proxiedRequests: 4 } as const;

export async function startDashboardLoad(t: TestContext, overrides: Partial<ConfigInput> = {}): Promise<DashboardLoad> {
  const backend = await startBackend(t, (req, res) => {
    const channel = /^\/sse\/(\w+)$/.exec(req.url ?? '')?.[1];
    if (channel === undefined) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'grip-hold': 'stream', 'grip-channel': channel });
    res.end();
  });
  const held = LOAD.alpha + LOAD.beta;
  // The connection limit is exactly the held clients, so one more connection is refused while they are held.
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxConnections: held }, ...overrides });
  for (let i = 0; i < LOAD.proxiedRequests; i++) {
    const res = await fetch(`${hf.url}/plain/${i}`, { headers: { connection: 'close' } });
    assert.equal(await res.text(), 'plain\n');
  }
  await eventually(() => hf.edge.registry.size === 0, 10_000, 'the proxied requests\' connections to close');
  const inboxes: Inbox[] = [];
  for (const [channel, n] of [['alpha', LOAD.alpha], ['beta', LOAD.beta]] as const) {
    for (let i = 0; i < n; i++) inboxes.push(new Inbox(openEventSource(t, `${hf.url}/sse/${channel}`)));
  }
  await eventually(() => hf.holds.heldCount === held, 10_000, `${held} held SSE clients (have ${hf.holds.heldCount})`);
  const refusedCode = await refusedConnection(hf.port);
  const published = await fetch(`${hf.controlUrl}/publish/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items: [{ channel: 'alpha', formats: { 'http-stream': { content: 'data: hello\n\n' } } }] }),
  });
  assert.equal(published.status, 200, await published.text());
  await Promise.all(inboxes.slice(0, LOAD.alpha).map((inbox) => inbox.waitCount(1)));
  return { hf, backendUrl: backend.url, held: { alpha: LOAD.alpha, beta: LOAD.beta }, proxiedRequests: LOAD.proxiedRequests, delivered: LOAD.alpha, refusedCode };
}

/** One more connection at the limit: answered 503 with an error code, then closed. */
function refusedConnection(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /plain/refused HTTP/1.1\r\nhost: x\r\n\r\n'));
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const code = /^x-holdfast-error: (\S+)/im.exec(answer)?.[1];
      if (answer.startsWith('HTTP/1.1 503') && code !== undefined) resolve(code);
      else reject(new Error(`expected a 503 refusal, got: ${answer.slice(0, 200)}`));
    });
  });
}
