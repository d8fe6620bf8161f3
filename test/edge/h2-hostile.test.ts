// Malformed and hostile HTTP/2 input on the TLS listener, sent byte by byte (test/helpers/h2.ts), since
// node:http2's own client refuses to send most of it. Each is answered on the wire (RST_STREAM, GOAWAY, or
// an error answer naming its code) and none reaches the backend.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBackend, type RecordingBackend } from '../helpers/backend.js';
import { certDir, makeCert } from '../helpers/certs.js';
import { h2Connect, h2Request, RawH2, H2_ERROR } from '../helpers/h2.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { eventually, until } from '../helpers/until.js';

async function start(t: TestContext, overrides: Partial<ConfigInput> = {}) {
  const backend = await startBackend(t);
  const cert = makeCert(certDir(t), 'localhost');
  const hf = await startTestHoldfast(t, [backend.url], { ...overrides, log: { level: 'silent' }, tls: { listen: '127.0.0.1:0', certificates: [cert] } });
  return { hf, backend, port: hf.tlsAddress!.port, ca: readFileSync(cert.cert, 'utf8') };
}

const REQUEST: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/x']];

/** One stream with `fields` on a fresh connection; what came back on it. */
async function send(t: TestContext, port: number, fields: [string, string][]) {
  const raw = await RawH2.connect(t, port, true);
  raw.headers(1, fields);
  const reset = raw.waitFor((f) => f.streamId === 1 && (f.type === 3 || (f.flags & 1) !== 0), 'an answer on stream 1');
  const last = await reset;
  return { raw, rstCode: last.type === 3 ? last.payload.readUInt32BE(0) : null, body: last.type === 3 ? '' : await raw.body(1) };
}

function assertNothingForwarded(backend: RecordingBackend): void {
  assert.equal(backend.seen.length, 0, `forwarded: ${JSON.stringify(backend.seen.map((s) => s.rawHeaders))}`);
}

test('h2 hostile: connection-specific fields, TE other than trailers and bad pseudo-header fields reset the stream (PROTOCOL_ERROR)', async (t) => {
  const { backend, port } = await start(t);
  const cases: Record<string, [string, string][]> = {
    connection: [...REQUEST, ['connection', 'keep-alive']],
    'keep-alive': [...REQUEST, ['keep-alive', 'timeout=5']],
    'proxy-connection': [...REQUEST, ['proxy-connection', 'keep-alive']],
    'transfer-encoding': [...REQUEST, ['transfer-encoding', 'chunked']],
    upgrade: [...REQUEST, ['upgrade', 'websocket']],
    'te: gzip': [...REQUEST, ['te', 'gzip']],
    'no :path': REQUEST.filter(([n]) => n !== ':path'),
    'empty :path': [...REQUEST.slice(0, 3), [':path', '']],
    'relative :path': [...REQUEST.slice(0, 3), [':path', 'x']],
    ':path * without OPTIONS': [...REQUEST.slice(0, 3), [':path', '*']],
    'unknown pseudo-header': [...REQUEST, [':foo', 'bar']],
    'pseudo-header after a field': [[':method', 'GET'], [':scheme', 'https'], ['x-a', '1'], [':authority', 'localhost'], [':path', '/x']],
    'two :method': [...REQUEST, [':method', 'POST']],
    'upper-case name': [...REQUEST, ['X-Upper', '1']],
    ':protocol without CONNECT': [...REQUEST, [':protocol', 'websocket']],
    'neither :authority nor Host': REQUEST.filter(([n]) => n !== ':authority'),
    'two Host fields': [...REQUEST, ['host', 'localhost'], ['host', 'localhost']],
  };
  for (const [name, fields] of Object.entries(cases)) {
    const { rstCode } = await send(t, port, fields);
    assert.equal(rstCode, H2_ERROR.PROTOCOL_ERROR, name);
  }
  assertNothingForwarded(backend);
});

test('h2 hostile: :authority and Host disagreeing, a fragment, too many fields: 400/431 with their codes, never forwarded', async (t) => {
  const { hf, backend, port } = await start(t, { limits: { maxHeaderFields: 5 } });
  assert.match((await send(t, port, [...REQUEST, ['host', 'elsewhere']])).body, /^400 [^\n]*\nHF_ERR_AUTHORITY_MISMATCH:/);
  assert.match((await send(t, port, [...REQUEST.slice(0, 3), [':path', '/x#frag']])).body, /^400 [^\n]*\nHF_ERR_BAD_TARGET:/);
  const many = Array.from({ length: 6 }, (_, i): [string, string] => [`x-f${i}`, 'v']);
  assert.match((await send(t, port, [...REQUEST, ...many])).body, /^431 [^\n]*\nHF_ERR_TOO_MANY_HEADERS:/);
  assertNothingForwarded(backend);
  assert.equal(await metricValue(hf, 'holdfast_client_errors_total', { code: 'HF_ERR_AUTHORITY_MISMATCH' }), 1);
  // The same Host as :authority is fine (compared without case).
  assert.equal((await send(t, port, [...REQUEST, ['host', 'LOCALHOST']])).body, 'GET /x\n');
});

