import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { ProbeConnection, connectionTokens } from './connection.js';
import { getRequest, type ProbeTarget } from './target.js';

/**
 * How long the server keeps an idle keep-alive connection open after an answer, waiting at most `idleMaxMs`
 * (then "at least"). Compared with what it advertises in `Keep-Alive: timeout=N` (RFC 2068 §19.7.1.1): closing
 * before the advertised time is what makes a client that trusts the hint lose a request.
 */
/** Below this an idle connection is of no use to a client (Node's own default keeps one for 5 s). */
const BARELY_IDLE_MS = 1000;

export async function probeIdleTimeout(target: ProbeTarget, timeouts: ProbeTimeouts, idleMaxMs: number): Promise<CheckResult> {
  const connection = await ProbeConnection.open(target, timeouts.timeoutMs);
  try {
    connection.send(getRequest(target));
    const answer = await connection.nextResponse(timeouts.timeoutMs);
    if (answer.kind !== 'ok') return check('keepalive.idle', 'fail', 'no answer to start the idle wait from', { idleClosedAfterMs: null, atLeast: false });
    const answeredAtMs = connection.elapsedMs();
    const advertisedSec = advertisedTimeoutSec(answer.value.headers['keep-alive']);
    const advertised = advertisedSec === null ? 'no Keep-Alive: timeout advertised' : `advertised Keep-Alive: timeout=${advertisedSec}`;
    const measured = { idleClosedAfterMs: null as number | null, atLeast: false, advertisedTimeoutSec: advertisedSec };
    if (connectionTokens(answer.value).includes('close')) {
      return check('keepalive.idle', 'skip', 'the answer said Connection: close: nothing stays idle', measured);
    }
    const end = await connection.waitEnd(idleMaxMs);
    if (end.kind === 'unparseable') {
      return check('keepalive.idle', 'fail', `sent bytes that are not an HTTP answer while the connection was idle (${end.message})`, measured);
    }
    if (end.kind !== 'ok') {
      measured.atLeast = true;
      measured.idleClosedAfterMs = idleMaxMs;
      return check('keepalive.idle', 'ok', `still open after ${formatMs(idleMaxMs)} idle, the cap of this probe (--idle-max): at least ${formatMs(idleMaxMs)}; ${advertised}`, measured);
    }
    // A close that raced the answer's last bytes counts as no idle time at all.
    const idleMs = Math.max(0, end.value - answeredAtMs);
    measured.idleClosedAfterMs = Math.round(idleMs);
    if (idleMs < BARELY_IDLE_MS) {
      return check('keepalive.idle', 'warn', `closed ${formatMs(idleMs)} after the answer: no idle keep-alive to speak of, clients reconnect for nearly every request; ${advertised}`, measured);
    }
    if (advertisedSec !== null && idleMs < advertisedSec * 1000) {
      return check('keepalive.idle', 'warn', `closed after ${formatMs(idleMs)} idle, before the ${advertised}: a client trusting the hint races the close`, measured);
    }
    return check('keepalive.idle', 'ok', `closed after ${formatMs(idleMs)} idle; ${advertised}`, measured);
  } finally {
    connection.close();
  }
}

function advertisedTimeoutSec(keepAlive: string | undefined): number | null {
  const match = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(keepAlive ?? '');
  return match === null ? null : Number(match[1]);
}
