import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { startBackend, type RecordingBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { within } from '../helpers/until.js';

interface RefusedCase {
  name: string;
  bytes: string;
  status: number;
  code: string;
}

// Each is refused at the edge, answered with a canned error and `Connection: close`, and never forwarded.
// The first block is what llhttp rejects itself (DESIGN.md); the rest are checks of our own.
const refused: RefusedCase[] = [
  {
    name: 'Content-Length together with Transfer-Encoding',
    bytes: 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'two differing Content-Length fields',
    bytes: 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'obs-fold (a header continued on the next line)',
    bytes: 'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'bare LF line endings',
    bytes: 'GET / HTTP/1.1\nHost: x\n\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    // The head is fine, so Node has already emitted the request when the body breaks: the edge must
    // answer that request itself and stop its backend exchange (it used to wait for body bytes forever).
    name: 'an invalid chunk size',
    bytes: 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'a header name with a space',
    bytes: 'GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'a NUL in the target',
    bytes: 'GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'a target that is neither origin- nor absolute-form',
    bytes: 'GET foo HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'headers over limits.maxHeaderBytes (16 KiB)',
    bytes: `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`,
    status: 431,
    code: 'HF_ERR_HEADERS_TOO_LARGE',
  },
  {
    // RFC 9112 §3: the request line alone is over the limit, so the target is too long (nginx answers 414 too).
    name: 'a request target over limits.maxHeaderBytes',
    bytes: `GET /${'a'.repeat(17_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    status: 414,
    code: 'HF_ERR_URI_TOO_LONG',
  },
  {
    name: 'a target over the limit sent without its line end yet',
    bytes: `GET /${'a'.repeat(17_000)}`,
    status: 414,
    code: 'HF_ERR_URI_TOO_LONG',
  },
  {
    name: 'a short target with headers over the limit in the same chunk',
    bytes: `GET /short HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(9_000)}\r\nX-B: ${'b'.repeat(9_000)}\r\n\r\n`,
    status: 431,
    code: 'HF_ERR_HEADERS_TOO_LARGE',
  },
  {
    // RFC 9112 §3.2: a fragment is never part of a request-target; llhttp accepts `#`.
    name: 'a fragment in the target',
    bytes: 'GET /page#section HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_BAD_TARGET',
  },
  {
    name: 'a fragment in an absolute-form target',
    bytes: 'GET http://x/page#section HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_BAD_TARGET',
  },
  {
    // RFC 9112 §6.3: chunked not final means the length is unknowable (llhttp refuses this one).
    name: 'Transfer-Encoding: chunked, gzip',
    bytes: 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'chunked applied twice',
    bytes: 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  // Ours: llhttp lets these through.
  {
    name: 'duplicate Host',
    bytes: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    status: 400,
    code: 'HF_ERR_DUPLICATE_HOST',
  },
  {
    name: 'duplicate Host with the same value',
    bytes: 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n',
    status: 400,
    code: 'HF_ERR_DUPLICATE_HOST',
  },
  {
    name: 'HTTP/1.1 without Host',
    bytes: 'GET / HTTP/1.1\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MISSING_HOST',
  },
  {
    name: 'Transfer-Encoding on HTTP/1.0',
    bytes: 'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    status: 400,
    code: 'HF_ERR_TE_ON_HTTP10',
  },
  {
    name: 'an absolute-form target whose authority differs from Host',
    bytes: 'GET http://evil.test/p HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_AUTHORITY_MISMATCH',
  },
  {
    name: 'an absolute-form target whose port differs from Host',
    bytes: 'GET http://x:8080/p HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_AUTHORITY_MISMATCH',
  },
  {
    // llhttp reads this as HTTP/0.9 and parses the headers after it as if it were HTTP/1.
    name: 'a request line with no version',
    bytes: 'GET /\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_BAD_VERSION',
  },
  {
    name: 'HTTP/2.0 in an HTTP/1 request line',
    bytes: 'GET / HTTP/2.0\r\nHost: x\r\n\r\n',
    status: 505,
    code: 'HF_ERR_VERSION_NOT_SUPPORTED',
  },
  {
    // RFC 9112 §3.2.4: the asterisk-form is for OPTIONS only (OPTIONS * is forwarded: options-asterisk.test.ts).
    name: 'GET * (asterisk-form with a method other than OPTIONS)',
    bytes: 'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_BAD_TARGET',
  },
  {
    name: 'POST * with a body',
    bytes: 'POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
    status: 400,
    code: 'HF_ERR_BAD_TARGET',
  },
  {
    name: 'Transfer-Encoding: gzip, chunked (a coding we do not decode)',
    bytes: 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    status: 501,
    code: 'HF_ERR_UNSUPPORTED_TRANSFER_CODING',
  },
  {
    // RFC 9112 §6.3: no final chunked in a request is a 400, not a 501 (llhttp lets it through).
    name: 'Transfer-Encoding: gzip alone',
    bytes: 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello',
    status: 400,
    code: 'HF_ERR_CHUNKED_NOT_FINAL',
  },
  {
    // RFC 9110 §9.1: an unrecognised method is a 501. llhttp only knows its own list of methods.
    name: 'a method llhttp does not know (FOO)',
    bytes: 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 501,
    code: 'HF_ERR_METHOD_NOT_SUPPORTED',
  },
  {
    name: 'a lower-case method (methods are case-sensitive)',
    bytes: 'get / HTTP/1.1\r\nHost: x\r\n\r\n',
    status: 501,
    code: 'HF_ERR_METHOD_NOT_SUPPORTED',
  },
  {
    name: 'a TLS ClientHello on the plain port',
    bytes: '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'HTTP/3.0 in an HTTP/1 request line',
    bytes: 'GET / HTTP/3.0\r\nHost: x\r\n\r\n',
    status: 505,
    code: 'HF_ERR_VERSION_NOT_SUPPORTED',
  },
  {
    // RFC 9112 §2.3 would serve it as 1.1, but llhttp refuses it: a 505 says which versions are spoken.
    name: 'HTTP/1.2',
    bytes: 'GET / HTTP/1.2\r\nHost: x\r\n\r\n',
    status: 505,
    code: 'HF_ERR_VERSION_NOT_SUPPORTED',
  },
  {
    name: 'HTTP/1.10 (not a version at all)',
    bytes: 'GET / HTTP/1.10\r\nHost: x\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    // Node keeps its first 2000 and silently drops the rest; the default limit is 100 fields.
    name: '101 header fields, well under the byte limit',
    bytes: `GET / HTTP/1.1\r\nHost: x\r\n${'a: b\r\n'.repeat(100)}\r\n`,
    status: 431,
    code: 'HF_ERR_TOO_MANY_HEADERS',
  },
  {
    name: '2,500 header fields (Node alone would forward the first 1000)',
    bytes: `GET / HTTP/1.1\r\nHost: x\r\n${'a: b\r\n'.repeat(2_500)}\r\n`,
    status: 431,
    code: 'HF_ERR_TOO_MANY_HEADERS',
  },
  {
    // RFC 9110 §5.5: field values are VCHAR and obs-text, so DEL is not one.
    name: 'DEL in a field value',
    bytes: 'GET / HTTP/1.1\r\nHost: x\r\nX-Del: a\x7fb\r\n\r\n',
    status: 400,
    code: 'HF_ERR_MALFORMED_REQUEST',
  },
  {
    name: 'CONNECT',
    bytes: 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n',
    status: 501,
    code: 'HF_ERR_METHOD_NOT_SUPPORTED',
  },
];

/**
 * A good request on a fresh connection after the refused one: once it is answered, anything the refused
 * connection had leaked to the backend would have arrived before it, so `seen` holding only this one proves
 * nothing was forwarded.
 */
async function assertOnlyBarrierForwarded(t: TestContext, port: number, backend: RecordingBackend): Promise<void> {
  const barrier = await RawClient.connect(t, port);
  barrier.write('GET /barrier HTTP/1.1\r\nHost: x\r\n\r\n');
  const res = await barrier.readResponse();
  assert.equal(res.status, 200);
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/barrier'],
    'nothing of the refused request reached the backend',
  );
}

