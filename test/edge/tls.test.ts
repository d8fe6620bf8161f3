// The TLS client listener and https:// backends, with real TLS clients and certificates made by
// scripts/make-cert.sh (openssl), so the script the README points to is what the tests use.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, Agent } from 'node:https';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startHoldfast } from '../../src/holdfast.js';
import { startBackend } from '../helpers/backend.js';
import { certDir, makeCert, type Cert } from '../helpers/certs.js';
import { LogSink, startTestHoldfast } from '../helpers/holdfast.js';
import { listen } from '../helpers/listen.js';
import { eventually, within } from '../helpers/until.js';
import { connect as netConnect } from 'node:net';
import { startWsEchoBackend } from '../ws/ws-helpers.js';
import { WebSocket, WebSocketServer } from 'ws';
import { heldCount, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';

async function startTls(t: TestContext, backends: string[], certificates: Cert[], overrides: Partial<ConfigInput> = {}) {
  const hf = await startTestHoldfast(t, backends, { ...overrides, tls: { listen: '127.0.0.1:0', certificates, ...overrides.tls } });
  assert.ok(hf.tlsAddress !== null);
  return { hf, tlsPort: hf.tlsAddress.port };
}

/** The certificate the server presents for `servername` (none: no SNI), and the negotiated protocols. */
async function handshake(port: number, servername?: string, extra: { minVersion?: 'TLSv1'; maxVersion?: 'TLSv1.1' } = {}) {
  const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'], ...(servername === undefined ? {} : { servername }), ...extra });
  await within(once(socket, 'secureConnect'), 10_000, 'the TLS handshake');
  const peer: PeerCertificate = socket.getPeerCertificate();
  const out = { subject: peer.subject.CN, fingerprint: peer.fingerprint256, alpn: socket.alpnProtocol, version: socket.getProtocol() };
  socket.destroy();
  return out;
}

function get(port: number, path: string, ca: string, agent?: Agent, servername = 'localhost'): Promise<{ status: number; body: string; headers: IncomingHttpHeaders; socket: TLSSocket }> {
  const answer = new Promise<{ status: number; body: string; headers: IncomingHttpHeaders; socket: TLSSocket }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, servername, agent: agent ?? false, headers: { host: `${servername}:${port}` } }, (res) => {
      const socket = res.socket as TLSSocket;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers, socket }));
    });
    req.on('error', reject);
    req.end();
  });
  return within(answer, 10_000, `the answer to GET ${path} over TLS`);
}

test('tls: proxied requests over TLS 1.3 with keep-alive, and X-Forwarded-Proto https to the backend', async (t) => {
  const dir = certDir(t);
  const cert = makeCert(dir, 'localhost');
  const backend = await startBackend(t);
  const { hf, tlsPort } = await startTls(t, [backend.url], [cert]);
  const ca = readFileSync(cert.cert, 'utf8');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const first = await get(tlsPort, '/one', ca, agent);
  const second = await get(tlsPort, '/two', ca, agent);
  assert.equal(first.status, 200);
  assert.equal(first.body, 'GET /one\n');
  assert.equal(second.body, 'GET /two\n');
  assert.equal(first.socket, second.socket, 'one TLS connection for both');
  assert.equal(first.socket.getProtocol(), 'TLSv1.3');
  assert.equal(backend.seen[0]!.headers['x-forwarded-proto'], 'https');
  assert.equal(backend.seen[0]!.headers['x-forwarded-host'], `localhost:${tlsPort}`);
  // The plain listener still answers, and says http.
  assert.equal((await fetch(`${hf.url}/plain`)).status, 200);
  assert.equal(backend.seen[2]!.headers['x-forwarded-proto'], 'http');
  const ok = await hf.metrics.registry.getSingleMetric('holdfast_tls_handshakes_total')!.get();
  assert.equal(ok.values.find((v) => v.labels.outcome === 'ok')?.value, 1, 'one handshake for two requests');
});

test('tls: SNI picks the certificate that names the host, a wildcard one label deep, else the first; TLS 1.1 is refused', async (t) => {
  const dir = certDir(t);
  const main = makeCert(dir, 'main.test');
  const a = makeCert(dir, 'a.test', 'www.a.test');
  const wild = makeCert(dir, '*.b.test');
  const backend = await startBackend(t);
  const { tlsPort } = await startTls(t, [backend.url], [main, a, wild]);
  assert.equal((await handshake(tlsPort, 'www.a.test')).subject, 'a.test');
  assert.equal((await handshake(tlsPort, 'A.TEST')).subject, 'a.test', 'names compare without case');
  assert.equal((await handshake(tlsPort, 'x.b.test')).subject, '*.b.test');
  assert.equal((await handshake(tlsPort, 'x.y.b.test')).subject, 'main.test', 'a wildcard covers one label only');
  assert.equal((await handshake(tlsPort, 'other.test')).subject, 'main.test');
  const noSni = await handshake(tlsPort);
  assert.equal(noSni.subject, 'main.test');
  assert.equal(noSni.alpn, 'h2', 'ALPN picks h2 when the client offers it (the server prefers it)');
  await assert.rejects(handshake(tlsPort, 'main.test', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }));
});

