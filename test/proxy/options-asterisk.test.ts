import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { startRawBackend } from '../helpers/raw-backend.js';

/** A raw backend that answers every request with a server-wide OPTIONS answer naming itself. */
function startOptionsBackend(t: TestContext, name: string) {
  const body = `${name}\n`;
  return startRawBackend(t, (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nAllow: GET, POST, OPTIONS\r\nX-Served-By: ${name}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
}

/** A head's fields, lower-cased names, in order. */
function fields(head: string): [string, string][] {
  return head
    .split('\r\n')
    .slice(1)
    .map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
}

test('OPTIONS * reaches the backend as `OPTIONS * HTTP/1.1` with the usual header hygiene, and its answer reaches the client', async (t) => {
  const backend = await startOptionsBackend(t, 'one');
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write(
    'OPTIONS * HTTP/1.1\r\nHost: example.test\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\n',
  );
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.headers.allow, 'GET, POST, OPTIONS');
  assert.equal(res.headers['x-served-by'], 'one');
  assert.equal(res.body.toString(), 'one\n');
  assert.notEqual(res.headers.connection, 'close');

  assert.equal(backend.heads.length, 1);
  const head = backend.heads[0]!;
  assert.equal(head.split('\r\n')[0], 'OPTIONS * HTTP/1.1');
  const seen = new Map(fields(head));
  assert.equal(seen.get('host'), 'example.test');
  assert.equal(seen.get('x-kept'), 'yes');
  assert.equal(seen.get('via'), '1.1 holdfast');
  assert.equal(seen.get('x-forwarded-for'), '127.0.0.1');
  assert.equal(seen.get('x-forwarded-proto'), 'http');
  assert.equal(seen.get('x-forwarded-host'), 'example.test');
  assert.equal(seen.has('x-hop'), false, 'a field named in Connection is hop-by-hop');
  assert.equal(seen.has('keep-alive'), false);
  assert.equal(seen.has('expect'), false);

  // The client connection stays usable.
  client.write('OPTIONS * HTTP/1.1\r\nHost: example.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  assert.equal(backend.heads.length, 2);
});

test('OPTIONS * is routed where the Host root goes, and a prefix rewrite never touches `*`', async (t) => {
  const [site, api, other] = await Promise.all([
    startOptionsBackend(t, 'site'),
    startOptionsBackend(t, 'api'),
    startOptionsBackend(t, 'other'),
  ]);
  const overrides: Partial<ConfigInput> = {
    backends: undefined,
    groups: {
      site: { servers: [{ url: site.url }] },
      api: { servers: [{ url: api.url }] },
      other: { servers: [{ url: other.url }] },
    },
    routes: [
      { host: 'a.test', pathPrefix: '/', group: 'site', replacePrefix: '/app/' },
      { host: 'a.test', pathPrefix: '/api', group: 'api' },
      { group: 'other' },
    ],
  };
  const hf = await startTestHoldfast(t, [], overrides);
  const client = await RawClient.connect(t, hf.port);
  const cases: [string, string][] = [
    ['a.test', 'site'],
    ['A.TEST:8080', 'site'],
    ['b.test', 'other'],
  ];
  for (const [host, servedBy] of cases) {
    client.write(`OPTIONS * HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const res = await client.readResponse();
    assert.equal(res.status, 200, host);
    assert.equal(res.headers['x-served-by'], servedBy, host);
  }
  assert.deepEqual(
    site.heads.map((h) => h.split('\r\n')[0]),
    ['OPTIONS * HTTP/1.1', 'OPTIONS * HTTP/1.1'],
  );
  assert.deepEqual(
    other.heads.map((h) => h.split('\r\n')[0]),
    ['OPTIONS * HTTP/1.1'],
  );
  assert.equal(api.heads.length, 0);

  // The same route rewrites a path as configured, so the `*` above was left alone on purpose.
  client.write('OPTIONS /x HTTP/1.1\r\nHost: a.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  assert.equal(site.heads.at(-1)!.split('\r\n')[0], 'OPTIONS /app/x HTTP/1.1');
});

test('OPTIONS in absolute-form with an empty path is sent as `*` (RFC 9112 §3.2.4); with a path it stays that path', async (t) => {
  const backend = await startOptionsBackend(t, 'one');
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('OPTIONS http://example.test HTTP/1.1\r\nHost: example.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  client.write('OPTIONS http://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  client.write('OPTIONS http://example.test?q HTTP/1.1\r\nHost: example.test\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  assert.deepEqual(
    backend.heads.map((h) => h.split('\r\n')[0]),
    ['OPTIONS * HTTP/1.1', 'OPTIONS / HTTP/1.1', 'OPTIONS /?q HTTP/1.1'],
  );
});

test('OPTIONS * from an HTTP/1.0 client without Host: the backend gets the origin as Host, as on the pooled path', async (t) => {
  const backend = await startOptionsBackend(t, 'one');
  const hf = await startTestHoldfast(t, [backend.url]);
  for (const target of ['*', '/x']) {
    const client = await RawClient.connect(t, hf.port);
    client.write(`OPTIONS ${target} HTTP/1.0\r\n\r\n`);
    assert.equal((await client.readResponse()).status, 200);
  }
  const hosts = backend.heads.map((head) => new Map(fields(head)).get('host'));
  assert.equal(backend.heads[0]!.split('\r\n')[0], 'OPTIONS * HTTP/1.1');
  assert.deepEqual(hosts, [backend.url.slice('http://'.length), backend.url.slice('http://'.length)]);
});

test('OPTIONS * with a body, chunked or with a length: the backend gets it whole and framed', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await RawClient.connect(t, hf.port);
  client.write('OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.equal((await client.readResponse()).status, 200);
  client.write('OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nworld');
  assert.equal((await client.readResponse()).status, 200);
  assert.deepEqual(
    backend.seen.map((r) => [r.method, r.url, r.body.toString(), r.headers['transfer-encoding'], r.headers['content-length']]),
    [
      ['OPTIONS', '*', 'hello', 'chunked', undefined],
      ['OPTIONS', '*', 'world', undefined, '5'],
    ],
  );
});

// `GET *` and `POST *` (refused, never forwarded) are in test/edge/malformed.test.ts with the other refusals.

test('OPTIONS * for a Host whose routes all sit below / goes to that Host\'s routes, and an unknown Host gets 404', async (t) => {
  const [docs, api] = await Promise.all([startOptionsBackend(t, 'docs'), startOptionsBackend(t, 'api')]);
  const overrides: Partial<ConfigInput> = {
    backends: undefined,
    groups: { docs: { servers: [{ url: docs.url }] }, api: { servers: [{ url: api.url }] } },
    routes: [
      { host: 'c.test', pathPrefix: '/api/v1', group: 'api' },
      { host: 'c.test', pathPrefix: '/docs', group: 'docs' },
    ],
  };
  const hf = await startTestHoldfast(t, [], overrides);
  const client = await RawClient.connect(t, hf.port);
  client.write('OPTIONS * HTTP/1.1\r\nHost: c.test\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 200);
  // Both routes are the Host's; the shorter prefix (closer to the whole site) answers for it.
  assert.equal(res.headers['x-served-by'], 'docs');
  assert.deepEqual(docs.heads.map((h) => h.split('\r\n')[0]), ['OPTIONS * HTTP/1.1']);
  assert.equal(api.heads.length, 0);

  const other = await RawClient.connect(t, hf.port);
  other.write('OPTIONS * HTTP/1.1\r\nHost: nowhere.test\r\n\r\n');
  const missing = await other.readResponse();
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['x-holdfast-error'], 'HF_ERR_NO_ROUTE');
  assert.equal(docs.heads.length + api.heads.length, 1, 'nothing else reached a backend');
});
