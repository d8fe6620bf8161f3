// Needs NATS with JetStream at 127.0.0.1:4222 (.ci/run starts it): the NATS bus driver against the bus
// contract, plus what is particular to NATS (subject encoding, JetStream limits, the live-message chain).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { busContract, item, startNodes, subscribed, type ContractNode } from './contract.js';
import { decodeChannel, decodeToken, encodeChannel, prefixSubject } from '../../src/bus/nats-subject.js';
import { encodeItem } from '../../src/bus/item-codec.js';
import { busOptions, dropStreamAfter, natsNode, type NatsNode } from '../helpers/nats.js';
import { eventually } from '../helpers/until.js';
import { LogSink, metricValue } from '../helpers/holdfast.js';
import { createLogger } from '../../src/observe/log.js';
import type { BusOptions } from '../../src/bus/bus.js';
import { freePort } from '../helpers/listen.js';

busContract('nats', (t, prefix, sink) => {
  dropStreamAfter(t, prefix);
  return Promise.resolve(natsNode(t, prefix, { sink }));
});

function uniquePrefix(): string {
  return `hft${randomUUID().slice(0, 8)}`;
}

async function nodes(t: TestContext, count: number, options: Partial<BusOptions> = {}, requestTimeoutMs = 2_000): Promise<{ list: ContractNode[]; buses: NatsNode[] }> {
  const buses: NatsNode[] = [];
  const list = await startNodes(t, (tt, prefix, sink) => {
    if (buses.length === 0) dropStreamAfter(tt, prefix);
    const bus = natsNode(tt, prefix, { options: busOptions(options), requestTimeoutMs, sink });
    buses.push(bus);
    return Promise.resolve(bus);
  }, count);
  return { list, buses };
}

test('nats subjects: channel names stay readable; only what a subject cannot hold is escaped', () => {
  const table: [string, string][] = [
    ['news', 'news'],
    ['scores.eu.live', 'scores.eu.live'],
    ['user-42_x:y/z', 'user-42_x:y/z'],
    ['a b', 'a%20b'],
    ['tab\there', 'tab%09here'],
    ['new\nline', 'new%0Aline'],
    ['*', '%2A'],
    ['a.*.b', 'a.%2A.b'],
    ['>', '%3E'],
    ['a.>', 'a.%3E'],
    ['50%', '50%25'],
    ['%', '%25'],
    ['', '%'],
    ['.lead', '%.lead'],
    ['trail.', 'trail.%'],
    ['double..dot', 'double.%.dot'],
    ['.', '%.%'],
    ['caf\u00e9', 'caf%C3%A9'],
    ['\u{1F600}', '%F0%9F%98%80'],
    ['\u0000', '%00'],
  ];
  for (const [channel, subject] of table) {
    assert.equal(encodeChannel(channel), subject, `encode ${JSON.stringify(channel)}`);
    assert.equal(decodeChannel(subject), channel, `decode ${subject}`);
  }
  // Tokens no channel encodes to are refused, not guessed at.
  for (const bad of ['%2', '%zz', '%c3%a9', '%C3', '%%', 'a%']) assert.throws(() => decodeToken(bad), /not an encoded channel token/, bad);
});

test('nats subjects: every string round-trips and encodes to a valid subject (property)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), (a, b) => {
      for (const channel of [a, b, `${a}.${b}`]) {
        const subject = encodeChannel(channel);
        assert.equal(decodeChannel(subject), channel);
        const tokens = subject.split('.');
        assert.ok(tokens.every((tok) => tok !== '' && tok !== '*' && tok !== '>' && /^[\x21-\x7e]+$/.test(tok)), subject);
      }
    }),
    { numRuns: 200 },
  );
});

test('nats subjects: a prefix ending in a dot is an exact NATS wildcard; one ending mid-token is filtered by the receiver', () => {
  assert.deepEqual(prefixSubject('hf.ch', 'scores.'), { subject: 'hf.ch.scores.>', exact: true });
  assert.deepEqual(prefixSubject('hf.ch', 'a b.'), { subject: 'hf.ch.a%20b.>', exact: true });
  assert.deepEqual(prefixSubject('hf.ch', 'scores.e'), { subject: 'hf.ch.scores.>', exact: false });
  assert.deepEqual(prefixSubject('hf.ch', 'sco'), { subject: 'hf.ch.>', exact: false });
  assert.deepEqual(prefixSubject('hf.ch', ''), { subject: 'hf.ch.>', exact: true });
});

test('nats bus: a prefix that ends mid-token still delivers only the channels that start with it', async (t) => {
  const { list: [a, b] } = await nodes(t, 2);
  b!.bus.subscribe('odd sc', true);
  b!.bus.subscribe('marker');
  await subscribed(a!, b!, 'marker');
  await a!.bus.publish([item('odd x', '1'), item('odd scores', '2'), item('odd sc', '3'), item('marker', 'm')]);
  await eventually(() => b!.received.some((i) => i.id === 'm'), 5_000, 'the marker');
  assert.deepEqual(b!.received.map((i) => i.id), ['2', '3', 'm']);
});

