/**
 * One answered question of `holdfast probe`. The ids, verdicts and `measured` keys are the stable `--json`
 * interface (README "Probe a server"); evidence is for people and may be reworded.
 *
 * Verdicts: `ok` the server does what a keep-alive-friendly client expects; `warn` allowed but costly or
 * surprising; `fail` broken (a client following the RFCs misbehaves or hangs); `skip` not applicable here.
 */
export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

export const CHECK_IDS = [
  'answer',
  'keepalive.http11',
  'keepalive.http10',
  'keepalive.http10-keepalive',
  'keepalive.requests',
  'keepalive.idle',
  'pipelining',
  'connection-close',
  'sse.stream',
  'sse.ids',
  'sse.heartbeat',
  'sse.resume',
  'ws.upgrade',
  'ws.ping',
  'ws.echo',
  'ws.close',
] as const;

export type CheckId = (typeof CHECK_IDS)[number];

export const CHECK_TITLES: Record<CheckId, string> = {
  answer: 'first answer',
  'keepalive.http11': 'keep-alive, HTTP/1.1',
  'keepalive.http10': 'HTTP/1.0, no keep-alive',
  'keepalive.http10-keepalive': 'HTTP/1.0 + keep-alive',
  'keepalive.requests': 'requests per connection',
  'keepalive.idle': 'idle keep-alive',
  pipelining: 'pipelining',
  'connection-close': 'Connection: close',
  'sse.stream': 'SSE stream',
  'sse.ids': 'SSE ids',
  'sse.heartbeat': 'SSE heartbeats',
  'sse.resume': 'SSE Last-Event-ID',
  'ws.upgrade': 'WebSocket upgrade',
  'ws.ping': 'WebSocket ping',
  'ws.echo': 'WebSocket echo',
  'ws.close': 'WebSocket close',
};

/** Numbers and facts behind a verdict; keys per check are listed in the README. */
export type Measured = Record<string, number | string | boolean | null | (number | string)[]>;

export interface CheckResult {
  id: CheckId;
  verdict: Verdict;
  evidence: string;
  measured: Measured;
}

export function check(id: CheckId, verdict: Verdict, evidence: string, measured: Measured = {}): CheckResult {
  return { id, verdict, evidence, measured };
}

/** Timing settings every check shares. */
export interface ProbeTimeouts {
  /** Connect, and wait for each answer. */
  timeoutMs: number;
}

/** "1.2 s", "340 ms": durations in evidence lines. */
export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
