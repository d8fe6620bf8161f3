import { createParser } from 'eventsource-parser';
import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { ProbeConnection, describeHead, type IncomingResponse } from './connection.js';
import { SSE_REQUEST_HEADERS, getRequest, type ProbeTarget } from './target.js';

export interface SseOptions extends ProbeTimeouts {
  /** How long to read the stream for events and heartbeats (ends early once both are seen twice). */
  sseWaitMs: number;
}

/** An SSE response already open (the first answer was one). */
export interface OpenStream {
  connection: ProbeConnection;
  response: IncomingResponse;
}

/**
 * Anything arriving after this much quiet keeps an idle stream alive the way a heartbeat does: proxies and
 * load balancers cut streams that stay silent past their idle timeout (often 30-60 s).
 */
const HEARTBEAT_GAP_MS = 1000;

interface StreamItem {
  kind: 'event' | 'comment';
  /** Since reading began. */
  atMs: number;
  id: string | undefined;
  /** Counted as a heartbeat: a comment, or an event after a quiet gap. */
  heartbeat: boolean;
}

/** Does the URL answer an event stream, with `id:` lines and heartbeats, and does Last-Event-ID get anything? */
export async function probeSse(target: ProbeTarget, options: SseOptions, opened: OpenStream | null): Promise<CheckResult[]> {
  const stream = opened ?? (await openStream(target, options, {}));
  if ('failed' in stream) return [stream.failed, ...skipRest()];
  const { connection, response } = stream;
  try {
    const head = response.head;
    if (head.status !== 200 || !/^text\/event-stream\b/i.test(head.headers['content-type'] ?? '')) {
      const type = head.headers['content-type'] ?? 'no Content-Type';
      return [check('sse.stream', 'fail', `${describeHead(head)}, ${type}: not an event stream`, { status: head.status, contentType: head.headers['content-type'] ?? null }), ...skipRest()];
    }
    const items = followEvents(response);
    const heartbeats = () => items.filter((i) => i.heartbeat).length;
    const withIds = () => items.filter((i) => i.kind === 'event' && i.id !== undefined).length;
    const startedAtMs = connection.elapsedMs();
    await connection.waitUntil(() => heartbeats() >= 2 && withIds() >= 2, options.sseWaitMs);
    const readMs = connection.elapsedMs() - startedAtMs;
    const events = items.filter((i) => i.kind === 'event');
    const ids = events.flatMap((e) => (e.id === undefined ? [] : [e.id]));
    return [
      streamCheck(head.framing, connection.ended, readMs, events.length, items.length - events.length, head),
      idsCheck(events.length, ids, readMs),
      heartbeatCheck(items, readMs),
      await resumeCheck(target, options, ids),
    ];
  } finally {
    connection.close();
  }
}

async function openStream(target: ProbeTarget, options: SseOptions, extraHeaders: Record<string, string>): Promise<OpenStream | { failed: CheckResult }> {
  const connection = await ProbeConnection.open(target, options.timeoutMs);
  connection.send(getRequest(target, { headers: { ...SSE_REQUEST_HEADERS, ...extraHeaders } }));
  const head = await connection.nextHead(options.timeoutMs);
  if (head.kind === 'ok') return { connection, response: head.value };
  connection.close();
  const why = head.kind === 'timeout' ? `no answer within ${formatMs(options.timeoutMs)}` : head.kind === 'closed' ? 'the connection ended without an answer' : `not an HTTP answer (${head.message})`;
  return { failed: check('sse.stream', 'fail', why, { status: null, contentType: null }) };
}

function skipRest(): CheckResult[] {
  return (['sse.ids', 'sse.heartbeat', 'sse.resume'] as const).map((id) => check(id, 'skip', 'no event stream to read'));
}

/** Parses the body as it streams in, with eventsource-parser (the `eventsource` client's own parser). */
function followEvents(response: IncomingResponse): StreamItem[] {
  const items: StreamItem[] = [];
  // Times from when reading began (just after the head arrived).
  const startedAt = performance.now();
  let lastAtMs = 0;
  const push = (kind: StreamItem['kind'], id: string | undefined) => {
    const atMs = performance.now() - startedAt;
    items.push({ kind, atMs, id, heartbeat: kind === 'comment' || atMs - lastAtMs >= HEARTBEAT_GAP_MS });
    lastAtMs = atMs;
  };
  const parser = createParser({
    onEvent: (event) => push('event', event.id),
    onComment: () => push('comment', undefined),
  });
  const decoder = new TextDecoder();
  const feed = (chunk: Buffer) => parser.feed(decoder.decode(chunk, { stream: true }));
  for (const chunk of response.chunks) feed(chunk);
  response.onChunk = feed;
  return items;
}

