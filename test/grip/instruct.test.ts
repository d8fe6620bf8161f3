import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { GripInstructError, parseInstruct } from '../../src/grip/instruct.js';
import { HeldStream, startGripBackend } from '../hold/push-helpers.js';

function parse(headers: string[], body = '', code = 200) {
  return parseInstruct(code, 'OK', headers, Buffer.from(body));
}

test('instruct: the header forms Pushpin and js-grip write', () => {
  const i = parse([
    'Grip-Hold', 'stream',
    'Grip-Channel', 'a; prev-id=3, b; filter=skip-self; filter=require-sub',
    'grip-channel', 'c; prev-id="x,y"',
    'Grip-Keep-Alive', 'ping\\n; format=cstring; timeout=20; mode=interval',
    'Grip-Set-Meta', 'user="alice", room=r1',
    'Grip-Status', '404 Not Here',
    'Grip-Link', '</next?page=2>; rel=next; timeout=30, </gone>; rel=gone',
    'Content-Type', 'text/plain',
    'X-App', '1',
  ]);
  assert.equal(i.hold, 'stream');
  assert.deepEqual(i.channels, [
    { name: 'a', prevId: '3', filters: [] },
    { name: 'b', prevId: undefined, filters: ['skip-self', 'require-sub'] },
    { name: 'c', prevId: 'x,y', filters: [] },
  ]);
  assert.deepEqual(i.keepAlive, { data: Buffer.from('ping\n'), timeoutSec: 20, mode: 'interval' });
  assert.deepEqual(i.meta, { user: 'alice', room: 'r1' });
  assert.equal(i.response.code, 404);
  assert.equal(i.response.reason, 'Not Here');
  assert.deepEqual(i.nextLink, { url: '/next?page=2', timeoutSec: 30 });
  assert.equal(i.goneLink, '/gone');
  assert.deepEqual(i.response.headers, ['Content-Type', 'text/plain', 'X-App', '1'], 'Grip-* never reach the client');
});

