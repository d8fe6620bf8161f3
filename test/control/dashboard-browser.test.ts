import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { startDashboardLoad } from './dashboard-load.js';

/** Debian's chromium (scripts/services.sh installs it); no browser is downloaded. */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = resolve('test-results');

/** The text of the first element matching `selector`, once it equals `expected` (bounded by Playwright's timeout). */
async function expectText(page: Page, selector: string, expected: string): Promise<void> {
  // A page function as text: the tests compile without the DOM's types.
  const condition = `document.querySelector(${JSON.stringify(selector)})?.textContent === ${JSON.stringify(expected)}`;
  await page.waitForFunction(condition, undefined, { timeout: 20_000 }).catch(async (err: unknown) => {
    const actual = await page.locator(selector).first().textContent().catch(() => null);
    throw new Error(`${selector}: expected "${expected}", page shows ${JSON.stringify(actual)} (${(err as Error).message.split('\n')[0]})`);
  });
}

test('the dashboard in Chromium shows the numbers of real load, at 1280 and 375 px wide', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent: run scripts/services.sh (as root) to install Debian's chromium` }, async (t) => {
  const load = await startDashboardLoad(t);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failed: string[] = [];
  page.on('response', (res) => {
    if (res.status() >= 400) failed.push(`${res.status()} ${res.url()}`);
  });
  page.on('pageerror', (err) => failed.push(`page error: ${err.message}`));
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
  // The channel rows come first in the table, busiest first.
  const rows = page.locator('#channels tr');
  assert.deepEqual([await rows.nth(0).getAttribute('data-channel'), await rows.nth(1).getAttribute('data-channel')], ['alpha', 'beta']);

  mkdirSync(SCREENSHOTS, { recursive: true });
  const wide = resolve(SCREENSHOTS, 'dashboard-1280.png');
  await page.screenshot({ path: wide, fullPage: true });

  await page.setViewportSize({ width: 375, height: 800 });
  // A snapshot drawn at the new width, then nothing wider than the screen (no sideways scrolling on a phone).
  await expectText(page, '[data-k="held.sse"]', String(held));
  const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 375 px screen`);
  const narrow = resolve(SCREENSHOTS, 'dashboard-375.png');
  await page.screenshot({ path: narrow, fullPage: true });
  assert.deepEqual(failed, [], 'no failed request (favicon included) and no script error');
  t.diagnostic(`screenshots: ${wide} ${narrow}`);
});