function streamCheck(framing: string, ended: boolean, readMs: number, events: number, comments: number, head: IncomingResponse['head']): CheckResult {
  const measured = { status: head.status, contentType: head.headers['content-type'] ?? null, framing, endedEarly: ended, readMs: Math.round(readMs), events, comments };
  const seen = `${events} event(s) and ${comments} comment(s) in ${formatMs(readMs)}`;
  if (ended) {
    return check('sse.stream', 'warn', `${describeHead(head)}, text/event-stream (${framing}), but the stream ended: ${seen}; a client reconnects after every answer`, measured);
  }
  return check('sse.stream', 'ok', `${describeHead(head)}, text/event-stream (${framing}), held open: ${seen}`, measured);
}

function idsCheck(events: number, ids: string[], readMs: number): CheckResult {
  const measured = { events, withId: ids.length, lastId: ids.at(-1) ?? null };
  if (events === 0) return check('sse.ids', 'warn', `no event within ${formatMs(readMs)}, so no id: line seen (publish during the probe, or raise --sse-wait)`, measured);
  if (ids.length === events) return check('sse.ids', 'ok', `${events} event(s), every one with an id: line (last ${ids.at(-1)})`, measured);
  if (ids.length === 0) return check('sse.ids', 'warn', `${events} event(s), none with an id: line: a reconnecting client cannot say what it last saw`, measured);
  return check('sse.ids', 'warn', `${events - ids.length} of ${events} event(s) without an id: line`, measured);
}

function heartbeatCheck(items: StreamItem[], readMs: number): CheckResult {
  const beats = items.filter((i) => i.heartbeat);
  const comments = beats.filter((i) => i.kind === 'comment').length;
  const gaps = beats.slice(1).map((b, i) => b.atMs - beats[i]!.atMs);
  const measured = { heartbeats: beats.length, comments, intervalMs: gaps.length === 0 ? null : Math.round(Math.max(...gaps)) };
  if (beats.length === 0) {
    return check('sse.heartbeat', 'warn', `nothing kept the stream alive within ${formatMs(readMs)} (no comment, no event after a quiet spell): proxies may cut an idle stream`, measured);
  }
  const kind = comments === beats.length ? 'comment(s)' : comments === 0 ? 'event(s) after a quiet spell' : 'comment(s) and events after a quiet spell';
  const every = gaps.length === 0 ? `the first ${formatMs(beats[0]!.atMs)} after the answer` : `up to ${formatMs(Math.max(...gaps))} apart`;
  return check('sse.heartbeat', 'ok', `${beats.length} ${kind} in ${formatMs(readMs)}, ${every}`, measured);
}

/**
 * A browser reconnects with Last-Event-ID set to the last id it saw. Resuming from the first id seen (when
 * there were two or more) asks for events the probe knows exist: a server with replay sends them again.
 */
async function resumeCheck(target: ProbeTarget, options: SseOptions, ids: string[]): Promise<CheckResult> {
  if (ids.length === 0) return check('sse.resume', 'skip', 'no id seen to resume from', { lastEventId: null, replayed: null });
  const from = ids[0]!;
  const expected = ids.slice(1);
  const stream = await openStream(target, options, { 'Last-Event-ID': from });
  if ('failed' in stream) return { ...stream.failed, id: 'sse.resume', measured: { lastEventId: from, replayed: null } };
  const { connection, response } = stream;
  try {
    const head = response.head;
    if (head.status !== 200 || !/^text\/event-stream\b/i.test(head.headers['content-type'] ?? '')) {
      return check('sse.resume', 'fail', `Last-Event-ID: ${from} was answered ${describeHead(head)}, ${head.headers['content-type'] ?? 'no Content-Type'}`, { lastEventId: from, replayed: null });
    }
    if (expected.length === 0) {
      return check('sse.resume', 'ok', `Last-Event-ID: ${from} accepted (${head.status} text/event-stream); nothing was sent after it, so nothing to replay`, { lastEventId: from, replayed: 0 });
    }
    const items = followEvents(response);
    const replayedIds = () => items.filter((i) => i.kind === 'event').map((i) => i.id ?? '');
    await connection.waitUntil(() => replayedIds().length >= expected.length, options.timeoutMs);
    const got = replayedIds();
    const measured = { lastEventId: from, replayed: got.length, replayedIds: got };
    if (got.length === 0) {
      return check('sse.resume', 'warn', `Last-Event-ID: ${from} accepted, but none of the ${expected.length} later event(s) came back within ${formatMs(options.timeoutMs)}: a reconnecting client misses what was sent meanwhile`, measured);
    }
    return check('sse.resume', 'ok', `Last-Event-ID: ${from} answered with ${got.length} event(s) (ids: ${got.map((id) => id || 'none').join(', ')}); the probe had seen ${expected.length} after it`, measured);
  } finally {
    connection.close();
  }
}