test('h2 hostile: a field name or value HTTP/1.1 could not carry is dropped by nghttp2, never forwarded', async (t) => {
  const { backend, port } = await start(t);
  assert.equal((await send(t, port, [...REQUEST, ['x a', '1']])).body, 'GET /x\n');
  assert.equal((await send(t, port, [...REQUEST, ['x-b', 'a\r\nx-smuggled: 1']])).body, 'GET /x\n');
  for (const seen of backend.seen) {
    assert.ok(!seen.rawHeaders.some((n) => n === 'x a' || n === 'x-b' || n.toLowerCase() === 'x-smuggled'), JSON.stringify(seen.rawHeaders));
  }
});

test('h2 hostile: CONNECT without :protocol is 501; a stream over the acknowledged stream limit ends the connection unforwarded', async (t) => {
  let answer!: () => void;
  const gate = new Promise<void>((resolve) => (answer = resolve));
  const backend = await startBackend(t, async (_req, res) => {
    await gate;
    res.end('late');
  });
  const cert = makeCert(certDir(t), 'localhost');
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' }, limits: { maxConcurrentStreams: 2 }, tls: { listen: '127.0.0.1:0', certificates: [cert] } });
  const port = hf.tlsAddress!.port;
  const session = await h2Connect(t, `https://localhost:${port}`, { ca: readFileSync(cert.cert, 'utf8') });
  const connect = await h2Request(session, { ':method': 'CONNECT', ':authority': 'localhost:443' });
  assert.equal(connect.status, 501);
  assert.equal(connect.headers['x-holdfast-error'], 'HF_ERR_METHOD_NOT_SUPPORTED');

  // nghttp2 treats a third open stream, past SETTINGS_MAX_CONCURRENT_STREAMS the client acknowledged, as a
  // connection error (RFC 9113 §5.1.2 allows a stream or a connection error): the connection is closed.
  const raw = await RawH2.connect(t, port, true);
  // undici sends a request head upstream with the first body bytes, so each stream sends some.
  for (const id of [1, 3]) {
    raw.headers(id, REQUEST, false);
    raw.data(id, 'x', false);
  }
  await until(() => backend.seen.length === 2, 'the two allowed streams to reach the backend');
  raw.headers(5, REQUEST, false);
  raw.data(5, 'x', false);
  await until(() => raw.closed, 'the connection to close');
  answer();
  assert.equal(backend.seen.length, 2, 'the stream over the limit was not forwarded');
  await until(() => hf.edge.h2.size === 1, 'the connection to leave the registry');
  assert.equal((await h2Request(session, { ':path': '/after' })).body, 'late', 'other connections are served');
});

test('h2 hostile: garbage after the preface is a GOAWAY, and the connection is closed by the idle deadline', async (t) => {
  const { hf, backend, port } = await start(t, { timeouts: { keepAliveIdleMs: 300 } });
  const garbage = await RawH2.connect(t, port, true);
  garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  assert.notEqual(await garbage.goAwayCode(), H2_ERROR.NO_ERROR);
  // node:http2 sends GOAWAY for the connection error but leaves the socket open (RFC 9113 §5.4.1 wants it
  // closed): the idle deadline, which sees no stream, closes it.
  await eventually(() => garbage.closed, 10_000, 'the connection to close');
  assertNothingForwarded(backend);
  await until(() => hf.edge.h2.size === 0, 'the connection to leave the registry');
});

test('h2 hostile: a flood of opened-and-reset streams forwards nothing and leaks nothing', async (t) => {
  const { hf, backend, port } = await start(t);
  const flood = await RawH2.connect(t, port, true);
  for (let id = 1; id < 2_000; id += 2) {
    flood.headers(id, REQUEST);
    flood.rst(id, H2_ERROR.CANCEL);
  }
  // A request after the flood on the same connection is answered: the flood was read and dealt with.
  flood.headers(2_001, REQUEST);
  assert.equal(await flood.body(2_001), 'GET /x\n');
  assert.ok(backend.seen.length <= 1, `${backend.seen.length} reset streams were forwarded`);
  await until(() => hf.holds.heldCount === 0);
  assert.equal(await metricValue(hf, 'holdfast_h2_streams_open'), 0);
});