test('tls: a reload re-reads the certificate files; new handshakes get the new one while a held stream stays', async (t) => {
  const dir = certDir(t);
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  const first = makeCert(join(dir, 'v1'), 'localhost');
  const second = makeCert(join(dir, 'v2'), 'localhost');
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('news');
    instruct.setHoldStream();
    res.end();
  });
  const config = { listen: '127.0.0.1:0', control: '127.0.0.1:0', backends: [backend.url], tls: { listen: '127.0.0.1:0', certificates: [live] } };
  const hf = await startTestHoldfast(t, [backend.url], { tls: config.tls }, { loadConfig: () => validateConfig(config) });
  const tlsPort = hf.tlsAddress!.port;
  const before = await handshake(tlsPort, 'localhost');

  // A held stream over TLS, opened before the swap.
  const ca = readFileSync(first.cert, 'utf8');
  const held = new Promise<{ chunks: string[]; socket: TLSSocket }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: tlsPort, path: '/feed', ca, servername: 'localhost', agent: false }, (res) => {
      const chunks: string[] = [];
      res.setEncoding('utf8');
      res.on('data', (c: string) => chunks.push(c));
      resolve({ chunks, socket: res.socket as TLSSocket });
    });
    req.on('error', reject);
    req.end();
  });
  const stream = await within(held, 10_000, 'the held stream over TLS to open');
  t.after(() => stream.socket.destroy());
  await heldCount(hf, 1);

  copyFileSync(second.cert, live.cert);
  copyFileSync(second.key, live.key);
  hf.reload();
  const after = await handshake(tlsPort, 'localhost');
  assert.notEqual(after.fingerprint, before.fingerprint, 'new handshakes see the renewed certificate');
  assert.equal((await publishRaw(hf, { items: [streamItem('news', 'still here;')] })).status, 200);
  await eventually(() => stream.chunks.join('').includes('still here;'), 5_000, 'the held stream to get the publish');

  // A broken file refuses the reload and keeps the running certificate.
  copyFileSync(first.key, live.key);
  assert.throws(() => hf.reload(), (err: Error) => /tls\.certificates\.0\.key/.test(err.message) && err.message.includes(live.key));
  assert.equal((await handshake(tlsPort, 'localhost')).fingerprint, after.fingerprint);
});

test('tls: a missing, non-PEM or mismatched certificate file is a start error naming the key and the file', async (t) => {
  const dir = certDir(t);
  const one = makeCert(join(dir, '1'), 'localhost');
  const two = makeCert(join(dir, '2'), 'localhost');
  const start = (certificates: Cert[]) =>
    startHoldfast(validateConfig({ listen: '127.0.0.1:0', control: '127.0.0.1:0', backends: ['http://127.0.0.1:9'], tls: { listen: '127.0.0.1:0', certificates } }), { logDestination: new LogSink(), defaultMetrics: false });
  await assert.rejects(start([{ cert: join(dir, 'nope.crt'), key: one.key }]), /tls\.certificates\.0\.cert: ".*nope\.crt" \(a readable file \(ENOENT\)\)/);
  await assert.rejects(start([one, { cert: one.key, key: one.key }]), /tls\.certificates\.1\.cert: .* \(a PEM certificate/);
  await assert.rejects(start([{ cert: one.cert, key: two.key }]), (err: Error) => err.message.includes('tls.certificates.0.key') && err.message.includes(`the private key of the certificate in ${one.cert}`));
  assert.throws(() => validateConfig({ backends: ['http://127.0.0.1:9'], tls: { listen: '127.0.0.1:0' } }), /tls\.certificates/);
  assert.throws(() => validateConfig({ backends: ['http://127.0.0.1:9'], tls: { cert: one.cert } }), /tls\.key/);
});

test('tls: an https:// backend is verified against tls.backendCa, pooled, and refused (502) when its certificate is not trusted', async (t) => {
  const dir = certDir(t);
  const backendCert = makeCert(dir, '127.0.0.1');
  const pem = (file: string) => readFileSync(file, 'utf8');
  let connections = 0;
  const server = createHttpsServer({ cert: pem(backendCert.cert), key: pem(backendCert.key) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`secure ${req.url} via ${String(req.headers['x-forwarded-proto'])}`);
  });
  server.on('secureConnection', () => connections++);
  const port = await listen(t, server);
  const origin = `https://127.0.0.1:${port}`;

  const trusted = await startTestHoldfast(t, [origin], { tls: { backendCa: backendCert.cert } });
  for (const path of ['/a', '/b', '/c']) {
    const res = await fetch(`${trusted.url}${path}`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), `secure ${path} via http`);
  }
  assert.equal(connections, 1, 'one pooled TLS connection to the backend for three requests');

  const untrusting = await startTestHoldfast(t, [origin]);
  const refused = await fetch(`${untrusting.url}/a`);
  assert.equal(refused.status, 502);
  assert.ok(refused.headers.get('x-holdfast-error')?.startsWith('HF_ERR_'));
  const missingCa = join(dir, 'missing.pem');
  await assert.rejects(
    startHoldfast(validateConfig({ listen: '127.0.0.1:0', control: '127.0.0.1:0', backends: [origin], tls: { backendCa: missingCa } }), { logDestination: new LogSink(), defaultMetrics: false }),
    (err: Error) => err.message.includes('tls.backendCa') && err.message.includes(missingCa),
  );
});


