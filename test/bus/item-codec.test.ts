import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeItem, encodeItem } from '../../src/bus/item-codec.js';
import type { PublishItem } from '../../src/grip/publish-items.js';

test('item codec: every format, binary content and meta survive the round trip; the wire text stays readable', () => {
  const item: PublishItem = {
    channel: 'news.eu',
    id: '7',
    prevId: '6',
    formats: {
      'http-response': { action: 'send', code: 200, reason: 'OK', headers: ['X-A', '1'], body: Buffer.from('body') },
      'http-stream': { action: 'send', content: Buffer.from([0, 255, 10, 13]) },
      'ws-message': { action: 'close', type: 'text', content: undefined, code: 1000, reason: 'bye' },
    },
    meta: { user: 'u1' },
    noSeq: true,
  };
  const wire = encodeItem(item);
  assert.match(wire, /"channel":"news.eu"/);
  assert.deepEqual(decodeItem(wire), item);
});

test('item codec: text that is not an item is refused', () => {
  for (const bad of ['null', '[]', '{"channel":1,"formats":{}}', '{"channel":"c"}', 'not json']) {
    assert.throws(() => decodeItem(bad), bad);
  }
});