for (const c of refused) {
  test(`refused, never forwarded: ${c.name} -> ${c.status} ${c.code}`, async (t) => {
    const backend = await startBackend(t);
    const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
    const client = await RawClient.connect(t, hf.port);
    client.write(Buffer.from(c.bytes, 'latin1'));
    await client.waitEnd();
    const res = await client.readResponse();
    assert.equal(res.status, c.status);
    assert.equal(res.headers['x-holdfast-error'], c.code);
    assert.equal(res.headers.connection, 'close');
    assert.equal(client.pending.length, 0, 'one answer, then the end');
    await assertOnlyBarrierForwarded(t, hf.port, backend);
  });
}

test('a bad chunk behind a pipelined request: its answer first, then the 400, and no whole body reaches the backend', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let firstSeen!: () => void;
  const firstArrived = new Promise<void>((resolve) => (firstSeen = resolve));
  const backend = await startBackend(t, async (req, res, body) => {
    if (req.url === '/first') {
      firstSeen();
      await released;
    }
    res.end(`${req.url} ${body.length}`);
  });
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  // The POST waits behind the GET (an unsafe method is serialised); its head and a good chunk are parsed.
  client.write(
    'GET /first HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
  );
  await within(firstArrived, 10_000, 'the GET at the backend');
  client.write('zz\r\nmore\r\n0\r\n\r\n');
  release();
  await client.waitEnd();
  const [first, bad] = await client.readResponses(2);
  assert.equal(first!.status, 200);
  assert.equal(first!.body.toString(), '/first 0');
  assert.equal(bad!.status, 400);
  assert.equal(bad!.headers['x-holdfast-error'], 'HF_ERR_MALFORMED_REQUEST');
  assert.equal(bad!.headers.connection, 'close');
  assert.equal(client.pending.length, 0);
  const uploads = backend.seen.filter((r) => r.url === '/upload');
  assert.ok(uploads.every((r) => r.body.length === 0), 'the backend never received the body as if it were complete');
});

