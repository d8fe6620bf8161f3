import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeWebSocketEvents, encodeWebSocketEvents, WebSocketEvent } from '@fanoutio/grip';
import { closeContent, decodeEvents, encodeEvents, parseCloseContent, sendableCloseCode, WsEventsError, type WsEvent } from '../../src/ws/websocket-events.js';

test('websocket-events: round trip, and the bytes js-grip writes decode the same', () => {
  const events: WsEvent[] = [
    { type: 'OPEN', content: null },
    { type: 'TEXT', content: Buffer.from('hello\r\nworld') },
    { type: 'BINARY', content: Buffer.from([0, 13, 10, 255]) },
    { type: 'PING', content: null },
    { type: 'CLOSE', content: closeContent(4000, 'bye') },
    { type: 'DISCONNECT', content: null },
  ];
  const bytes = encodeEvents(events);
  assert.deepEqual(decodeEvents(bytes), events);
  const fromGrip = Buffer.from(
    encodeWebSocketEvents([new WebSocketEvent('OPEN'), new WebSocketEvent('TEXT', new TextEncoder().encode('m:hi'))]),
  );
  assert.deepEqual(decodeEvents(fromGrip), [
    { type: 'OPEN', content: null },
    { type: 'TEXT', content: Buffer.from('m:hi') },
  ]);
  // And js-grip reads what we write.
  const back = decodeWebSocketEvents(encodeEvents([{ type: 'TEXT', content: Buffer.from('hé') }]));
  assert.equal(back[0]!.getType(), 'TEXT');
  assert.equal(Buffer.from(back[0]!.getContent() as Uint8Array).toString(), 'hé');
});

test('websocket-events: malformed bodies are refused, never guessed at', () => {
  const cases: [string, string][] = [
    ['no CRLF', 'OPEN'],
    ['unknown type', 'HELLO\r\n'],
    ['lower-case type', 'text 2\r\nhi\r\n'],
    ['bad hex length', 'TEXT zz\r\nhi\r\n'],
    ['negative length', 'TEXT -1\r\nhi\r\n'],
    ['content cut short', 'TEXT 5\r\nhi\r\n'],
    ['no CRLF after content', 'TEXT 2\r\nhiXX'],
    ['length too long to be real', 'TEXT 123456789\r\n'],
    ['a type line far too long', `${'A'.repeat(100)}\r\n`],
  ];
  for (const [name, body] of cases) {
    assert.throws(() => decodeEvents(Buffer.from(body, 'latin1')), { code: 'HF_ERR_WS_EVENTS' }, name);
  }
  assert.deepEqual(decodeEvents(Buffer.alloc(0)), [], 'an empty body is no events (a keep-alive answer)');
});

test('websocket-events: decoding does not depend on where a body was split (fast-check)', () => {
  const event = fc.oneof(
    fc.constantFrom<WsEvent>({ type: 'OPEN', content: null }, { type: 'DISCONNECT', content: null }, { type: 'PING', content: null }),
    fc.record({ type: fc.constantFrom<'TEXT' | 'BINARY' | 'PONG'>('TEXT', 'BINARY', 'PONG'), content: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) })
      .map((r): WsEvent => ({ type: r.type, content: r.content })),
  );
  fc.assert(
    fc.property(fc.array(event, { maxLength: 20 }), fc.nat(), (events, cut) => {
      const bytes = encodeEvents(events);
      assert.deepEqual(decodeEvents(bytes), events);
      // Any strict prefix that ends inside an event is refused rather than half-read.
      const at = bytes.length === 0 ? 0 : cut % bytes.length;
      const prefix = bytes.subarray(0, at);
      try {
        const partial = decodeEvents(prefix);
        assert.deepEqual(partial, events.slice(0, partial.length), 'a prefix that parses is a prefix of the events');
      } catch (err) {
        // Only the parser's refusal; the prefix assertion above failing must fail the run as itself.
        if (!(err instanceof WsEventsError)) throw err;
        assert.equal(err.code, 'HF_ERR_WS_EVENTS');
      }
    }),
    { numRuns: 300 },
  );
});

test('close codes: what a backend may send becomes what a client may receive', () => {
  assert.equal(sendableCloseCode(0), 1000, "js-grip's close() default");
  assert.equal(sendableCloseCode(undefined), 1000);
  assert.equal(sendableCloseCode(1005), 1000, 'reserved: never on the wire');
  assert.equal(sendableCloseCode(1006), 1000);
  assert.equal(sendableCloseCode(999), 1000);
  assert.equal(sendableCloseCode(5000), 1000);
  assert.equal(sendableCloseCode(1001), 1001);
  assert.equal(sendableCloseCode(1011), 1011);
  assert.equal(sendableCloseCode(4999), 4999);
  assert.deepEqual(parseCloseContent(closeContent(4001, 'ünïcode')), { code: 4001, reason: 'ünïcode' });
  assert.deepEqual(parseCloseContent(null), { code: undefined, reason: '' });
});
