import type { TestContext } from 'node:test';
import type { RawClient } from './raw.js';

/**
 * Send `bytes` one byte every 20 ms (a slowloris) until the server ends the connection; how long that took
 * and how many bytes got out. The server must cut it: a test using this hangs until its own timeout otherwise.
 */
export async function trickleUntilCut(t: TestContext, client: RawClient, bytes: Buffer): Promise<{ elapsed: number; sent: number }> {
  const started = Date.now();
  let sent = 0;
  const trickle = setInterval(() => {
    if (client.ended || sent >= bytes.length) return clearInterval(trickle);
    client.write(bytes.subarray(sent, sent + 1));
    sent++;
  }, 20);
  t.after(() => clearInterval(trickle));
  await client.waitEnd();
  clearInterval(trickle);
  return { elapsed: Date.now() - started, sent };
}
