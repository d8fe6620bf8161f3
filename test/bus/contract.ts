// The behaviour every networked bus driver owes, run against each engine with two or three nodes in one
// test process (each node is its own driver instance with its own engine connections, as separate Holdfast
// processes would have). Driver test files call `busContract` with a factory.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import type { Bus, BusSink, PublishResult } from '../../src/bus/bus.js';
import type { PublishItem } from '../../src/grip/publish-items.js';
import { eventually } from '../helpers/until.js';

export interface ContractNode {
  bus: Bus;
  received: PublishItem[];
  gaps: string[];
}

/** Makes one node on the engine under `prefix` (unique per test, so tests never see each other's data). */
/** A bus built for one test node, delivering to `sink` (which records what the node received). */
export type NodeFactory = (t: TestContext, prefix: string, sink: BusSink) => Promise<Bus>;

export function item(channel: string, id?: string, prevId?: string, content = id ?? '-'): PublishItem {
  return {
    channel,
    id,
    prevId,
    formats: { 'http-stream': { action: 'send', content: Buffer.from(content) } },
    meta: {},
    noSeq: false,
  };
}

/** A sink that records what a node received (one count per item) and the gaps it was told of. */
export function recordInto(node: { received: PublishItem[]; gaps: string[] }): BusSink {
  return {
    deliver(items) {
      node.received.push(...items);
      return Promise.resolve(items.length);
    },
    gap(channel) {
      node.gaps.push(channel);
    },
  };
}

export async function startNodes(t: TestContext, factory: NodeFactory, count: number): Promise<ContractNode[]> {
  const prefix = `hft${randomUUID().slice(0, 8)}`;
  const nodes: ContractNode[] = [];
  for (let i = 0; i < count; i++) {
    const seen: Omit<ContractNode, 'bus'> = { received: [], gaps: [] };
    const bus = await factory(t, prefix, recordInto(seen));
    const node: ContractNode = { bus, ...seen };
    await bus.start();
    t.after(() => bus.close());
    nodes.push(node);
  }
  return nodes;
}

function ids(node: ContractNode, channel?: string): (string | undefined)[] {
  return node.received.filter((i) => channel === undefined || i.channel === channel).map((i) => i.id);
}

/**
 * A subscription is live once an item published after it arrives: publish probes until one is seen, so
 * the tests do not depend on how long the engine takes to register a SUBSCRIBE.
 */
export async function subscribed(publisher: ContractNode, subscriber: ContractNode, channel: string): Promise<void> {
  let n = 0;
  // Unique to this call, so a probe left over from an earlier call is never taken for one of these.
  const tag = `probe-${randomUUID().slice(0, 8)}-`;
  const content = (i: PublishItem) => i.formats['http-stream']?.content?.toString();
  await eventually(async () => {
    await publisher.bus.publish([{ ...item(channel, undefined, undefined, `${tag}${n++}`), noSeq: true }]);
    return subscriber.received.some((i) => i.channel === channel && content(i)?.startsWith(tag) === true);
  }, 5_000, `subscription to ${channel} to become live`);
  // Probes sent after the first one that arrived may still be on their way (a publish can answer before
  // its message reaches the other node): once one arrived, every later one will, so wait for the last.
  const last = `${tag}${n - 1}`;
  await eventually(() => subscriber.received.some((i) => i.channel === channel && content(i) === last), 5_000, `the last probe on ${channel}`);
  subscriber.received.length = 0;
}

