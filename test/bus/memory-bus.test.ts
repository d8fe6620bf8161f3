import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChannelHistory } from '../../src/bus/channel-history.js';
import { ChannelLog } from '../../src/bus/channel-log.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import type { BusOptions, BusSink } from '../../src/bus/bus.js';
import type { PublishItem } from '../../src/grip/publish-items.js';
import { discardSink } from '../helpers/discard-sink.js';

function options(overrides: Partial<BusOptions> = {}): BusOptions {
  return { maxItems: 10, maxAgeMs: 60_000, sequenceWaitMs: 5_000, sequenceMaxPending: 100, dedupWindowMs: 60_000, ...overrides };
}

/** A sink that records what reached it, one entry per delivery call (a batch). */
function recordingSink(perItem = 1): BusSink & { batches: string[][]; gaps: string[] } {
  const batches: string[][] = [];
  const gaps: string[] = [];
  return {
    batches,
    gaps,
    deliver(items) {
      batches.push(items.map((i) => `${i.channel}:${i.id ?? '-'}`));
      return Promise.resolve(items.length * perItem);
    },
    gap(channel) {
      gaps.push(channel);
    },
  };
}

function item(channel: string, id?: string): PublishItem {
  return { channel, id, prevId: undefined, formats: { 'http-stream': { action: 'send', content: Buffer.from(id ?? '-') } }, meta: {}, noSeq: false };
}

test('memory bus: delivers only channels (and prefixes, when asked) someone subscribed to, counting subscribers', async (t) => {
  const sink = recordingSink();
  const bus = new MemoryBus(options(), sink);
  t.after(() => bus.close());
  const publish = async (i: PublishItem) => (await bus.publish([i])).delivered;
  bus.subscribe('a');
  bus.subscribe('a');
  bus.subscribe('s.', true);
  assert.equal(await publish(item('a')), 1);
  assert.equal(await publish(item('b')), 0);
  assert.equal(await publish(item('s.x.y')), 1);
  assert.equal(await publish(item('s')), 0);
  bus.unsubscribe('a');
  assert.equal(await publish(item('a')), 1, 'one subscription of two is left');
  bus.unsubscribe('a');
  bus.unsubscribe('s.', true);
  bus.subscribe('lit.*');
  assert.equal(await publish(item('lit.x')), 0, 'without the prefix flag a name ending in .* is literal');
  assert.equal(await publish(item('a')), 0);
  assert.equal(await publish(item('s.x')), 0);
  assert.deepEqual(sink.batches.flat().map((k) => k.split(':')[0]), ['a', 's.x.y', 'a']);
});

test('memory bus history: after an id, bounded by count, unknown ids are not found, last id tracks the newest', async (t) => {
  const bus = new MemoryBus(options({ maxItems: 3 }), discardSink);
  t.after(() => bus.close());
  for (const id of ['1', '2', '3', '4']) await bus.publish([item('h', id)]);
  assert.deepEqual((await bus.history('h', '2')).items.map((i) => i.id), ['3', '4']);
  assert.deepEqual(await bus.history('h', '4'), { items: [], found: true });
  assert.deepEqual(await bus.history('h', '1').then((r) => ({ found: r.found, ids: r.items.map((i) => i.id) })), {
    found: false,
    ids: ['2', '3', '4'],
  }, 'trimmed by maxItems: not found, with what is retained');
  assert.equal((await bus.history('h', '99')).found, false);
  assert.equal((await bus.history('nothing', '1')).found, false);
  assert.equal(bus.lastId('h'), '4');
  await bus.publish([item('h')]);
  assert.equal(bus.lastId('h'), undefined, 'an item without id leaves no id to chain on');
  assert.deepEqual((await bus.history('h', '3')).items.map((i) => i.id), ['4', undefined]);
});

test('memory bus history: items older than maxAgeMs are not replayed (fake clock)', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_700_000_000_000 });
  const bus = new MemoryBus(options({ maxItems: 100, maxAgeMs: 5_000 }), discardSink);
  t.after(() => bus.close());
  await bus.publish([item('h', '1')]);
  t.mock.timers.tick(3_000);
  await bus.publish([item('h', '2'), item('h', '3')]);
  assert.deepEqual((await bus.history('h', '1')).items.map((i) => i.id), ['2', '3']);
  t.mock.timers.tick(2_500);
  assert.equal((await bus.history('h', '1')).found, false, 'item 1 aged out');
  assert.deepEqual((await bus.history('h', '2')).items.map((i) => i.id), ['3']);
});

