import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { deadPort, startBackend } from '../helpers/backend.js';
import { holdfast } from '../helpers/cli.js';
import { HeldStream, heldCount, startGripBackend } from '../hold/push-helpers.js';

test('holdfast publish: says how many held connections got it, and a duplicate id exits 3 saying so', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('cli');
    instruct.setHoldStream();
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/');
  await heldCount(hf, 1);
  const control = `127.0.0.1:${hf.controlAddress.port}`;
  const first = await holdfast(t, ['publish', 'cli', 'hello', '--id', 'm1', '--control', control]).output;
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, 'published to cli: delivered to 1 held connection(s) on that node\n');
  await client.waitForText('hello');
  const again = await holdfast(t, ['publish', 'cli', 'hello again', '--id', 'm1', '--control', control]).output;
  assert.equal(again.code, 3);
  assert.equal(again.stdout, '');
  assert.match(again.stderr, /^holdfast: duplicate, not published: cli already had an item with id "m1" within push.dedupWindowMs/);
  // Proof that the duplicate was not delivered: a later message arrives, the duplicate's text never did.
  const later = await holdfast(t, ['publish', 'cli', 'later', '--control', control]).output;
  assert.equal(later.code, 0, later.stderr);
  await client.waitForText('later');
  assert.ok(!client.body.includes('hello again'), client.body);
});

test('holdfast publish to a port where nothing listens: the socket\'s reason and a hint, exit 1', async (t) => {
  const port = await deadPort();
  const { code, stdout, stderr } = await holdfast(t, ['publish', 'news', 'hi', '--control', `127.0.0.1:${port}`]).output;
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.ok(stderr.includes(`cannot reach the control listener at 127.0.0.1:${port}: ECONNREFUSED 127.0.0.1:${port}`), stderr);
  assert.match(stderr, /is Holdfast running\? --control/);
  assert.doesNotMatch(stderr, /fetch failed/);
});

test('holdfast publish --control pointed at the client port: the backend\'s page is recognised as not Holdfast\'s control listener', async (t) => {
  const backend = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html>\n<html><head><title>Shop front</title></head><body>' + 'x'.repeat(5000) + '</body></html>');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const { code, stdout, stderr } = await holdfast(t, ['publish', 'news', 'hi', '--control', `127.0.0.1:${hf.port}`]).output;
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.ok(stderr.includes(`127.0.0.1:${hf.port} answered, but not as Holdfast's control listener: HTTP 200 text/html, a page titled "Shop front"`), stderr);
  assert.match(stderr, /--control takes the control listener/);
  assert.ok(stderr.length < 600, `one short answer, not the page: ${stderr.length} characters`);
  assert.equal(backend.seen.length, 1, 'the publish went through the client port to the backend');
});