test('nats bus: a prev-id item whose predecessor never comes waits sequenceWaitMs, then goes out', async (t) => {
  const { list: [a, b] } = await nodes(t, 2, { sequenceWaitMs: 300, sequenceMaxPending: 1 });
  b!.bus.subscribe('w');
  await subscribed(a!, b!, 'w');
  await a!.bus.publish([item('w', '1')]);
  const started = performance.now();
  const result = await a!.bus.publish([item('w', '3', '2'), item('w', '4', '9')]);
  assert.deepEqual(result.statuses, ['queued', 'dropped'], 'one may wait per channel here; the next is dropped');
  await eventually(() => b!.received.length === 2, 5_000, 'the waiting item to go out');
  assert.ok(performance.now() - started >= 300, 'not before its wait ran out');
  assert.deepEqual(b!.received.map((i) => i.id), ['1', '3']);
  assert.deepEqual((await b!.bus.history('w', '1')).items.map((i) => i.id), ['3']);
});

test('nats bus: history is bounded by maxItems per channel; maxItems 0 keeps the last id for prev-id but replays nothing', async (t) => {
  const { list: [a] } = await nodes(t, 1, { maxItems: 3 });
  for (const id of ['1', '2', '3', '4', '5']) await a!.bus.publish([item('hb', id)]);
  assert.deepEqual((await a!.bus.history('hb', '3')).items.map((i) => i.id), ['4', '5']);
  assert.equal((await a!.bus.history('hb', '2')).found, false, 'trimmed by maxItems');
  assert.deepEqual(await a!.bus.history('hb', '5'), { items: [], found: true });

  const { list: [z] } = await nodes(t, 1, { maxItems: 0 });
  await z!.bus.publish([item('h0', '1')]);
  assert.deepEqual((await z!.bus.publish([item('h0', '3', '2')])).statuses, ['queued'], 'the last id survives for sequencing');
  assert.deepEqual((await z!.bus.publish([item('h0', '2', '1')])).statuses, ['published']);
  assert.equal((await z!.bus.history('h0', '1')).found, false);
});

async function count(bus: NatsNode, name: string, labels: Record<string, string> = {}): Promise<number> {
  return (await metricValue({ metrics: bus.metrics } as Parameters<typeof metricValue>[0], name, labels)) ?? 0;
}

test('nats bus: a node holding nothing receives no bus messages while another node\'s channel has traffic', async (t) => {
  const { list: [a, b, idle], buses } = await nodes(t, 3);
  b!.bus.subscribe('busy');
  await subscribed(a!, b!, 'busy');
  const inBefore = await count(buses[1]!, 'holdfast_bus_messages_total', { direction: 'in' });
  const outBefore = await count(buses[0]!, 'holdfast_bus_messages_total', { direction: 'out' });
  for (let i = 0; i < 20; i++) await a!.bus.publish([item('busy', `m${i}`)]);
  await eventually(() => b!.received.length === 20, 5_000, 'b to receive all 20');
  assert.equal(await count(buses[1]!, 'holdfast_bus_messages_total', { direction: 'in' }) - inBefore, 20, 'one message in per item at the holder');
  assert.equal(await count(buses[0]!, 'holdfast_bus_messages_total', { direction: 'out' }) - outBefore, 20, 'one message out per item at the publisher');
  assert.equal(await count(buses[2]!, 'holdfast_bus_messages_total', { direction: 'in' }), 0, 'none at the node holding nothing');
  assert.equal(idle!.received.length, 0);
  assert.equal(await count(buses[1]!, 'holdfast_bus_subscriptions'), 1);
  assert.equal(await count(buses[2]!, 'holdfast_bus_subscriptions'), 0);
  assert.equal(await count(buses[2]!, 'holdfast_bus_up', { driver: 'nats' }), 1);
});

test('nats bus: start() against a closed port rejects with HF_ERR_BUS_UNAVAILABLE naming the URL', async (t) => {
  const port = await freePort();
  const bus = natsNode(t, uniquePrefix(), { url: `nats://127.0.0.1:${port}`, connectTimeoutMs: 300 });
  await assert.rejects(bus.start(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'HF_ERR_BUS_UNAVAILABLE');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    return true;
  });
  assert.equal(bus.state, 'connecting');
  await assert.rejects(bus.publish([item('x', '1')]), { code: 'HF_ERR_BUS_UNAVAILABLE' });
});