test('an unknown method behind a pipelined GET: the GET is answered, then the 501 names the method', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  // One write, so the parser fails in a chunk that starts with the good request.
  client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\nBREW /pot HTTP/1.1\r\nHost: x\r\n\r\n');
  await client.waitEnd();
  const [first, bad] = await client.readResponses(2);
  assert.equal(first!.status, 200);
  assert.equal(bad!.status, 501);
  assert.equal(bad!.headers['x-holdfast-error'], 'HF_ERR_METHOD_NOT_SUPPORTED');
  assert.match(bad!.body.toString(), /"BREW"/);
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/first'],
  );
});

test('exactly limits.maxHeaderFields fields are forwarded, every one of them', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { limits: { maxHeaderFields: 40 }, log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  const fields = Array.from({ length: 39 }, (_, i) => `x-field-${i}: v${i}\r\n`).join('');
  client.write(`GET /many HTTP/1.1\r\nHost: x\r\n${fields}\r\n`);
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  const seen = backend.seen[0]!.headers;
  for (let i = 0; i < 39; i++) assert.equal(seen[`x-field-${i}`], `v${i}`);
  client.write(`GET /too-many HTTP/1.1\r\nHost: x\r\n${fields}x-one-more: 1\r\n\r\n`);
  await client.waitEnd();
  const refused = await client.readResponse();
  assert.equal(refused.status, 431);
  assert.equal(refused.headers['x-holdfast-error'], 'HF_ERR_TOO_MANY_HEADERS');
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/many'],
  );
});

test('HTTP/1.0 without Host is forwarded', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /old HTTP/1.0\r\n\r\n');
  await client.waitEnd();
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'GET /old\n');
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/old'],
  );
});

