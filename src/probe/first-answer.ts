import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { ProbeConnection, describeHead, type IncomingResponse } from './connection.js';
import { SSE_REQUEST_HEADERS, getRequest, type ProbeTarget } from './target.js';

export interface FirstAnswer {
  result: CheckResult;
  /** The answer was whole: the connection checks can use this URL. */
  complete: boolean;
  /** The answer is an event stream, still open: the SSE checks read on from here. */
  stream: { connection: ProbeConnection; response: IncomingResponse } | null;
  server: string | null;
}

/**
 * One GET (as an EventSource would send it with --sse): does the URL answer at all, and is the answer a whole response (the connection checks need
 * one) or a stream that stays open (then it is an SSE URL, read on by the SSE checks)?
 * Throws ProbeUnreachableError when it cannot connect.
 */
export async function probeFirstAnswer(target: ProbeTarget, timeouts: ProbeTimeouts, asSseClient: boolean): Promise<FirstAnswer> {
  const connection = await ProbeConnection.open(target, timeouts.timeoutMs);
  connection.send(getRequest(target, asSseClient ? { headers: SSE_REQUEST_HEADERS } : {}));
  const head = await connection.nextHead(timeouts.timeoutMs);
  if (head.kind !== 'ok') {
    connection.close();
    const why =
      head.kind === 'timeout'
        ? `no answer within ${formatMs(timeouts.timeoutMs)}`
        : head.kind === 'closed'
          ? `the connection was ${head.reset ? 'reset' : 'closed'} without an answer`
          : `not an HTTP answer (${head.message})`;
    return { result: check('answer', 'fail', why, { status: null }), complete: false, stream: null, server: null };
  }
  const { head: first } = head.value;
  const server = first.headers.server ?? null;
  const measured = {
    status: first.status,
    httpVersion: first.httpVersion,
    framing: first.framing,
    contentType: first.headers['content-type'] ?? null,
    server,
  };
  if (/^text\/event-stream\b/i.test(first.headers['content-type'] ?? '')) {
    return {
      result: check('answer', 'ok', `${describeHead(first)}, text/event-stream: an SSE URL, so the SSE checks run on it`, measured),
      complete: false,
      stream: { connection, response: head.value },
      server,
    };
  }
  const whole = await connection.nextResponse(timeouts.timeoutMs);
  connection.close();
  if (whole.kind !== 'ok') {
    const why = whole.kind === 'timeout' ? `did not end within ${formatMs(timeouts.timeoutMs)} (a held response?)` : whole.kind === 'closed' ? 'was cut by a close' : `broke off (${whole.message})`;
    return {
      result: check('answer', 'warn', `${describeHead(first)}; the body ${why}: the connection checks need a URL that answers at once`, measured),
      complete: false,
      stream: null,
      server,
    };
  }
  // The connection checks hold for an error answer too, but the URL may not be the one meant.
  const verdict = first.status >= 400 ? 'warn' : 'ok';
  const hint = first.status < 400 ? '' : `; an error status (the connection checks still apply${asSseClient ? '' : '; an SSE URL may need --sse'})`;
  return {
    result: check(
      'answer',
      verdict,
      `${describeHead(first)}, ${whole.value.body.length} body bytes (${first.framing}) in ${formatMs(first.atMs)}${hint}`,
      { ...measured, bodyBytes: whole.value.body.length },
    ),
    complete: true,
    stream: null,
    server,
  };
}
