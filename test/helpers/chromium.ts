import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (scripts/services.sh installs it); playwright-core drives it, no browser is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/** For `test(name, { skip: chromiumMissing }, ...)`: false when present, else why the test is skipped. */
export const chromiumMissing: string | false = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is absent: run scripts/services.sh (as root) to install Debian's chromium`;

/** Screenshots go here (git-ignored); tests print their paths. */
export const SCREENSHOTS = resolve('test-results');

export async function launchChromium(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  t.after(() => browser.close());
  return browser;
}

/** Collects what went wrong on a page: any answer of 400 or more (a missing favicon, say) and script errors. */
export function watchFailures(page: Page): string[] {
  const failed: string[] = [];
  page.on('response', (res) => {
    if (res.status() >= 400) failed.push(`${res.status()} ${res.url()}`);
  });
  page.on('pageerror', (err) => failed.push(`page error: ${err.message}`));
  return failed;
}

/** Waits (bounded) until the first element matching `selector` has exactly the text `expected`. */
export async function expectText(page: Page, selector: string, expected: string, timeoutMs = 20_000): Promise<void> {
  // A page function as text: the tests compile without the DOM's types.
  const condition = `document.querySelector(${JSON.stringify(selector)})?.textContent === ${JSON.stringify(expected)}`;
  await page.waitForFunction(condition, undefined, { timeout: timeoutMs }).catch(async (err: unknown) => {
    const actual = await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => null);
    throw new Error(`${selector}: expected "${expected}", page shows ${JSON.stringify(actual)} (${(err as Error).message.split('\n')[0]})`);
  });
}

/** How many pixels the page is wider than its viewport (more than 0: a phone would scroll sideways). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
}

/** A full-page screenshot in SCREENSHOTS; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = resolve(SCREENSHOTS, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}
