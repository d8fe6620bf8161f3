import { randomBytes } from 'node:crypto';
import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { ProbeConnection, connectionTokens, type ProbeResponse } from './connection.js';
import { getRequest, pathWithMarker, type ProbeTarget } from './target.js';

const PIPELINED = 3;

/**
 * Three GETs in one write (RFC 9112 §9.3.2: a server must answer pipelined requests in the order they came).
 * Each request carries its own query marker; when the server echoes the URL (in a header or the body), every
 * answer is matched to its request, so an answer out of order or one missing shows by name. When nothing is
 * echoed, the framing still shows whether three whole answers came back.
 */
export async function probePipelining(target: ProbeTarget, timeouts: ProbeTimeouts): Promise<CheckResult> {
  const token = randomBytes(4).toString('hex');
  const markers = Array.from({ length: PIPELINED }, (_, i) => `${token}-${i + 1}`);
  const connection = await ProbeConnection.open(target, timeouts.timeoutMs);
  const answers: ProbeResponse[] = [];
  let stop: 'closed' | 'timeout' | 'unparseable' | null = null;
  try {
    connection.send(markers.map((marker) => getRequest(target, { path: pathWithMarker(target.path, marker) })).join(''));
    while (answers.length < PIPELINED) {
      const answer = await connection.nextResponse(timeouts.timeoutMs);
      if (answer.kind !== 'ok') {
        stop = answer.kind;
        break;
      }
      answers.push(answer.value);
    }
  } finally {
    connection.close();
  }
  // Which request each answer names: its 1-based number, 0 when it echoes none, -1 when several.
  const matched = answers.map((answer) => {
    const text = `${Object.values(answer.headers).join('\n')}\n${answer.body.toString('latin1')}`;
    const found = markers.flatMap((marker, i) => (text.includes(marker) ? [i + 1] : []));
    return found.length === 1 ? found[0]! : found.length === 0 ? 0 : -1;
  });
  const echoed = matched.length > 0 && matched.every((n) => n > 0);
  const inOrder = echoed && matched.every((n, i) => n === i + 1);
  const measured = { answers: answers.length, answeredRequests: echoed ? matched : [], orderVerified: echoed };
  const named = `answers for request${matched.length > 1 ? 's' : ''} ${matched.join(', ')}`;

  if (answers.length === PIPELINED) {
    if (!echoed) {
      return check('pipelining', 'ok', `${PIPELINED} whole answers to ${PIPELINED} requests sent in one write; the server does not echo the URL, so their order cannot be checked`, measured);
    }
    return inOrder
      ? check('pipelining', 'ok', `${PIPELINED} requests in one write: ${PIPELINED} whole answers, in order (matched by the echoed query markers)`, measured)
      : check('pipelining', 'fail', `${PIPELINED} requests in one write: ${named}, out of order (RFC 9112 §9.3.2)`, measured);
  }
  if (echoed && !inOrder) {
    const missing = markers.map((_, i) => i + 1).filter((n) => !matched.includes(n));
    return check('pipelining', 'fail', `${PIPELINED} requests in one write: ${named}; request ${missing.join(', ')} dropped or out of order, then ${describeStop(stop, timeouts)}`, measured);
  }
  const saidClose = answers.length > 0 && connectionTokens(answers.at(-1)!).includes('close');
  if (stop === 'closed' && answers.length > 0 && saidClose) {
    return check('pipelining', 'warn', `${PIPELINED} requests in one write: ${answers.length} answered, the last with Connection: close, then closed: no pipelining (a client must resend the rest)`, measured);
  }
  return check('pipelining', 'fail', `${PIPELINED} requests in one write: ${answers.length} answered${echoed ? ` (${named})` : ''}, then ${describeStop(stop, timeouts)}`, measured);
}

function describeStop(stop: 'closed' | 'timeout' | 'unparseable' | null, timeouts: ProbeTimeouts): string {
  switch (stop) {
    case 'closed':
      return 'the connection ended';
    case 'timeout':
      return `nothing more within ${formatMs(timeouts.timeoutMs)}`;
    case 'unparseable':
      return 'bytes that are not an HTTP answer (framing broken)';
    case null:
      return 'nothing';
  }
}
