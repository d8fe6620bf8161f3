import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { HeldStream, heldCount, publishRaw, startGripBackend, streamItem } from './push-helpers.js';

test('slow consumer: a subscriber that never reads is dropped past push.maxQueuedBytesPerConnection; another gets everything', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('firehose');
    instruct.setHoldStream();
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url], { push: { maxQueuedBytesPerConnection: 65_536 } });
  const stalled = await HeldStream.open(t, hf.port, '/firehose');
  await stalled.waitHead();
  stalled.socket.pause();
  const reader = await HeldStream.open(t, hf.port, '/firehose');
  await heldCount(hf, 2);

  const size = 64 * 1024;
  const content = (n: number) => `<${String(n).padStart(6, '0')}>`.padEnd(size, '.');
  let published = 0;
  // Kernel buffers on loopback take a few MB before Holdfast's own queue grows; 40 MB is the bound.
  while ((await metricValue(hf, 'holdfast_drops_total', { reason: 'slow_consumer' })) !== 1 && published < 640) {
    await publishRaw(hf, { items: [streamItem('firehose', content(published))] });
    published++;
    // The reader keeps up: wait for each item so only the stalled client's queue grows.
    await reader.waitFor((b) => b.length >= published * size, `item ${published}`);
  }
  assert.equal(await metricValue(hf, 'holdfast_drops_total', { reason: 'slow_consumer' }), 1);
  assert.equal(hf.holds.heldCount, 1);
  assert.equal(await metricValue(hf, 'holdfast_held_connections', { transport: 'stream' }), 1);
  const last = await publishRaw(hf, { items: [streamItem('firehose', content(published))] });
  assert.equal(last.headers.get('x-holdfast-delivered'), '1');
  published++;
  await reader.waitFor((b) => b.length >= published * size, 'the last item');
  const body = reader.body;
  assert.equal(body.length, published * size);
  for (let n = 0; n < published; n++) assert.equal(body.slice(n * size, n * size + 8), `<${String(n).padStart(6, '0')}>`);
  stalled.socket.resume();
  await stalled.waitFinished();
  assert.ok(stalled.bodyBytes.length < published * size, 'the stalled client was cut off');
});

test('slow consumer: one publish batch larger than the limit does not drop a client that reads', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('batch');
    instruct.setHoldStream();
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url], { push: { maxQueuedBytesPerConnection: 65_536 } });
  const reader = await HeldStream.open(t, hf.port, '/batch');
  await heldCount(hf, 1);
  // Items of one request are written corked, in one go: 4 x 32 KiB is queued at once, then flushed.
  const items = [0, 1, 2, 3].map((n) => streamItem('batch', String(n).repeat(32 * 1024)));
  const res = await publishRaw(hf, { items });
  assert.equal(res.headers.get('x-holdfast-delivered'), '4');
  await reader.waitFor((b) => b.length >= 4 * 32 * 1024, 'the whole batch');
  assert.equal((await metricValue(hf, 'holdfast_drops_total', { reason: 'slow_consumer' })) ?? 0, 0);
  assert.equal(hf.holds.heldCount, 1);
});
