import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { ProbeConnection, connectionTokens, describeHead } from './connection.js';
import { getRequest, type ProbeTarget } from './target.js';

/**
 * RFC 9112 §9.6: after answering a request that carried `Connection: close`, the server closes the connection
 * and should say `Connection: close` in that answer. The probe sends one more request anyway: a server that
 * answers it has ignored the close.
 */
export async function probeConnectionClose(target: ProbeTarget, timeouts: ProbeTimeouts): Promise<CheckResult> {
  const connection = await ProbeConnection.open(target, timeouts.timeoutMs);
  try {
    connection.send(getRequest(target, { connection: 'close' }));
    const answer = await connection.nextResponse(timeouts.timeoutMs);
    if (answer.kind !== 'ok') {
      return check('connection-close', 'fail', answer.kind === 'timeout' ? `no answer within ${formatMs(timeouts.timeoutMs)}` : 'the connection ended without an answer', { closed: null, saidClose: null });
    }
    const saidClose = connectionTokens(answer.value).includes('close');
    const head = describeHead(answer.value);
    const answeredAtMs = connection.elapsedMs();
    connection.send(getRequest(target));
    const next = await connection.nextResponse(timeouts.timeoutMs);
    const measured = { closed: next.kind === 'closed', saidClose, answeredAnother: next.kind === 'ok' };
    if (next.kind === 'ok') return check('connection-close', 'fail', `${head}; ignored the close: answered another request on the same connection`, measured);
    if (next.kind === 'timeout') return check('connection-close', 'fail', `${head}; still open ${formatMs(connection.elapsedMs() - answeredAtMs)} after the answer`, measured);
    if (next.kind === 'unparseable') return check('connection-close', 'fail', `${head}; then bytes that are not an HTTP answer`, measured);
    return saidClose
      ? check('connection-close', 'ok', `${head}; closed after the answer`, measured)
      : check('connection-close', 'warn', `${head}; closed after the answer but did not say Connection: close (RFC 9112 §9.6 asks it to)`, measured);
  } finally {
    connection.close();
  }
}
