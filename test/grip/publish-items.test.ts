import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PublishError, parsePublishBody } from '../../src/grip/publish-items.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { HeldStream, heldCount, startGripBackend } from '../hold/push-helpers.js';

test('publish items: what js-grip and Pushpin\'s docs send parses to the same item', () => {
  const [a, b] = parsePublishBody(
    JSON.stringify({
      items: [
        { channel: 'c', id: '2', 'prev-id': '1', formats: { 'http-stream': { 'content-bin': Buffer.from([0, 255]).toString('base64') } }, meta: { sender: 'x' } },
        { channel: 'c', 'http-response': { code: '202', reason: 'Accepted', headers: [['x-a', '1']], body: 'hi' }, 'no-seq': true },
      ],
    }),
    { maxMessageBytes: 100 },
  );
  assert.deepEqual(a!.formats['http-stream'], { action: 'send', content: Buffer.from([0, 255]) });
  assert.equal(a!.prevId, '1');
  assert.deepEqual(a!.meta, { sender: 'x' });
  assert.deepEqual(b!.formats['http-response'], { action: 'send', code: 202, reason: 'Accepted', headers: ['x-a', '1'], body: Buffer.from('hi') });
  assert.equal(b!.noSeq, true);
});

test('property: random publish bodies never throw anything but PublishError with a documented code', () => {
  const codes = new Set(['HF_ERR_PUBLISH_JSON', 'HF_ERR_PUBLISH_ITEMS', 'HF_ERR_PUBLISH_ITEM', 'HF_ERR_PUBLISH_MESSAGE_TOO_LARGE']);
  const format = fc.record(
    {
      content: fc.anything({ maxDepth: 1 }),
      'content-bin': fc.anything({ maxDepth: 1 }),
      body: fc.anything({ maxDepth: 1 }),
      action: fc.oneof(fc.constantFrom('send', 'hint', 'close', 'refresh'), fc.anything({ maxDepth: 1 })),
      code: fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.string({ maxLength: 4 }), fc.anything({ maxDepth: 1 })),
      headers: fc.anything({ maxDepth: 2 }),
      type: fc.oneof(fc.constantFrom('text', 'binary', 'ping'), fc.anything({ maxDepth: 1 })),
    },
    { requiredKeys: [] },
  );
  const item = fc.oneof(
    fc.anything({ maxDepth: 2 }),
    fc.record(
      {
        channel: fc.oneof(fc.string({ maxLength: 5 }), fc.anything({ maxDepth: 1 })),
        id: fc.anything({ maxDepth: 1 }),
        'prev-id': fc.anything({ maxDepth: 1 }),
        meta: fc.anything({ maxDepth: 2 }),
        'no-seq': fc.anything({ maxDepth: 1 }),
        formats: fc.oneof(fc.record({ 'http-stream': format, 'http-response': format, 'ws-message': format }, { requiredKeys: [] }), fc.anything({ maxDepth: 1 })),
        'http-stream': format,
      },
      { requiredKeys: [] },
    ),
  );
  const body = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.json({ maxDepth: 3 }),
    fc.array(item, { maxLength: 4 }).map((items) => JSON.stringify({ items })),
  );
  fc.assert(
    fc.property(body, (text) => {
      try {
        parsePublishBody(text, { maxMessageBytes: 8 });
      } catch (err) {
        if (!(err instanceof PublishError)) throw err;
        assert.ok(codes.has(err.code), err.code);
        assert.ok(err.httpStatus === 400 || err.httpStatus === 413);
      }
    }),
    { numRuns: 3_000 },
  );
});

test('property: a publish body split at random byte boundaries is read whole', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('split');
    instruct.setHoldStream();
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/split');
  await heldCount(hf, 1);
  let expected = '';
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 20, unit: 'grapheme' }), fc.uniqueArray(fc.nat(), { maxLength: 6 }), fc.boolean(), async (text, cuts, chunked) => {
      const content = `${run++}:${text};`;
      const body = Buffer.from(JSON.stringify({ items: [{ channel: 'split', formats: { 'http-stream': { content } } }] }));
      const at = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((x, y) => x - y);
      const pieces: Buffer[] = [];
      let from = 0;
      for (const c of at) {
        pieces.push(body.subarray(from, c));
        from = c;
      }
      pieces.push(body.subarray(from));
      const raw = await RawClient.connect(t, hf.controlAddress.port);
      raw.write(`POST /publish HTTP/1.1\r\nHost: control\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`}\r\n\r\n`);
      for (const piece of pieces) {
        if (piece.length === 0) continue;
        raw.write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (chunked) raw.write('0\r\n\r\n');
      const res = await raw.readResponse();
      assert.equal(res.status, 200, res.body.toString());
      expected += content;
      await client.waitFor((b) => b.length >= expected.length, 'the published content');
      assert.equal(client.body, expected);
      raw.socket.destroy();
    }),
    { numRuns: 40 },
  );
});
