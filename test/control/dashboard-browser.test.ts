import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromiumMissing, expectText, horizontalOverflow, launchChromium, screenshot, watchFailures } from '../helpers/chromium.js';
import { startDashboardLoad } from './dashboard-load.js';

test('the dashboard in Chromium shows the numbers of real load, at 1280 and 375 px wide', { skip: chromiumMissing }, async (t) => {
  const load = await startDashboardLoad(t);
  const browser = await launchChromium(t);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failed = watchFailures(page);
  await page.goto(`${load.hf.controlUrl}/dashboard`, { timeout: 30_000 });

  await expectText(page, '#state', 'live');
  const held = load.held.alpha + load.held.beta;
  await expectText(page, '[data-k="held.sse"]', String(held));
  await expectText(page, '[data-k="connections.client"]', String(held));
  await expectText(page, '[data-k="channels.total"]', '2');
  await expectText(page, '[data-k="channels.subscriptions"]', String(held));
  await expectText(page, 'tr[data-channel="alpha"] td.n', String(load.held.alpha));
  await expectText(page, 'tr[data-channel="beta"] td.n', String(load.held.beta));
  await expectText(page, '[data-k="rates.publishedTotal"]', '1');
  await expectText(page, '[data-k="rates.deliveredTotal"]', String(load.delivered));
  await expectText(page, `tr[data-code="${load.refusedCode}"] td.n`, '1');
  await expectText(page, `tr[data-server="${load.backendUrl}"] td.up`, 'up');
  await expectText(page, '[data-k="bus.driver"]', 'memory');
  // The channel rows come busiest first.
  const rows = page.locator('#channels tr');
  assert.deepEqual([await rows.nth(0).getAttribute('data-channel'), await rows.nth(1).getAttribute('data-channel')], ['alpha', 'beta']);
  const wide = await screenshot(page, 'dashboard-1280.png');

  await page.setViewportSize({ width: 375, height: 800 });
  await expectText(page, '[data-k="held.sse"]', String(held));
  const overflow = await horizontalOverflow(page);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 375 px screen`);
  const narrow = await screenshot(page, 'dashboard-375.png');
  assert.deepEqual(failed, [], 'no failed request (favicon included) and no script error');
  t.diagnostic(`screenshots: ${wide} ${narrow}`);
});
