import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import type { PublishItem } from '../../src/grip/publish-items.js';

function item(channel: string, id?: string): PublishItem {
  return { channel, id, prevId: undefined, formats: { 'http-stream': { action: 'send', content: Buffer.from(id ?? '-') } }, meta: {}, noSeq: false };
}

test('memory bus: delivers only channels (and prefixes, when asked) someone subscribed to, counting subscribers', async (t) => {
  const bus = new MemoryBus({ maxItems: 10, maxAgeMs: 60_000 });
  t.after(() => bus.close());
  const seen: string[] = [];
  bus.setHandler((i) => {
    seen.push(i.channel);
    return 1;
  });
  bus.subscribe('a');
  bus.subscribe('a');
  bus.subscribe('s.', true);
  assert.equal(await bus.publish(item('a')), 1);
  assert.equal(await bus.publish(item('b')), 0);
  assert.equal(await bus.publish(item('s.x.y')), 1);
  assert.equal(await bus.publish(item('s')), 0);
  bus.unsubscribe('a');
  assert.equal(await bus.publish(item('a')), 1, 'one subscription of two is left');
  bus.unsubscribe('a');
  bus.unsubscribe('s.', true);
  bus.subscribe('lit.*');
  assert.equal(await bus.publish(item('lit.x')), 0, 'without the prefix flag a name ending in .* is literal');
  assert.equal(await bus.publish(item('a')), 0);
  assert.equal(await bus.publish(item('s.x')), 0);
  assert.deepEqual(seen, ['a', 's.x.y', 'a']);
});

test('memory bus history: after an id, bounded by count, unknown ids are not found, last id tracks the newest', async (t) => {
  const bus = new MemoryBus({ maxItems: 3, maxAgeMs: 60_000 });
  t.after(() => bus.close());
  for (const id of ['1', '2', '3', '4']) await bus.publish(item('h', id));
  assert.deepEqual((await bus.history('h', '2')).items.map((i) => i.id), ['3', '4']);
  assert.deepEqual(await bus.history('h', '4'), { items: [], found: true });
  assert.equal((await bus.history('h', '1')).found, false, 'trimmed by maxItems');
  assert.equal((await bus.history('h', '99')).found, false);
  assert.equal((await bus.history('nothing', '1')).found, false);
  assert.equal(bus.lastId('h'), '4');
  await bus.publish(item('h'));
  assert.equal(bus.lastId('h'), undefined, 'an item without id leaves no id to chain on');
  assert.deepEqual((await bus.history('h', '3')).items.map((i) => i.id), ['4', undefined]);
});

test('memory bus history: items older than maxAgeMs are not replayed (fake clock)', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_700_000_000_000 });
  const bus = new MemoryBus({ maxItems: 100, maxAgeMs: 5_000 });
  t.after(() => bus.close());
  await bus.publish(item('h', '1'));
  t.mock.timers.tick(3_000);
  await bus.publish(item('h', '2'));
  await bus.publish(item('h', '3'));
  assert.deepEqual((await bus.history('h', '1')).items.map((i) => i.id), ['2', '3']);
  t.mock.timers.tick(2_500);
  assert.equal((await bus.history('h', '1')).found, false, 'item 1 aged out');
  assert.deepEqual((await bus.history('h', '2')).items.map((i) => i.id), ['3']);
});
