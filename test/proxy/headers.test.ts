import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test, type TestContext } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { listen } from '../helpers/listen.js';
import { startRawBackend } from '../helpers/raw-backend.js';
import { RawClient } from '../helpers/raw.js';

/** Lower-cased header names a backend got, in order. */
function names(rawHeaders: readonly string[]): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

test('on the way to the backend: hop-by-hop and Connection-named fields are removed', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write(
    [
      'GET /hop HTTP/1.1',
      'Host: app.test:8080',
      'Connection: keep-alive, X-Hop-Secret, x-other-hop',
      'X-Hop-Secret: 1',
      'X-Other-Hop: 2',
      'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive',
      'TE: trailers',
      'Trailer: X-Checksum',
      'Upgrade: h2c',
      'X-Custom: kept',
      '',
      '',
    ].join('\r\n'),
  );
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  const seen = backend.seen[0]!;
  const got = names(seen.rawHeaders);
  // RFC 9110 §7.6.1: the hop-by-hop fields (Connection itself is checked below) and every field it names.
  for (const name of ['keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'x-hop-secret', 'x-other-hop']) {
    assert.ok(!got.includes(name), `${name} must not reach the backend; got ${got.join(', ')}`);
  }
  // The one Connection field the backend sees is the backend hop's own, without the client's tokens.
  assert.equal(seen.headers.connection, 'keep-alive');
  assert.equal(seen.headers['x-custom'], 'kept');
  assert.equal(seen.headers.host, 'app.test:8080', 'Host is preserved');
});

test('Host and Content-Length named in Connection still reach the backend, with X-Forwarded-Host', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /named HTTP/1.1\r\nHost: app.test\r\nConnection: close, Host, Content-Length, X-Gone\r\nX-Gone: 1\r\nContent-Length: 5\r\n\r\nhello');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  const seen = backend.seen[0]!;
  assert.equal(seen.headers.host, 'app.test', 'the client cannot make the backend lose Host');
  assert.equal(seen.headers['x-forwarded-host'], 'app.test');
  assert.equal(seen.headers['content-length'], '5');
  assert.equal(seen.body.toString(), 'hello');
  assert.equal(seen.headers['x-gone'], undefined, 'other named fields are still removed');
});

test('a chunked upload is re-framed by the backend hop, its client framing fields are not forwarded', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write(
    'POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nTE: trailers\r\n\r\n' +
      '5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n',
  );
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  const seen = backend.seen[0]!;
  assert.equal(seen.body.toString(), 'hello world');
  const got = names(seen.rawHeaders);
  assert.ok(!got.includes('trailer') && !got.includes('te'), got.join(', '));
  // At most the backend hop's own framing (undici chunks a streamed body itself), never a duplicate.
  assert.ok(got.filter((n) => n === 'transfer-encoding').length <= 1);
});

test('client-sent Grip-* headers never reach the backend', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write(
    'GET /grip HTTP/1.1\r\nHost: app.test\r\nGrip-Sig: forged.jwt.value\r\nGrip-Hold: stream\r\ngrip-channel: admin\r\n' +
      'Grip-Last: admin; last-id=1\r\nX-Grippy: not-a-grip-header\r\n\r\n',
  );
  assert.equal((await client.readResponse()).status, 200);
  // Holdfast may add Grip-* fields of its own (its signed Grip-Sig, as Pushpin does); none of the client's
  // fields or values may pass.
  const raw = backend.seen[0]!.rawHeaders;
  const grip = raw.flatMap((name, i): [string, string][] =>
    i % 2 === 0 && name.toLowerCase().startsWith('grip-') ? [[name.toLowerCase(), raw[i + 1]!]] : [],
  );
  for (const [name, value] of grip) {
    assert.ok(!['grip-hold', 'grip-channel', 'grip-last'].includes(name), `${name} came from the client`);
    assert.ok(!['forged.jwt.value', 'stream', 'admin', 'admin; last-id=1'].includes(value), `${name}: ${value} came from the client`);
  }
  assert.ok(grip.filter(([name]) => name === 'grip-sig').length <= 1, 'at most one Grip-Sig, ours');
  assert.equal(backend.seen[0]!.headers['x-grippy'], 'not-a-grip-header', 'only the Grip- prefix is stripped');
});

test('X-Forwarded-* and Via: appended to what the client sent, proto and host set by us', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write(
    'GET /xff HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\n' +
      'X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nVia: 1.1 cdn\r\n\r\n',
  );
  assert.equal((await client.readResponse()).status, 200);
  const seen = backend.seen[0]!;
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 198.51.100.2, 127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http', 'the client cannot claim https');
  assert.equal(seen.headers['x-forwarded-host'], 'shop.test', 'the Host the client used, not its claim');
  assert.equal(seen.headers.via, '1.1 cdn, 1.1 holdfast');
  assert.equal(seen.headers.host, 'shop.test');
  // One field each: replaced or appended, never duplicated.
  const got = names(seen.rawHeaders);
  for (const n of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'via', 'host']) {
    assert.equal(got.filter((g) => g === n).length, 1, n);
  }
});