test('nats bus: a live message whose previous sequence was not seen is preceded by the missing item from the stream; a lost one is a gap', async (t) => {
  const prefix = uniquePrefix();
  dropStreamAfter(t, prefix);
  const [a, b] = await startNodes(t, (tt, _prefix, sink) => Promise.resolve(natsNode(tt, prefix, { sink })), 2);
  b!.bus.subscribe('race');
  await subscribed(a!, b!, 'race');
  await a!.bus.publish([item('race', 'x1')]);
  await eventually(() => b!.received.length === 1, 5_000, 'x1 at b');
  // Another "node" (a raw client) stores x2 and x3 as the driver would, but only x3's live message is sent:
  // x2's live message is lost, or overtaken by x3's.
  const nc = await connect({ servers: '127.0.0.1:4222' });
  t.after(() => nc.close());
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const stream = `${prefix}_history`;
  const store = async (id: string, prev: number) => {
    const h = headers();
    h.set('Holdfast-Prev', String(prev));
    const ack = await js.publish(`${prefix}.h.race`, encodeItem(item('race', id)), { headers: h, expect: { lastSubjectSequence: prev } });
    return ack.seq;
  };
  const live = (id: string, seq: number, prev: number) => {
    const h = headers();
    h.set('Holdfast-Node', 'another-node');
    h.set('Holdfast-Seq', String(seq));
    h.set('Holdfast-Prev', String(prev));
    nc.publish(`${prefix}.ch.race`, encodeItem(item('race', id)), { headers: h });
  };
  const seq1 = (await jsm.direct.getMessage(stream, { last_by_subj: `${prefix}.h.race` }))!.seq;
  const seq2 = await store('x2', seq1);
  const seq3 = await store('x3', seq2);
  live('x3', seq3, seq2);
  await eventually(() => b!.received.length === 3, 5_000, 'x2 and x3 at b');
  assert.deepEqual(b!.received.map((i) => i.id), ['x1', 'x2', 'x3'], 'the missing x2 first');
  live('x2', seq2, seq1);
  // x4 is stored and then lost from history (deleted) before b hears of it; x5's live message arrives.
  const seq4 = await store('x4', seq3);
  const seq5 = await store('x5', seq4);
  assert.equal(await jsm.streams.deleteMessage(stream, seq4), true);
  live('x5', seq5, seq4);
  await eventually(() => b!.received.length === 4, 5_000, 'x5 at b');
  assert.deepEqual(b!.received.map((i) => i.id), ['x1', 'x2', 'x3', 'x5'], 'the late x2 is not delivered twice');
  assert.deepEqual(b!.gaps, ['race'], 'the lost x4 is reported as a gap');
});

test('nats bus: a history stream made with other limits is updated to this configuration, and the log says so', async (t) => {
  const prefix = uniquePrefix();
  dropStreamAfter(t, prefix);
  const first = natsNode(t, prefix, { options: busOptions({ maxItems: 3 }) });
  await first.start();
  const logs = new LogSink();
  const second = natsNode(t, prefix, { options: busOptions({ maxItems: 5, maxAgeMs: 60_000 }), log: createLogger('info', logs) });
  await second.start();
  const line = await logs.waitFor({ msg: 'nats bus: the history stream had other limits; updating it to this configuration' });
  assert.deepEqual(line.from, { max_msgs_per_subject: 3, max_age: 300_000 * 1e6 });
  assert.deepEqual(line.to, { max_msgs_per_subject: 5, max_age: 60_000 * 1e6 });
  for (const id of ['1', '2', '3', '4', '5', '6']) await second.publish([item('lim', id)]);
  assert.deepEqual((await first.history('lim', '2')).items.map((i) => i.id), ['3', '4', '5', '6'], 'five kept now, read whole by a node configured for three');
  assert.equal((await first.history('lim', '1')).found, false);
});

test('nats bus: two nodes publishing to one channel at once: every holder gets every item once, in the one order the stream stored', async (t) => {
  const { list: [a, b, c, d] } = await nodes(t, 4, { maxItems: 200 });
  for (const n of [a!, b!, c!, d!]) n.bus.subscribe('hot');
  await subscribed(a!, c!, 'hot');
  await subscribed(b!, d!, 'hot');
  // Probes are id-less and may still arrive at the nodes that subscribed() did not wait on: count ids only.
  const ids = (n: ContractNode) => n.received.filter((x) => x.id !== undefined).map((x) => x.id!);
  const burst = (node: ContractNode, tag: string) =>
    Promise.all(Array.from({ length: 40 }, (_, i) => node.bus.publish([item('hot', `${tag}${i}`)])));
  const results = (await Promise.all([burst(a!, 'a'), burst(b!, 'b')])).flat();
  assert.ok(results.every((r) => r.statuses[0] === 'published'));
  for (const n of [a!, b!, c!, d!]) await eventually(() => ids(n).length >= 80, 10_000, 'all 80 at every holder');
  const order = ids(c!);
  assert.equal(new Set(order).size, 80, 'each once');
  for (const n of [a!, b!, d!]) assert.deepEqual(ids(n), order, 'the same order on every node, publishers included');
  const stored = await d!.bus.history('hot', order[0]!);
  assert.deepEqual([order[0], ...stored.items.map((i) => i.id)], order, "the stream's order");
});
