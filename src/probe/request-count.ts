import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { ProbeConnection, connectionTokens } from './connection.js';
import { getRequest, type ProbeTarget } from './target.js';

/**
 * How many requests one connection serves before the server closes it (nginx keepalive_requests, Holdfast
 * limits.maxRequestsPerConnection), one request at a time, up to `maxRequests`: past that, "at least".
 * A server that stops should say `Connection: close` on its last answer; otherwise a client that sends the
 * next request races the close and must retry it (the keep-alive race, RFC 9112 §9.3.1).
 */
export async function probeRequestCount(target: ProbeTarget, timeouts: ProbeTimeouts, maxRequests: number): Promise<CheckResult> {
  const connection = await ProbeConnection.open(target, timeouts.timeoutMs);
  let served = 0;
  let lastSaidClose = false;
  try {
    while (served < maxRequests) {
      if (!connection.send(getRequest(target))) break;
      const answer = await connection.nextResponse(timeouts.timeoutMs);
      if (answer.kind === 'timeout') {
        return check('keepalive.requests', 'fail', `request ${served + 1} got no answer within ${formatMs(timeouts.timeoutMs)}`, { served, atLeast: false, lastSaidClose });
      }
      if (answer.kind !== 'ok') break;
      served++;
      lastSaidClose = connectionTokens(answer.value).includes('close');
      if (lastSaidClose) break;
    }
  } finally {
    connection.close();
  }
  const measured = { served, atLeast: served >= maxRequests, lastSaidClose };
  if (served >= maxRequests) {
    return check('keepalive.requests', 'ok', `served ${served} requests on one connection, the cap of this probe: at least ${maxRequests}`, measured);
  }
  if (served === 0) return check('keepalive.requests', 'fail', 'the connection ended before the first answer', measured);
  return lastSaidClose
    ? check('keepalive.requests', 'ok', `served ${served} request(s), said Connection: close on the last, then closed`, measured)
    : check('keepalive.requests', 'warn', `served ${served} request(s), then closed without Connection: close on the last answer (a client sending the next one races the close)`, measured);
}