test('instruct: defaults and Pushpin\'s minimum long-poll timeout', () => {
  const i = parse(['Grip-Hold', 'response', 'Grip-Channel', 'c']);
  assert.equal(i.timeoutSec, 55);
  assert.equal(i.keepAlive, null);
  assert.equal(parse(['Grip-Hold', 'response', 'Grip-Channel', 'c', 'Grip-Timeout', '2']).timeoutSec, 5);
  assert.equal(parse(['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'x']).keepAlive?.timeoutSec, 55);
  // An empty Grip-Channel names nothing (serve-grip sends one whenever startInstruct() was called).
  assert.deepEqual(parse(['Grip-Channel', '', 'Grip-Status', '304']).channels, []);
});

/** [what, backend response headers, body]; each must be answered 502 HF_ERR_GRIP_INSTRUCT with nothing held. */
const MALFORMED: [string, string[], string?][] = [
  ['Grip-Hold unknown', ['Grip-Hold', 'forever', 'Grip-Channel', 'c']],
  ['Grip-Hold wrong case', ['Grip-Hold', 'Stream', 'Grip-Channel', 'c']],
  ['Grip-Hold empty', ['Grip-Hold', '', 'Grip-Channel', 'c']],
  ['hold without a channel', ['Grip-Hold', 'response']],
  ['stream without a channel', ['Grip-Hold', 'stream']],
  ['Grip-Channel empty name', ['Grip-Hold', 'stream', 'Grip-Channel', '; prev-id=1']],
  ['Grip-Channel unterminated quote', ['Grip-Hold', 'stream', 'Grip-Channel', 'c; prev-id="1']],
  ['Grip-Channel unknown filter', ['Grip-Hold', 'stream', 'Grip-Channel', 'c; filter=build-id']],
  ['Grip-Channel nine filters', ['Grip-Hold', 'stream', 'Grip-Channel', `c${'; filter=skip-self'.repeat(9)}`]],
  ['Grip-Timeout not a number', ['Grip-Hold', 'response', 'Grip-Channel', 'c', 'Grip-Timeout', 'soon']],
  ['Grip-Timeout negative', ['Grip-Hold', 'response', 'Grip-Channel', 'c', 'Grip-Timeout', '-5']],
  ['Grip-Timeout fractional', ['Grip-Hold', 'response', 'Grip-Channel', 'c', 'Grip-Timeout', '1.5']],
  ['Grip-Timeout with a unit', ['Grip-Hold', 'response', 'Grip-Channel', 'c', 'Grip-Timeout', '30s']],
  ['Grip-Timeout empty', ['Grip-Hold', 'response', 'Grip-Channel', 'c', 'Grip-Timeout', '']],
  ['Grip-Keep-Alive empty data', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', '; format=raw']],
  ['Grip-Keep-Alive unknown mode', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'x; mode=sometimes']],
  ['Grip-Keep-Alive unknown format', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'x; format=hex']],
  ['Grip-Keep-Alive timeout not a number', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'x; timeout=abc']],
  ['Grip-Keep-Alive timeout negative', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'x; timeout=-1']],
  ['Grip-Keep-Alive bad cstring escape', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'a\\q; format=cstring']],
  ['Grip-Keep-Alive short \\x escape', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'a\\x4; format=cstring']],
  ['Grip-Status not a number', ['Grip-Status', 'abc']],
  ['Grip-Status no space before reason', ['Grip-Status', '200OK']],
  ['Grip-Status too large', ['Grip-Status', '1000']],
  ['Grip-Status negative', ['Grip-Status', '-1']],
  ['Grip-Status under 100', ['Grip-Status', '99']],
  ['Grip-Status 100 (interim)', ['Grip-Status', '100 Continue']],
  ['Grip-Status 103 (interim)', ['Grip-Status', '103']],
  ['Grip-Keep-Alive base64 that is not', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Keep-Alive', 'a*b; format=base64']],
  ['Grip-Link without brackets', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Link', '/next; rel=next']],
  ['Grip-Link empty brackets', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Link', '<>; rel=next']],
  ['Grip-Link timeout not a number', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Link', '</n>; rel=next; timeout=x']],
  ['Grip-Link timeout negative', ['Grip-Hold', 'stream', 'Grip-Channel', 'c', 'Grip-Link', '</n>; rel=next; timeout=-1']],
  ['JSON: not JSON', ['Content-Type', 'application/grip-instruct'], '{"hold":'],
  ['JSON: a list', ['Content-Type', 'application/grip-instruct'], '[]'],
  ['JSON: hold not an object', ['Content-Type', 'application/grip-instruct'], '{"hold":"stream"}'],
  ['JSON: unknown mode', ['Content-Type', 'application/grip-instruct'], '{"hold":{"mode":"forever","channels":[{"name":"c"}]}}'],
  ['JSON: channels not a list', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":{"name":"c"}}}'],
  ['JSON: channel without a name', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":[{"prev-id":"1"}]}}'],
  ['JSON: empty channel list', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":[]}}'],
  ['JSON: prev-id a number', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":[{"name":"c","prev-id":1}]}}'],
  ['JSON: filters not a list', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":[{"name":"c","filters":"skip-self"}]}}'],
  ['JSON: timeout a string', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":[{"name":"c"}],"timeout":"30"}}'],
  ['JSON: empty keep-alive', ['Content-Type', 'application/grip-instruct'], '{"hold":{"mode":"stream","channels":[{"name":"c"}],"keep-alive":{"content":""}}}'],
  ['JSON: meta value a number', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":[{"name":"c"}],"meta":{"user":1}}}'],
  ['JSON: response not an object', ['Content-Type', 'application/grip-instruct'], '{"response":"hi"}'],
  ['JSON: response code not a number', ['Content-Type', 'application/grip-instruct'], '{"response":{"code":"abc"}}'],
  ['JSON: response headers a string', ['Content-Type', 'application/grip-instruct'], '{"response":{"headers":"x: y"}}'],
  ['JSON: response body a number', ['Content-Type', 'application/grip-instruct'], '{"response":{"body":5}}'],
  ['JSON: response code 100 (interim)', ['Content-Type', 'application/grip-instruct'], '{"hold":{"channels":[{"name":"c"}]},"response":{"code":100}}'],
  ['JSON: body-bin not base64', ['Content-Type', 'application/grip-instruct'], '{"response":{"body-bin":"no base64 here"}}'],
  ['JSON: keep-alive content-bin not base64', ['Content-Type', 'application/grip-instruct'], '{"hold":{"mode":"stream","channels":[{"name":"c"}],"keep-alive":{"content-bin":"!!"}}}'],
  // Fields Node could not write: they would cut the client's connection at delivery instead.
  ['JSON: response header name with a space', ['Content-Type', 'application/grip-instruct'], '{"response":{"headers":{"Bad Name":"v"}}}'],
  ['JSON: response header value with a line break', ['Content-Type', 'application/grip-instruct'], '{"response":{"headers":[["X-A","a\\r\\nX-Injected: 1"]]}}'],
  ['JSON: response reason with a control character', ['Content-Type', 'application/grip-instruct'], '{"response":{"code":200,"reason":"O\\u0001K"}}'],
];

test('malformed instructions: each is 502 HF_ERR_GRIP_INSTRUCT to the client, nothing held', async (t) => {
  const backend = await startBackend(t, (req, res) => {
    const [, headers, body] = MALFORMED[Number(req.url!.slice(1))]!;
    res.writeHead(200, headers);
    res.end(body ?? 'backend body');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  for (let i = 0; i < MALFORMED.length; i++) {
    const [what] = MALFORMED[i]!;
    const client = await RawClient.connect(t, hf.port);
    client.write(`GET /${i} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 502, what);
    assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_GRIP_INSTRUCT', what);
    assert.ok(!res.body.includes('backend body'), what);
    assert.equal(hf.holds.heldCount, 0, what);
  }
  assert.equal(hf.holds.index.subscriptionCount, 0);
});

test('too many channels: 502 HF_ERR_HOLD_LIMIT, for header and JSON instructs, stream and long-poll', async (t) => {
  const names = Array.from({ length: 6 }, (_, i) => `ch${i}`);
  const forms: [string, string[], string?][] = [
    ['stream header', ['Grip-Hold', 'stream', 'Grip-Channel', names.join(', ')]],
    ['response header', ['Grip-Hold', 'response', ...names.flatMap((n) => ['Grip-Channel', n])]],
    ['json', ['Content-Type', 'application/grip-instruct'], JSON.stringify({ hold: { mode: 'stream', channels: names.map((name) => ({ name })) } })],
  ];
  const backend = await startBackend(t, (req, res) => {
    const [, headers, body] = forms[Number(req.url!.slice(1))]!;
    res.writeHead(200, headers);
    res.end(body ?? '');
  });
  const hf = await startTestHoldfast(t, [backend.url], { push: { maxChannelsPerConnection: 5 } });
  for (let i = 0; i < forms.length; i++) {
    const client = await RawClient.connect(t, hf.port);
    client.write(`GET /${i} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 502, forms[i]![0]);
    assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_HOLD_LIMIT', forms[i]![0]);
  }
  assert.equal(hf.holds.heldCount, 0);
  assert.equal(await metricValue(hf, 'holdfast_subscriptions'), 0);
});

test('serve-grip: a 304 becomes 200 + Grip-Status: 304 (and an empty Grip-Channel); the client gets its 304', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    res.grip.startInstruct();
    res.writeHead(304, { etag: '"v1"' });
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /cached HTTP/1.1\r\nHost: app.test\r\nIf-None-Match: "v1"\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 304);
  assert.equal(res.headers.etag, '"v1"');
  assert.equal(res.headers['x-holdfast-error'], undefined);
});

test('serve-grip: Grip-Status with js-grip on a stream sets the client\'s status line', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('s');
    instruct.setHoldStream();
    instruct.setStatus(203);
    res.end('x');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/s');
  await client.waitForText('x');
  assert.equal(client.status, 203);
});

test('property: random header values and bodies never throw anything but GripInstructError', () => {
  const names = ['Grip-Hold', 'Grip-Channel', 'Grip-Timeout', 'Grip-Keep-Alive', 'Grip-Status', 'Grip-Link', 'Grip-Set-Meta', 'Grip-Expose-Headers', 'Content-Type'];
  const token = fc.constantFrom('stream', 'response', 'c', ';', ',', '=', '"', '\\', '<', '>', '/x', 'prev-id', 'filter', 'skip-self', 'rel', 'next', 'gone', 'timeout', 'format', 'cstring', 'base64', 'mode', 'interval', ' ', '5', '-1', 'application/grip-instruct', '\\x', '\\n');
  const value = fc.oneof(fc.string({ maxLength: 30 }), fc.array(token, { maxLength: 12 }).map((a) => a.join('')));
  const json = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.json({ maxDepth: 4 }),
    fc.record({ hold: fc.anything({ maxDepth: 3 }), response: fc.anything({ maxDepth: 3 }) }).map((o) => JSON.stringify(o)),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(...names), value), { maxLength: 6 }), json, fc.integer({ min: 100, max: 599 }), (pairs, body, code) => {
      try {
        parse(pairs.flat(), body, code);
      } catch (err) {
        if (!(err instanceof GripInstructError)) throw err;
        assert.equal(err.code, 'HF_ERR_GRIP_INSTRUCT');
      }
    }),
    { numRuns: 2_000 },
  );
});

test('instruct: "=" inside a first token is data, not a parameter (link queries, channel names, base64 keep-alives)', () => {
  const i = parse([
    'Grip-Hold', 'stream',
    'Grip-Channel', 'a=b; prev-id=1',
    'Grip-Link', '</feed?page=2&x=y>; rel=next',
    'Grip-Keep-Alive', 'AAE=; format=base64',
  ]);
  assert.deepEqual(i.channels, [{ name: 'a=b', prevId: '1', filters: [] }]);
  assert.equal(i.nextLink?.url, '/feed?page=2&x=y');
  assert.deepEqual(i.keepAlive?.data, Buffer.from([0, 1]));
  assert.deepEqual(parse(['Grip-Set-Meta', 'user=bob, "note"="x"']).meta.user, 'bob');
});
