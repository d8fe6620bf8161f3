import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { ProbeConnection, connectionTokens, describeHead, type ProbeResponse, type Waited } from './connection.js';
import { getRequest, type ProbeTarget, type RequestOptions } from './target.js';

/** What happened to a second request sent on the connection after the first answer. */
export type SecondRequest = 'answered' | 'closed' | 'silent' | 'unparseable';

interface TwoRequests {
  first: Waited<ProbeResponse>;
  second: SecondRequest;
}

/**
 * Persistence is what the server does, not what it says: answer one request, then send another on the same
 * connection and see whether it is answered, the connection ends, or nothing happens within the timeout.
 */
export async function twoRequests(target: ProbeTarget, timeouts: ProbeTimeouts, request: RequestOptions): Promise<TwoRequests> {
  const connection = await ProbeConnection.open(target, timeouts.timeoutMs);
  try {
    connection.send(getRequest(target, request));
    const first = await connection.nextResponse(timeouts.timeoutMs);
    if (first.kind !== 'ok') return { first, second: 'closed' };
    if (!connection.send(getRequest(target, request))) return { first, second: 'closed' };
    const second = await connection.nextResponse(timeouts.timeoutMs);
    return { first, second: secondOutcome(second) };
  } finally {
    connection.close();
  }
}

function secondOutcome(second: Waited<ProbeResponse>): SecondRequest {
  if (second.kind === 'ok') return 'answered';
  if (second.kind === 'timeout') return 'silent';
  return second.kind;
}

function noFirstAnswer(id: CheckResult['id'], first: Exclude<Waited<ProbeResponse>, { kind: 'ok' }>, timeouts: ProbeTimeouts): CheckResult {
  const why =
    first.kind === 'timeout'
      ? `no answer within ${formatMs(timeouts.timeoutMs)}`
      : first.kind === 'closed'
        ? 'the connection ended without an answer'
        : `not an HTTP answer (${first.message})`;
  return check(id, 'fail', why, { persistent: null });
}

/** RFC 9112 §9.3: an HTTP/1.1 connection persists unless either side says `Connection: close`. */
export async function probeHttp11(target: ProbeTarget, timeouts: ProbeTimeouts): Promise<CheckResult> {
  const { first, second } = await twoRequests(target, timeouts, { version: '1.1' });
  if (first.kind !== 'ok') return noFirstAnswer('keepalive.http11', first, timeouts);
  const saidClose = connectionTokens(first.value).includes('close');
  const measured = { persistent: second === 'answered', saidClose, keepAliveHeader: first.value.headers['keep-alive'] ?? null };
  const head = describeHead(first.value);
  switch (second) {
    case 'answered':
      return saidClose
        ? check('keepalive.http11', 'warn', `${head}, yet a 2nd request on the connection was answered`, measured)
        : check('keepalive.http11', 'ok', `${head}; a 2nd request on the same connection was answered`, measured);
    case 'closed':
      return saidClose
        ? check('keepalive.http11', 'warn', `${head}: closes after every answer, no keep-alive`, measured)
        : check('keepalive.http11', 'fail', `${head}, then closed before a 2nd request was answered: 1.1 persistence is the default (RFC 9112 §9.3) and a client reusing the connection loses its request`, measured);
    case 'silent':
      return check('keepalive.http11', 'fail', `${head}; a 2nd request got no answer within ${formatMs(timeouts.timeoutMs)} and the connection stayed open`, measured);
    case 'unparseable':
      return check('keepalive.http11', 'fail', `${head}; the answer to a 2nd request could not be parsed`, measured);
  }
}

/** RFC 9112 §9.3: an HTTP/1.0 request without `Connection: keep-alive` gets a connection that closes. */
export async function probeHttp10(target: ProbeTarget, timeouts: ProbeTimeouts): Promise<CheckResult> {
  const { first, second } = await twoRequests(target, timeouts, { version: '1.0' });
  if (first.kind !== 'ok') return noFirstAnswer('keepalive.http10', first, timeouts);
  const saidKeepAlive = connectionTokens(first.value).includes('keep-alive');
  const measured = { persistent: second === 'answered', saidKeepAlive };
  const head = describeHead(first.value);
  switch (second) {
    case 'closed':
      return check('keepalive.http10', 'ok', `${head}; closed after the answer, as a 1.0 client without keep-alive expects`, measured);
    case 'answered':
      return check(
        'keepalive.http10',
        'warn',
        `${head}; kept the connection open and answered a 2nd request though the client did not ask for keep-alive${saidKeepAlive ? '' : ' (nor said it would)'}`,
        measured,
      );
    case 'silent':
      return check('keepalive.http10', 'warn', `${head}; did not close within ${formatMs(timeouts.timeoutMs)} after the answer (a 1.0 client waits for the close)`, measured);
    case 'unparseable':
      return check('keepalive.http10', 'fail', `${head}; the connection went on with bytes that are not an HTTP answer`, measured);
  }
}

/** RFC 9112 §C.2.2 (RFC 2068 §19.7.1): a 1.0 client asks with `Connection: keep-alive`; the server says so if it agrees. */
export async function probeHttp10KeepAlive(target: ProbeTarget, timeouts: ProbeTimeouts): Promise<CheckResult> {
  const { first, second } = await twoRequests(target, timeouts, { version: '1.0', connection: 'keep-alive' });
  if (first.kind !== 'ok') return noFirstAnswer('keepalive.http10-keepalive', first, timeouts);
  const saidKeepAlive = connectionTokens(first.value).includes('keep-alive');
  const measured = { persistent: second === 'answered', saidKeepAlive, keepAliveHeader: first.value.headers['keep-alive'] ?? null };
  const head = describeHead(first.value);
  switch (second) {
    case 'answered':
      return saidKeepAlive
        ? check('keepalive.http10-keepalive', 'ok', `${head}; a 2nd request on the same connection was answered`, measured)
        : check('keepalive.http10-keepalive', 'warn', `${head}; kept it open without saying Connection: keep-alive, so a 1.0 client closes it anyway`, measured);
    case 'closed':
      return saidKeepAlive
        ? check('keepalive.http10-keepalive', 'fail', `${head}, then closed before a 2nd request was answered`, measured)
        : check('keepalive.http10-keepalive', 'warn', `${head}; no keep-alive for 1.0 clients: closed after the answer (allowed; a connection per request${lengthUnknown(first.value)})`, measured);
    case 'silent':
      return check('keepalive.http10-keepalive', 'fail', `${head}; a 2nd request got no answer within ${formatMs(timeouts.timeoutMs)} and the connection stayed open`, measured);
    case 'unparseable':
      return check('keepalive.http10-keepalive', 'fail', `${head}; the answer to a 2nd request could not be parsed`, measured);
  }
}

/** A 1.0 answer without Content-Length can only end with the close (no chunked in 1.0): say so when it explains one. */
function lengthUnknown(response: ProbeResponse): string {
  return response.framing === 'close-delimited' || response.framing === 'chunked'
    ? '; this answer had no Content-Length, and a 1.0 answer without one can only end with the close'
    : '';
}