test('tls: a WebSocket over the TLS listener (wss://) is passed through to a plain backend and a TLS one', async (t) => {
  const dir = certDir(t);
  const cert = makeCert(dir, 'localhost');
  const ca = readFileSync(cert.cert, 'utf8');
  const plain = await startWsEchoBackend(t);
  // The same echo server behind TLS, as an https:// backend trusted through tls.backendCa.
  const backendCert = makeCert(join(dir, 'backend'), '127.0.0.1');
  const secureServer = createHttpsServer({ cert: readFileSync(backendCert.cert), key: readFileSync(backendCert.key) });
  const secureWss = new WebSocketServer({ server: secureServer });
  secureWss.on('connection', (ws, req) => ws.on('message', (data) => ws.send(`tls ${String(req.headers['x-forwarded-proto'])} ${(data as Buffer).toString()}`)));
  const securePort = await listen(t, secureServer);
  t.after(() => secureWss.close());

  for (const [backend, expected] of [[plain.url, 'hello'], [`https://127.0.0.1:${securePort}`, 'tls https hello']] as const) {
    const { tlsPort } = await startTls(t, [backend], [cert], { tls: { backendCa: backendCert.cert } });
    // ws hands `servername` to tls.connect (SNI and the name checked), though its types do not list it.
    const tlsOptions = { ca, servername: 'localhost' };
    const ws = new WebSocket(`wss://127.0.0.1:${tlsPort}/echo`, tlsOptions);
    t.after(() => ws.terminate());
    await within(once(ws, 'open'), 10_000, 'the wss socket to open');
    const answer = new Promise<string>((resolve) => ws.once('message', (data) => resolve((data as Buffer).toString())));
    ws.send('hello');
    assert.equal(await within(answer, 10_000, 'the echo over wss'), expected);
  }
  assert.equal(plain.handshakes[0]!.headers['x-forwarded-proto'], 'https');
});

test('tls: plain HTTP, garbage or silence on the TLS port never reach a backend: the connection is closed and counted', async (t) => {
  const dir = certDir(t);
  const cert = makeCert(dir, 'localhost');
  const backend = await startBackend(t);
  const { hf, tlsPort } = await startTls(t, [backend.url], [cert], { timeouts: { requestHeadMs: 300 } });
  const closedAfter = async (bytes: string | null) => {
    const socket = netConnect(tlsPort, '127.0.0.1');
    t.after(() => socket.destroy());
    socket.on('error', () => undefined);
    await within(new Promise<void>((resolve) => socket.once('connect', resolve)), 10_000, 'the TCP connection');
    if (bytes !== null) socket.write(bytes);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await within(new Promise<void>((resolve) => socket.once('close', () => resolve())), 5_000, 'the server to close the connection');
    return received;
  };
  // A cleartext request is not answered in the clear (no HTTP response leaks), and nothing is forwarded.
  assert.ok(!(await closedAfter('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')).startsWith('HTTP/'));
  await closedAfter('\x16\x03\x01\x00\x05garbage-that-is-no-client-hello');
  // Silence: dropped by the handshake deadline (timeouts.requestHeadMs), as a slow request head is.
  await closedAfter(null);
  assert.equal(backend.seen.length, 0);
  const metric = await hf.metrics.registry.getSingleMetric('holdfast_tls_handshakes_total')!.get();
  assert.equal(metric.values.find((v) => v.labels.outcome === 'failed')?.value, 3);
});