test('X-Forwarded-For and Via start fresh when the client sent none', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /plain HTTP/1.1\r\nHost: shop.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  const seen = backend.seen[0]!;
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-forwarded-host'], 'shop.test');
  assert.equal(seen.headers.via, '1.1 holdfast');
});

/** A raw backend answering every request with exactly `response`, to control every response byte. */
async function startRawResponder(t: TestContext, response: string) {
  const heads: string[] = [];
  const server = createServer((socket) => {
    let buf = '';
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        heads.push(buf.slice(0, end));
        buf = buf.slice(end + 4);
        socket.write(response);
      }
    });
  });
  const port = await listen(t, server);
  return { url: `http://127.0.0.1:${port}`, heads };
}

test('on the way back: the backend hop-by-hop and Connection-named fields are removed', async (t) => {
  const backend = await startRawResponder(
    t,
    [
      'HTTP/1.1 200 OK',
      'Content-Type: text/plain',
      'Connection: keep-alive, X-Backend-Hop',
      'X-Backend-Hop: secret',
      'Keep-Alive: timeout=30, max=99',
      'Proxy-Connection: keep-alive',
      'TE: trailers',
      'Trailer: X-Checksum',
      'Upgrade: h2c',
      'X-App: yes',
      'Transfer-Encoding: chunked',
      '',
      '3',
      'abc',
      '0',
      'X-Checksum: 42',
      '',
      '',
    ].join('\r\n'),
  );
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /back HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'abc');
  assert.equal(res.headers['x-app'], 'yes');
  assert.equal(res.headers['content-type'], 'text/plain');
  for (const name of ['x-backend-hop', 'proxy-connection', 'te', 'trailer', 'upgrade']) {
    assert.equal(res.headers[name], undefined, `${name} must not reach the client`);
  }
  // What remains of connection management is the client hop's own, made by Holdfast.
  assert.equal(res.headers.connection, 'keep-alive');
  assert.notEqual(res.headers['keep-alive'], 'timeout=30, max=99');
  assert.ok(!/x-backend-hop/i.test(res.headers.connection));
  assert.equal(res.headers['transfer-encoding'], 'chunked', 'one framing, the client hop own');
  assert.equal(backend.heads.length, 1);
  assert.match(backend.heads[0]!, /^GET \/back HTTP\/1\.1\r\n/);
  assert.equal(client.ended, false);
});

test('a Content-Length response passes through with its length and no framing of the backend hop', async (t) => {
  const backend = await startRawResponder(
    t,
    'HTTP/1.1 201 Created\r\nContent-Length: 5\r\nConnection: X-Only-Hop\r\nX-Only-Hop: 1\r\nKeep-Alive: timeout=9\r\nETag: "v1"\r\n\r\nhello',
  );
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /len HTTP/1.1\r\nHost: app.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 201);
  assert.equal(res.reason, 'Created');
  assert.equal(res.headers['content-length'], '5');
  assert.equal(res.headers['transfer-encoding'], undefined);
  assert.equal(res.headers.etag, '"v1"');
  assert.equal(res.headers['x-only-hop'], undefined);
  assert.notEqual(res.headers['keep-alive'], 'timeout=9');
  assert.equal(res.body.toString(), 'hello');
  assert.equal(backend.heads.length, 1);
});

test('a backend reason phrase with a control byte: the answer is relayed with the standard phrase, streamed or gathered', async (t) => {
  // Node refuses to write such a status line, and the client used to get a cut connection; nginx and HAProxy
  // relay the answer (RFC 9112 §4: a client ignores the reason phrase anyway).
  const backend = await startRawBackend(t, (socket, head) => {
    const path = head.split(' ')[1]!;
    if (path === '/gathered') socket.write('HTTP/1.1 200 O\x01K\r\nContent-Length: 5\r\n\r\nhello');
    else if (path === '/streamed') socket.write('HTTP/1.1 200 O\x01K\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    else socket.write(`HTTP/1.1 404 Not\x7fFound\r\nContent-Length: 0\r\n\r\n`);
  });
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  for (const path of ['/gathered', '/streamed']) {
    client.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 200, path);
    assert.equal(res.reason, 'OK', path);
    assert.equal(res.body.toString(), 'hello', path);
  }
  client.write('GET /other HTTP/1.1\r\nHost: x\r\n\r\n');
  const other = await client.readResponse();
  assert.equal(other.status, 404);
  assert.equal(other.reason, 'Not Found');
  assert.equal(client.ended, false);
});