test('an absolute-form target is forwarded with its path and query exactly as sent, not normalised', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  const cases = [
    ['http://example.test/a/%2e%2e/b?q=%41', '/a/%2e%2e/b?q=%41'],
    ['http://example.test/a/./b//c', '/a/./b//c'],
    ['http://example.test/a\\b', '/a\\b'],
    ['http://example.test?x=1', '/?x=1'],
    ['http://example.test', '/'],
  ];
  for (const [target] of cases) {
    client.write(`GET ${target!} HTTP/1.1\r\nHost: example.test\r\n\r\n`);
    assert.equal((await client.readResponse()).status, 200, target);
  }
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    cases.map(([, forwarded]) => forwarded),
  );
});

test('an absolute-form target matching Host is forwarded in origin-form', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET http://Example.test:80/p/q?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'GET /p/q?x=1\n');
  assert.notEqual(res.headers.connection, 'close');
  assert.equal(backend.seen.length, 1);
  assert.equal(backend.seen[0]!.url, '/p/q?x=1');
  assert.equal(backend.seen[0]!.headers.host, 'example.test');
});

// STYLE.md: every parser gets a property that splits valid input at random byte boundaries.
test('property: a valid pipelined pair split at random byte boundaries is answered in order and forwarded exactly', async (t) => {
  const backend = await startBackend(t, (req, res, body) => {
    const text = `${req.method} ${req.url} ${body.toString('hex')}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const path = fc.stringMatching(/^\/[a-z0-9._~-]{0,12}$/);
  await fc.assert(
    fc.asyncProperty(
      path,
      path,
      fc.uint8Array({ minLength: 0, maxLength: 40 }),
      fc.boolean(),
      fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 6 }),
      async (pathA, pathB, body, chunked, cutSeeds) => {
        const bodyBuf = Buffer.from(body);
        const second = chunked
          ? Buffer.concat([
              Buffer.from(`POST ${pathB} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`),
              bodyBuf.length > 0
                ? Buffer.concat([Buffer.from(`${bodyBuf.length.toString(16)}\r\n`), bodyBuf, Buffer.from('\r\n')])
                : Buffer.alloc(0),
              Buffer.from('0\r\n\r\n'),
            ])
          : Buffer.concat([
              Buffer.from(`POST ${pathB} HTTP/1.1\r\nHost: x\r\nContent-Length: ${bodyBuf.length}\r\n\r\n`),
              bodyBuf,
            ]);
        const bytes = Buffer.concat([Buffer.from(`GET ${pathA} HTTP/1.1\r\nHost: x\r\n\r\n`), second]);
        const cuts = [...new Set(cutSeeds.map((s) => 1 + (s % (bytes.length - 1))))].sort((a, b) => a - b);
        const seenBefore = backend.seen.length;
        const client = await RawClient.connect(t, hf.port);
        client.socket.setNoDelay(true);
        let from = 0;
        for (const cut of [...cuts, bytes.length]) {
          const piece = bytes.subarray(from, cut);
          from = cut;
          await new Promise<void>((resolve) => client.socket.write(piece, () => resolve()));
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        const [a, b] = await client.readResponses(2);
        client.socket.destroy();
        assert.equal(a!.status, 200);
        assert.equal(a!.body.toString(), `GET ${pathA} `);
        assert.equal(b!.status, 200);
        assert.equal(b!.body.toString(), `POST ${pathB} ${bodyBuf.toString('hex')}`);
        assert.deepEqual(
          backend.seen.slice(seenBefore).map((r) => `${r.method} ${r.url}`),
          [`GET ${pathA}`, `POST ${pathB}`],
        );
      },
    ),
    { numRuns: 50 },
  );
});

test('a bad chunk while the client keeps uploading: the client reads its 400 before the close, not a reset', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  client.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n');
  // The client does not wait for an answer: it goes on sending, as an uploading client does.
  const piece = Buffer.alloc(256 * 1024, 0x61);
  const timer = setInterval(() => {
    if (!client.ended) client.write(piece);
  }, 1);
  t.after(() => clearInterval(timer));
  const res = await client.readResponse();
  clearInterval(timer);
  assert.equal(res.status, 400);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_MALFORMED_REQUEST');
  assert.equal(res.headers.connection, 'close');
  await client.waitEnd();
  assert.ok(backend.seen.every((r) => r.body.length === 0), 'no body reached the backend as if complete');
});
