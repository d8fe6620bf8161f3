/**
 * Resolves once `condition` holds, checking after each turn of the event loop (real setImmediate, which the
 * fake clocks in these tests never mock): a condition, not a sleep. Fails after `maxTurns` turns, so a
 * condition that never comes fails the test with what it waited for instead of hanging it.
 */
export async function until(condition: () => boolean, what = 'a condition', maxTurns = 200_000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (condition()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * For waits on another process (Redis, NATS, a child Holdfast): resolves once `condition` holds, checking
 * every few milliseconds of real time, and fails after `timeoutMs` naming what it waited for. Not for tests
 * on a fake clock (its pauses are real timers).
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what = 'a condition',
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * A bounded wait on a promise that real I/O settles (a socket event, an answer): rejects naming `what` after
 * `ms` of real time. For tests that fake setImmediate, where `until` cannot turn.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = realSetTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    realClearTimeout(timer);
  }
}

// Taken before any test fakes the clock (mock.timers replaces the globals when enabled), so a bound on a
// wait is real time even inside a test that ticks a fake setTimeout: it never fires early on a tick.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

/**
 * For readiness polls of a server still starting: null when the connection was refused (nothing listens
 * yet, the error's own code or its cause's, as fetch and NATS wrap it), the error rethrown otherwise, so a
 * server that answers wrongly fails the test at once instead of being polled until the deadline.
 */
export function nullIfRefused(err: unknown): null {
  const { code, cause } = err as { code?: unknown; cause?: { code?: unknown } };
  if (code === 'ECONNREFUSED' || cause?.code === 'ECONNREFUSED') return null;
  throw err;
}
