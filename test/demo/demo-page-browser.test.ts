import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publishMessage } from '../../src/control/publish-client.js';
import { createDemoBackend, DEMO_CHANNEL } from '../../src/demo/backend.js';
import { chromiumMissing, expectText, horizontalOverflow, launchChromium, screenshot, watchFailures } from '../helpers/chromium.js';
import { startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { listen } from '../helpers/listen.js';

const firstSseLine = '#sse li:first-child';

test('the demo page in Chromium at 375 px: ids only where events have them, the gap event shown, an honest status', { skip: chromiumMissing }, async (t) => {
  let hf: TestHoldfast | null = null;
  const backend = createDemoBackend(() => hf?.controlUrl ?? '');
  const port = await listen(t, backend);
  // History keeps one item per channel, so a client that was away for two publishes gets the gap event.
  hf = await startTestHoldfast(t, [`http://127.0.0.1:${port}`], { push: { historyMaxItems: 1 } });
  const control = hf.controlUrl;
  const publish = (message: string, id?: string) => publishMessage({ controlUrl: control, channel: DEMO_CHANNEL, message, id });

  const browser = await launchChromium(t);
  const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
  const failed = watchFailures(page);
  await page.goto(`${hf.url}/`, { timeout: 30_000 });
  await expectText(page, '#sse-state', 'open');
  await expectText(page, firstSseLine, 'connected through Holdfast');

  // `holdfast publish demo "..."` without --id: the event has no id line, and the page says so.
  assert.equal((await publish('without an id')).delivered, 2, 'the page\'s SSE stream and its long-poll');
  await expectText(page, firstSseLine, '(no id) without an id');
  // The page's own publish: the demo backend gives it an id.
  await page.fill('#msg', 'from the form');
  await page.click('#pub button');
  await expectText(page, firstSseLine, '#1 from the form');
  await publish('again without an id');
  // An EventSource keeps the last id through an event without one; the page does not show it as this event's.
  await expectText(page, firstSseLine, '(no id) again without an id');

  // The server ends the stream; two publishes while the browser waits to reconnect push #1 out of history.
  await publishRaw(control, { items: [{ channel: DEMO_CHANNEL, formats: { 'http-stream': { action: 'close' } } }] });
  await expectText(page, '#sse-state', 'reconnecting: messages after #1 that Holdfast still has in history will be replayed');
  await publish('missed while away', 'x1');
  await publish('kept in history', 'x2');
  await expectText(page, firstSseLine, '#x2 kept in history');
  await expectText(page, '#sse li.gap', 'missed messages: history no longer reaches #1, so some messages published while reconnecting were lost');
  await expectText(page, '#sse-state', 'open');

  const overflow = await horizontalOverflow(page);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 375 px screen`);
  const shot = await screenshot(page, 'demo-375.png');
  assert.deepEqual(failed, [], 'no failed request (no favicon 404) and no script error');
  t.diagnostic(`screenshot: ${shot}`);
});

async function publishRaw(controlUrl: string, body: unknown): Promise<void> {
  const res = await fetch(`${controlUrl}/publish/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.text());
}

