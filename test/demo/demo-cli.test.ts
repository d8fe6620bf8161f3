import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holdfast, readJsonLines } from '../helpers/cli.js';
import { eventually } from '../helpers/until.js';

test('holdfast demo: the page (icon, phone viewport, the real control port) and a quiet access log', async (t) => {
  const child = holdfast(t, ['demo', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0']);
  const lines: Record<string, unknown>[] = [];
  readJsonLines(child.stdout!, (line) => lines.push(line));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  await eventually(() => /open http:\/\/127\.0\.0\.1:\d+\//.test(stderr), 60_000, `the demo's URL on stderr (${stderr})`);
  const url = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr)![1]!;
  // stdout and stderr are two pipes: the start line may be read after the URL.
  await eventually(() => lines.some((l) => l.msg === 'holdfast started'), 10_000, 'the start line on stdout');
  const started = lines.find((l) => l.msg === 'holdfast started') as { control: { port: number } };

  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<link rel="icon" href="data:image\/svg\+xml,/, 'an inline icon: the browser asks for no /favicon.ico');
  assert.match(html, /<meta name="viewport" content="width=device-width/, 'laid out for a phone, not a zoomed-out desktop page');
  assert.ok(html.includes(`--control 127.0.0.1:${started.control.port}`), 'the publish command names the control port in use');
  const icon = await fetch(`${url}/favicon.ico`);
  assert.equal(icon.status, 200, 'a client that asks for /favicon.ico anyway gets no 404');
  assert.match(icon.headers.get('content-type') ?? '', /^image\/svg\+xml/);
  await icon.text();

  // The page's own polling: answered, but not an access line a second in the terminal.
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${url}/api/info`)).status, 200);
  // A request after them whose line proves theirs would have been written by now.
  await (await fetch(`${url}/after-polling`)).text();
  await eventually(() => lines.some((l) => l.msg === 'access' && l.target === '/after-polling'), 10_000, 'the access line of /after-polling');
  const logged = lines.filter((l) => l.msg === 'access').map((l) => l.target);
  assert.deepEqual(logged, ['/', '/favicon.ico', '/after-polling']);

  child.kill('SIGTERM');
  assert.equal((await child.output).code, 0);
});
