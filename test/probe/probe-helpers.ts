import assert from 'node:assert/strict';
import type { CheckId, CheckResult } from '../../src/probe/check.js';
import { PROBE_DEFAULTS, runProbe, type ProbeOptions, type ProbeReport } from '../../src/probe/probe.js';

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

/** What a well-behaved keep-alive server gets for a URL that answers at once. */
export const CONNECTION_CHECKS_OK: Partial<Record<CheckId, string>> = {
  answer: 'ok',
  'keepalive.http11': 'ok',
  'keepalive.http10': 'ok',
  'keepalive.http10-keepalive': 'ok',
  'keepalive.requests': 'ok',
  'keepalive.idle': 'ok',
  pipelining: 'ok',
  'connection-close': 'ok',
};

/** The request target of a raw request head. */
export function targetOf(head: string): string {
  return head.split(' ')[1] ?? '/';
}

/**
 * The answer the misbehaving raw servers give every request (with test/helpers/raw-backend.ts): 200 with the
 * request target as its body, so the probe can match answers to requests, and nothing about the connection.
 */
export function echoAnswer(head: string): string {
  const body = `${targetOf(head)}\n`;
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
