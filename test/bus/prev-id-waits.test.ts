import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrevIdWaits } from '../../src/bus/prev-id-waits.js';
import type { PublishItem } from '../../src/grip/publish-items.js';

function waiting(channel: string, id: string, prevId: string): PublishItem & { prevId: string } {
  return { channel, id, prevId, formats: {}, meta: {}, noSeq: false };
}

test('prev-id waits: one waiter per predecessor, a cap per channel, taken by id, expired after waitMs (fake clock)', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_700_000_000_000 });
  const expired: string[] = [];
  const idle: string[] = [];
  const waits = new PrevIdWaits({ waitMs: 1_000, maxPendingPerChannel: 2 }, { expired: (i) => expired.push(i.id!), idle: (c) => idle.push(c) });
  t.after(() => waits.stop());
  assert.equal(waits.add(waiting('c', '3', '2'), Date.now()), 'queued');
  assert.equal(waits.add(waiting('c', '3b', '2'), Date.now()), 'dropped', 'a second waiter on the same id');
  assert.equal(waits.add(waiting('c', '5', '4'), Date.now()), 'queued');
  assert.equal(waits.add(waiting('c', '7', '6'), Date.now()), 'dropped', 'the channel is at its cap');
  assert.equal(waits.add(waiting('other', 'x', 'w'), Date.now()), 'queued', 'the cap is per channel');
  assert.equal(waits.take('c', '2')?.id, '3');
  assert.equal(waits.take('c', '2'), undefined, 'taken once');
  t.mock.timers.tick(500);
  assert.deepEqual(expired, []);
  t.mock.timers.tick(750);
  assert.deepEqual(expired.sort(), ['5', 'x']);
  assert.deepEqual(idle.sort(), ['c', 'other'], 'each channel says when its last waiter left');
  assert.equal(waits.has('c'), false);
});
