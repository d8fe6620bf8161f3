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
