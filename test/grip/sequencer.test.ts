import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { HeldStream, heldCount, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';

const T0 = 1_700_000_000_000;

async function streamGateway(t: import('node:test').TestContext, overrides = {}) {
  const backend = await startGripBackend(t, (req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel(req.url!.slice(1));
    instruct.setHoldStream();
    res.end();
  });
  return startTestHoldfast(t, [backend.url], overrides);
}

test('sequencing: items published out of order (by prev-id) reach clients in order', async (t) => {
  const hf = await streamGateway(t);
  const client = await HeldStream.open(t, hf.port, '/seq');
  await heldCount(hf, 1);
  await publishRaw(hf, { items: [streamItem('seq', '1', '1')] });
  // 4 and 3 come before their predecessor 2, in separate requests.
  await publishRaw(hf, { items: [streamItem('seq', '4', '4', '3')] });
  await publishRaw(hf, { items: [streamItem('seq', '3', '3', '2')] });
  await client.waitForText('1');
  assert.equal(client.body, '1', 'later items wait for their predecessor');
  await publishRaw(hf, { items: [streamItem('seq', '2', '2', '1')] });
  await client.waitForText('1234');
  assert.equal(client.body, '1234');
  assert.deepEqual((await hf.bus.history('seq', '3')).items.map((i) => i.id), ['4'], '4 is the last item');
});

test('sequencing: an item whose predecessor never comes goes out after push.sequenceWaitMs', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
  const hf = await streamGateway(t, { push: { sequenceWaitMs: 2_000 } });
  const client = await HeldStream.open(t, hf.port, '/lost');
  await heldCount(hf, 1);
  await publishRaw(hf, { items: [streamItem('lost', 'a', '1')] });
  await publishRaw(hf, { items: [streamItem('lost', 'c', '3', '2')] });
  await client.waitForText('a');
  t.mock.timers.tick(1_000);
  assert.equal(client.body, 'a');
  t.mock.timers.tick(1_000);
  await client.waitForText('ac');
  // Later items chain on the one that went out.
  await publishRaw(hf, { items: [streamItem('lost', 'd', '4', '3')] });
  await client.waitForText('acd');
});

test('de-duplication: a repeated id within the window is delivered once, and again after it', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
  const hf = await streamGateway(t, { push: { dedupWindowMs: 10_000 } });
  const client = await HeldStream.open(t, hf.port, '/dup');
  await heldCount(hf, 1);
  await publishRaw(hf, { items: [streamItem('dup', 'x', 'a'), streamItem('dup', 'x', 'a')] });
  const retry = await publishRaw(hf, { items: [streamItem('dup', 'x', 'a')] });
  assert.equal(retry.status, 200, 'a publisher retry is accepted, not an error');
  assert.equal(retry.headers.get('x-holdfast-delivered'), '0');
  // The same id on another channel is a different item.
  await publishRaw(hf, { items: [streamItem('other', 'y', 'a'), streamItem('dup', '|', 'b')] });
  await client.waitForText('x|');
  assert.equal(client.body, 'x|');
  assert.equal(await metricValue(hf, 'holdfast_drops_total', { reason: 'duplicate' }), 2);
  t.mock.timers.tick(10_001);
  await publishRaw(hf, { items: [streamItem('dup', 'x', 'a')] });
  await client.waitForText('x|x');
});
