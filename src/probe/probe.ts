import { CHECK_IDS, check, type CheckId, type CheckResult, type Verdict } from './check.js';
import { probeConnectionClose } from './connection-close.js';
import { ProbeConnection, ProbeUnreachableError } from './connection.js';
import { probeFirstAnswer } from './first-answer.js';
import { probeIdleTimeout } from './idle-timeout.js';
import { probeHttp10, probeHttp10KeepAlive, probeHttp11 } from './keep-alive.js';
import { probePipelining } from './pipelining.js';
import { probeRequestCount } from './request-count.js';
import { probeSse } from './sse.js';
import { parseTarget, webSocketUrl } from './target.js';
import { probeWebSocket } from './websocket.js';

export interface ProbeOptions {
  url: string;
  /** Connect, and wait for each answer. @default 5000 */
  timeoutMs: number;
  /** Requests on one connection before "at least". @default 100 */
  maxRequests: number;
  /** Longest idle wait; 0 skips the idle check. @default 30000 */
  idleMaxMs: number;
  /** Longest read of an SSE stream for events and heartbeats. @default 30000 */
  sseWaitMs: number;
  /** Run the SSE checks even when the URL's plain answer is not an event stream. */
  sse: boolean;
  /** Run the WebSocket checks on the ws:// form of an http URL too. */
  ws: boolean;
}

export const PROBE_DEFAULTS = { timeoutMs: 5000, maxRequests: 100, idleMaxMs: 30_000, sseWaitMs: 30_000 } as const;

/** The `--json` document. */
export interface ProbeReport {
  url: string;
  /** The Server header of the first answer, when there was one. */
  server: string | null;
  startedAt: string;
  durationMs: number;
  /** In CHECK_IDS order; only the checks that apply to this URL. */
  checks: CheckResult[];
  /** Why groups of checks did not run. */
  notes: string[];
  summary: Record<Verdict, number>;
}

/**
 * Runs every check that applies to the URL and reports them. Throws ProbeUnreachableError (nothing ran) when
 * the server cannot be connected to at all; anything a server does once connected is a finding, not an error.
 * Checks run one after another on their own connections, except the idle wait, which runs beside them.
 */
export async function runProbe(options: ProbeOptions): Promise<ProbeReport> {
  const target = parseTarget(options.url);
  const startedAt = new Date();
  const started = performance.now();
  const timeouts = { timeoutMs: options.timeoutMs };
  const checks: CheckResult[] = [];
  const notes: string[] = [];
  let server: string | null = null;
  const webSocketOnly = target.scheme === 'ws' || target.scheme === 'wss';

  if (webSocketOnly) {
    // Connect once by hand first, so "cannot connect" is an error of the probe, not a failed upgrade.
    (await ProbeConnection.open(target, options.timeoutMs)).close();
    notes.push('a ws:// URL gets the WebSocket checks only; probe its http:// form for the connection checks');
  } else {
    const first = await probeFirstAnswer(target, timeouts, options.sse);
    server = first.server;
    checks.push(first.result);
    if (first.complete && !options.sse) {
      const idle = options.idleMaxMs > 0 ? reachable(['keepalive.idle'], () => probeIdleTimeout(target, timeouts, options.idleMaxMs)) : null;
      if (idle === null) notes.push('keepalive.idle skipped (--idle-max 0)');
      checks.push(...(await reachable(['keepalive.http11'], () => probeHttp11(target, timeouts))));
      checks.push(...(await reachable(['keepalive.http10'], () => probeHttp10(target, timeouts))));
      checks.push(...(await reachable(['keepalive.http10-keepalive'], () => probeHttp10KeepAlive(target, timeouts))));
      checks.push(...(await reachable(['keepalive.requests'], () => probeRequestCount(target, timeouts, options.maxRequests))));
      checks.push(...(await reachable(['pipelining'], () => probePipelining(target, timeouts))));
      checks.push(...(await reachable(['connection-close'], () => probeConnectionClose(target, timeouts))));
      if (idle !== null) checks.push(...(await idle));
    } else if (first.stream === null && !options.sse) {
      notes.push('connection checks skipped: the URL gave no whole answer to a plain GET');
    }
    if (first.stream !== null || options.sse) {
      if (first.stream !== null) notes.push('connection checks skipped: the URL answers an event stream (probe a plain URL of the same server for them)');
      const sse = { ...timeouts, sseWaitMs: options.sseWaitMs };
      checks.push(...(await reachable(['sse.stream', 'sse.ids', 'sse.heartbeat', 'sse.resume'], () => probeSse(target, sse, first.stream))));
    }
  }
  if (webSocketOnly || options.ws) checks.push(...(await probeWebSocket(webSocketUrl(target), timeouts)));

  checks.sort((a, b) => CHECK_IDS.indexOf(a.id) - CHECK_IDS.indexOf(b.id));
  const summary: Record<Verdict, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of checks) summary[c.verdict]++;
  return {
    url: target.url,
    server,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - started),
    checks,
    notes,
    summary,
  };
}

/**
 * Once the first connection worked, a later one that cannot connect (a per-client connection limit, a server
 * that went away) is a finding about the checks that needed it, not a reason to stop the probe.
 */
async function reachable(ids: CheckId[], run: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> {
  try {
    const result = await run();
    return Array.isArray(result) ? result : [result];
  } catch (err) {
    if (!(err instanceof ProbeUnreachableError)) throw err;
    return ids.map((id, i) => (i === 0 ? check(id, 'fail', err.message) : check(id, 'skip', 'could not connect')));
  }
}