function chained(channel: string, id: string, prevId: string): PublishItem {
  return { ...item(channel, id), prevId };
}

test('memory bus: one publish request is one batch; statuses say published, duplicate, queued and dropped', async (t) => {
  const sink = recordingSink();
  const bus = new MemoryBus(options({ sequenceMaxPending: 1 }), sink);
  t.after(() => bus.close());
  bus.subscribe('c');
  const first = await bus.publish([item('c', '1'), item('c', '2')]);
  assert.deepEqual(first, { statuses: ['published', 'published'], delivered: 2, remoteNodes: undefined });
  assert.deepEqual(sink.batches, [['c:1', 'c:2']], 'both items in one delivery call');
  const again = await bus.publish([item('c', '2'), chained('c', '4', '3'), chained('c', '5', '9')]);
  assert.deepEqual(again.statuses, ['duplicate', 'queued', 'dropped']);
  assert.equal(again.delivered, 0);
  // The predecessor arrives: it and the item that waited on it go out together, in order.
  const filler = await bus.publish([chained('c', '3', '2')]);
  assert.deepEqual(filler.statuses, ['published']);
  assert.equal(filler.delivered, 2);
  assert.deepEqual(sink.batches.at(-1), ['c:3', 'c:4']);
  assert.equal(bus.lastId('c'), '4');
});

test('memory bus: an item that waited out sequenceWaitMs goes out alone through the sink (fake clock)', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_700_000_000_000 });
  const sink = recordingSink();
  const bus = new MemoryBus(options({ sequenceWaitMs: 1_000 }), sink);
  t.after(() => bus.close());
  bus.subscribe('c');
  await bus.publish([item('c', '1')]);
  assert.deepEqual((await bus.publish([chained('c', '3', '2')])).statuses, ['queued']);
  t.mock.timers.tick(500);
  assert.deepEqual(sink.batches, [['c:1']], 'still waiting at half the wait');
  t.mock.timers.tick(1_000);
  assert.deepEqual(sink.batches, [['c:1'], ['c:3']]);
  assert.equal(bus.lastId('c'), '3');
});

test('memory bus: what it keeps per channel (history and last id) expires with the age bound, however many channels (fake clock)', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_700_000_000_000 });
  for (const maxItems of [100, 0]) {
    const history = new ChannelHistory({ maxItems, maxAgeMs: 5_000 });
    for (let i = 0; i < 10_000; i++) history.append(item(`ch${i}`, String(i)), Date.now());
    assert.equal(history.channelCount, 10_000, `maxItems ${maxItems}`);
    t.mock.timers.tick(3_000);
    history.append(item('fresh', 'f1'), Date.now());
    t.mock.timers.tick(2_500);
    history.sweep(Date.now());
    assert.equal(history.channelCount, 1, `maxItems ${maxItems}: only the channel published within the age bound is left`);
    assert.equal(history.lastId('fresh'), 'f1');
    assert.equal(history.lastId('ch1'), undefined);
  }
  // The bus sweeps on its own timer.
  const bus = new MemoryBus(options({ maxAgeMs: 5_000 }), discardSink);
  t.after(() => bus.close());
  for (let i = 0; i < 1_000; i++) await bus.publish([item(`c${i}`, String(i))]);
  t.mock.timers.tick(11_000);
  assert.equal(bus.lastId('c1'), undefined);
});

test('memory bus: ids kept for de-duplication are forgotten on the sweep timer once their window passed, with no further publish (fake clock)', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_700_000_000_000 });
  const drops: string[] = [];
  const log = new ChannelLog(options({ maxAgeMs: 5_000, dedupWindowMs: 10_000 }), { released: () => undefined, drop: (i, reason) => drops.push(`${i.id}:${reason}`) });
  t.after(() => log.close());
  for (let i = 0; i < 1_000; i++) log.add([item(`d${i}`, `x${i}`)], Date.now());
  log.add([item('kept', 'k1')], Date.now());
  t.mock.timers.tick(5_000);
  assert.equal(log.dedupIdCount, 1_001, 'within the window every id is kept (a sweep ran at 5 s)');
  assert.deepEqual(log.add([item('kept', 'k1')], Date.now()).statuses, ['duplicate'], 'and still de-duplicates');
  t.mock.timers.tick(10_000);
  assert.equal(log.dedupIdCount, 0, 'the window passed and the 10 s and 15 s sweeps forgot every id');
  assert.deepEqual(drops, ['k1:duplicate']);
});