/** `deliveredCountsEveryNode`: the driver's `delivered` sums all nodes (the cluster driver), not this node's. */
export function busContract(driver: string, factory: NodeFactory, semantics: { deliveredCountsEveryNode?: boolean } = {}): void {
  const everyNode = semantics.deliveredCountsEveryNode === true;
  test(`${driver} bus: a publish on one node reaches only the nodes holding the channel, once each`, async (t) => {
    const [a, b, c] = await startNodes(t, factory, 3);
    b!.bus.subscribe('news');
    c!.bus.subscribe('other');
    await subscribed(a!, b!, 'news');
    const result = await a!.bus.publish([item('news', '1'), item('news', '2')]);
    assert.deepEqual(result.statuses, ['published', 'published']);
    assert.equal(result.delivered, everyNode ? 2 : 0, 'the publishing node holds nothing');
    await eventually(() => b!.received.length === 2, 5_000, 'b to receive both');
    assert.deepEqual(ids(b!), ['1', '2'], 'in order');
    // c holds another channel: it must never see news. Prove time passed with an item it does hold.
    await a!.bus.publish([item('other', 'o1')]);
    await eventually(() => c!.received.length === 1, 5_000, 'c to receive its own channel');
    assert.deepEqual(ids(c!), ['o1']);
    assert.deepEqual(ids(a!), [], 'nothing comes back to a node that does not hold the channel');
  });

  test(`${driver} bus: the publishing node delivers to its own holders once, not again off the engine`, async (t) => {
    const [a, b] = await startNodes(t, factory, 2);
    a!.bus.subscribe('both');
    b!.bus.subscribe('both');
    await subscribed(a!, b!, 'both');
    a!.received.length = 0;
    const result = await a!.bus.publish([item('both', 'x')]);
    assert.equal(result.delivered, everyNode ? 2 : 1);
    await eventually(() => b!.received.length === 1, 5_000, 'b to receive');
    await b!.bus.publish([item('both', 'y')]);
    await eventually(() => a!.received.length === 2, 5_000, 'a to receive y from b');
    assert.deepEqual(ids(a!), ['x', 'y'], 'x once (locally), y once (from the engine)');
  });

  test(`${driver} bus: unsubscribe stops delivery; a prefix subscription takes every channel under it`, async (t) => {
    const [a, b] = await startNodes(t, factory, 2);
    b!.bus.subscribe('scores.', true);
    b!.bus.subscribe('gone');
    await subscribed(a!, b!, 'gone');
    await subscribed(a!, b!, 'scores.probe');
    b!.bus.unsubscribe('gone');
    // Give the engine the unsubscribe: the next publish to a held channel must arrive after it.
    await a!.bus.publish([item('scores.a.b', 's1')]);
    await eventually(() => b!.received.length === 1, 5_000, 'b to receive scores.a.b');
    await a!.bus.publish([item('gone', 'g1'), item('scoresx', 'n1'), item('scores.c', 's2')]);
    await eventually(() => b!.received.length === 2, 5_000, 'b to receive scores.c');
    assert.deepEqual(ids(b!), ['s1', 's2'], 'neither the unsubscribed channel nor a name that only starts alike');
  });

  test(`${driver} bus: history published on one node is replayable on another; an unknown id is not found`, async (t) => {
    const [a, b] = await startNodes(t, factory, 2);
    await a!.bus.publish([item('h', '1'), item('h', '2'), item('h', '3')]);
    const after1 = await b!.bus.history('h', '1');
    assert.equal(after1.found, true);
    assert.deepEqual(after1.items.map((i) => i.id), ['2', '3']);
    assert.equal(after1.items[0]!.formats['http-stream']?.content?.toString(), '2', 'formats survive the engine');
    assert.deepEqual(await b!.bus.history('h', '3'), { items: [], found: true });
    const unknown = await b!.bus.history('h', 'nope');
    assert.equal(unknown.found, false);
    assert.deepEqual(unknown.items.map((i) => i.id), ['1', '2', '3'], 'not found: everything retained, for the gap replay');
    assert.equal((await b!.bus.history('never-published', '1')).found, false);
  });

  test(`${driver} bus: an id published twice, on two nodes, is delivered once and reported as a duplicate`, async (t) => {
    const [a, b, c] = await startNodes(t, factory, 3);
    c!.bus.subscribe('d');
    await subscribed(a!, c!, 'd');
    const first = await a!.bus.publish([item('d', 'same')]);
    const second = await b!.bus.publish([item('d', 'same')]);
    assert.deepEqual(first.statuses, ['published']);
    assert.deepEqual(second.statuses, ['duplicate']);
    await b!.bus.publish([item('d', 'after')]);
    await eventually(() => c!.received.length === 2, 5_000, 'c to receive the item after');
    assert.deepEqual(ids(c!), ['same', 'after']);
    assert.deepEqual((await c!.bus.history('d', 'same')).items.map((i) => i.id), ['after'], 'history holds it once');
  });

  test(`${driver} bus: prev-id order holds across nodes: an item waits for a predecessor published elsewhere`, async (t) => {
    const [a, b, c] = await startNodes(t, factory, 3);
    c!.bus.subscribe('seq');
    await subscribed(a!, c!, 'seq');
    assert.deepEqual((await a!.bus.publish([item('seq', '1')])).statuses, ['published']);
    const early: PublishResult = await a!.bus.publish([item('seq', '3', '2')]);
    assert.deepEqual(early.statuses, ['queued'], '3 waits for 2');
    const filler = await b!.bus.publish([item('seq', '2', '1')]);
    assert.deepEqual(filler.statuses, ['published']);
    await eventually(() => c!.received.length === 3, 5_000, 'all three at c');
    assert.deepEqual(ids(c!), ['1', '2', '3']);
    assert.deepEqual((await c!.bus.history('seq', '1')).items.map((i) => i.id), ['2', '3']);
  });
}
