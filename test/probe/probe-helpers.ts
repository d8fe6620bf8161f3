import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import type { CheckId, CheckResult } from '../../src/probe/check.js';
import { PROBE_DEFAULTS, runProbe, type ProbeOptions, type ProbeReport } from '../../src/probe/probe.js';
import { listen } from '../helpers/listen.js';

/** runProbe with the defaults, a short idle cap and SSE wait unless the test says otherwise. */
export function probe(url: string, options: Partial<ProbeOptions> = {}): Promise<ProbeReport> {
  return runProbe({ ...PROBE_DEFAULTS, idleMaxMs: 10_000, sseWaitMs: 10_000, sse: false, ws: false, url, ...options });
}

/** The one check with this id; fails the test, showing the whole report, when it is absent. */
export function checkOf(report: ProbeReport, id: CheckId): CheckResult {
  const found = report.checks.find((c) => c.id === id);
  assert.ok(found, `no ${id} check in ${JSON.stringify(report, null, 2)}`);
  return found;
}

/** Verdicts by id, for one deepEqual that shows every difference at once. */
export function verdicts(report: ProbeReport): Partial<Record<CheckId, string>> {
  return Object.fromEntries(report.checks.map((c) => [c.id, c.verdict]));
}

/** How a raw test server answers one request; `answer` writes the usual 200 echoing the target. */
export type RawHandler = (socket: Socket, target: string, answer: () => void) => void;

/**
 * A raw TCP "HTTP server" whose every byte a test decides, to misbehave on purpose. Requests are bodiless GETs
 * (all the probe sends); each answer is `200` with the request target as its body, so the probe can match
 * answers to requests, and says nothing about the connection unless the handler does.
 */
export async function rawHttpServer(t: TestContext, handler: RawHandler): Promise<string> {
  const server = createServer((socket) => {
    let buffered = '';
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const target = head.split(' ')[1] ?? '/';
        handler(socket, target, () => socket.write(plainAnswer(target)));
      }
    });
  });
  const port = await listen(t, server);
  return `http://127.0.0.1:${port}/`;
}

export function plainAnswer(target: string, extraHeaders = ''): string {
  const body = `${target}\n`;
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}
