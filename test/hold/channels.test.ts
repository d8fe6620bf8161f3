import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { HeldStream, heldCount, publishRaw, streamItem } from './push-helpers.js';

/**
 * A backend that answers `/?ch=<Grip-Channel value>&user=<meta user>` with a stream hold. Plain headers
 * here: js-grip's Channel has no filters, and serve-grip overwrites any Grip-Channel it did not build.
 */
async function gateway(t: TestContext, overrides: Partial<ConfigInput> = {}) {
  const backend = await startBackend(t, (req, res) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    const headers: string[] = ['Grip-Hold', 'stream', 'Grip-Channel', q.get('ch')!];
    if (q.get('user') !== null) headers.push('Grip-Set-Meta', `user=${q.get('user')}`);
    res.writeHead(200, headers);
    res.end();
  });
  return startTestHoldfast(t, [backend.url], overrides);
}

async function subscribe(t: TestContext, hf: Awaited<ReturnType<typeof gateway>>, ch: string, user?: string): Promise<HeldStream> {
  const before = hf.holds.heldCount;
  const query = `ch=${encodeURIComponent(ch)}${user === undefined ? '' : `&user=${user}`}`;
  const client = await HeldStream.open(t, hf.port, `/?${query}`);
  await heldCount(hf, before + 1);
  return client;
}

test('filters: skip-self, skip-users and require-sub, by Grip-Set-Meta user and publish meta', async (t) => {
  const hf = await gateway(t);
  const alice = await subscribe(t, hf, 'chat; filter=skip-self; filter=skip-users', 'alice');
  const bob = await subscribe(t, hf, 'chat; filter=skip-self', 'bob');
  const plain = await subscribe(t, hf, 'chat');
  const vip = await subscribe(t, hf, 'chat; filter=require-sub, vip-room', 'carol');
  const item = (content: string, meta: Record<string, string>) => ({ ...streamItem('chat', content), meta });
  await publishRaw(hf, {
    items: [
      item('A', { sender: 'alice' }),
      item('B', { sender: 'bob' }),
      item('C', { skip_users: 'zed, alice' }),
      item('D', { require_sub: 'vip-room' }),
      item('E', {}),
    ],
  });
  for (const c of [alice, bob, plain, vip]) await c.waitForText('E');
  assert.equal(alice.body, 'BDE', 'no echo of her own message, skipped by name');
  assert.equal(bob.body, 'ACDE');
  assert.equal(plain.body, 'ABCDE', 'no filters, no meta: everything');
  assert.equal(vip.body, 'ABCDE', 'require-sub passes a subscriber of the required channel');
  // require-sub drops for subscribers without the required channel, when that channel is asked for.
  const outsider = await subscribe(t, hf, 'chat; filter=require-sub', 'dave');
  await publishRaw(hf, { items: [item('F', { require_sub: 'vip-room' }), item('G', {})] });
  await outsider.waitForText('G');
  assert.equal(outsider.body, 'G');
});

test('wildcards on: `scores.*` gets scores.a and scores.b.c, not scoresx nor scores', async (t) => {
  const hf = await gateway(t, { push: { wildcardChannels: true } });
  const client = await subscribe(t, hf, 'scores.*');
  const exact = await subscribe(t, hf, 'scores.a');
  await publishRaw(hf, {
    items: [streamItem('scores.a', 'a'), streamItem('scoresx', 'X'), streamItem('scores', 'S'), streamItem('scores.b.c', 'bc'), streamItem('end', '!')],
  });
  await publishRaw(hf, { items: [streamItem('scores.z', '.')] });
  await client.waitForText('.');
  assert.equal(client.body, 'abc.');
  await exact.waitForText('a');
  assert.equal(exact.body, 'a');
});

test('wildcards off: `scores.*` is a literal channel name', async (t) => {
  const hf = await gateway(t);
  const client = await subscribe(t, hf, 'scores.*');
  const res = await publishRaw(hf, { items: [streamItem('scores.a', 'a'), streamItem('scores.*', 'literal')] });
  assert.equal(res.headers.get('x-holdfast-delivered'), '1');
  await client.waitForText('literal');
  assert.equal(client.body, 'literal');
});
