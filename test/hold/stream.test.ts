import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpStreamFormat, Publisher } from '@fanoutio/grip';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { HeldStream, heldCount, publisherFor, startGripBackend } from './push-helpers.js';
import { until } from '../helpers/until.js';

test('stream hold: initial body at once, published content in order, close action ends the stream', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('news');
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('[start]\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/news');
  await client.waitForText('[start]\n');
  assert.equal(client.status, 200);
  assert.equal(client.headers['content-type'], 'text/plain');
  assert.match(client.headers['transfer-encoding'] ?? '', /chunked/);
  for (const name of Object.keys(client.headers)) assert.ok(!name.startsWith('grip-'), `${name} reached the client`);
  await heldCount(hf, 1);
  assert.equal(await metricValue(hf, 'holdfast_held_connections', { transport: 'stream' }), 1);

  const publisher = publisherFor(hf);
  for (const line of ['one\n', 'two\n', 'three\n']) await publisher.publishHttpStream('news', line);
  await client.waitForText('three\n');
  assert.equal(client.body, '[start]\none\ntwo\nthree\n');
  assert.equal(await metricValue(hf, 'holdfast_deliveries_total', { transport: 'stream' }), 3);

  await publisher.publishHttpStream('news', new HttpStreamFormat(null, true));
  await client.waitFinished();
  assert.equal(client.body, '[start]\none\ntwo\nthree\n', 'close adds nothing');
  assert.equal(hf.holds.heldCount, 0);
  assert.equal(await metricValue(hf, 'holdfast_held_connections', { transport: 'stream' }), 0);
});

test('stream hold: the backend gets a Grip-Sig js-grip accepts and Grip-Feature, never a client Grip-* header', async (t) => {
  const backend = await startGripBackend(t, (req, res) => {
    // serve-grip offers startInstruct only to requests it believes came through a GRIP proxy.
    assert.equal(req.grip?.isProxied, true);
    const instruct = res.grip.startInstruct();
    instruct.addChannel('sig');
    instruct.setHoldStream();
    res.end('ok\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/sig', [
    'Grip-Sig: forged.jwt.value',
    'Grip-Hold: response',
    'Grip-Channel: admin',
    'Grip-Last: admin; last-id=1',
    'grip-feature: everything',
  ]);
  await client.waitForText('ok\n');
  const seen = backend.seen[0]!;
  const grip = seen.rawHeaders.flatMap((n, i) => (i % 2 === 0 && n.toLowerCase().startsWith('grip-') ? [`${n.toLowerCase()}: ${seen.rawHeaders[i + 1]}`] : []));
  assert.equal(grip.filter((h) => h.startsWith('grip-sig:')).length, 1, grip.join('\n'));
  assert.ok(!grip.some((h) => /forged|admin|everything/.test(h)), `client Grip-* values reached the backend: ${grip.join('\n')}`);
  assert.ok(!grip.some((h) => h.startsWith('grip-hold') || h.startsWith('grip-channel') || h.startsWith('grip-last')));
  const feature = seen.headers['grip-feature'];
  assert.equal(typeof feature, 'string');
  for (const f of ['status', 'link:next', 'link:gone', 'keep-alive', 'filter:skip-self']) assert.ok((feature as string).includes(f), f);

  const sig = seen.headers['grip-sig'] as string;
  const verifier = new Publisher({ control_uri: hf.controlUrl, verify_iss: 'pushpin', verify_key: 'changeme' });
  assert.deepEqual(await verifier.validateGripSig(sig), { isProxied: true, needsSigned: true, isSigned: true });
  // The check is real: another key or issuer rejects the same token.
  const wrongKey = new Publisher({ control_uri: hf.controlUrl, verify_iss: 'pushpin', verify_key: 'other' });
  assert.equal((await wrongKey.validateGripSig(sig)).isSigned, false);
  const wrongIss = new Publisher({ control_uri: hf.controlUrl, verify_iss: 'someone', verify_key: 'changeme' });
  assert.equal((await wrongIss.validateGripSig(sig)).isSigned, false);
});

test('stream hold: a binary published item (content-bin) arrives byte-exact', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('bin');
    instruct.setHoldStream();
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/bin');
  await client.waitHead();
  await heldCount(hf, 1);
  const bytes = Uint8Array.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a]);
  await publisherFor(hf).publishHttpStream('bin', new HttpStreamFormat(bytes));
  await client.waitFor(() => client.bodyBytes.length >= bytes.length, 'binary content');
  assert.deepEqual(client.bodyBytes, Buffer.from(bytes));
});

test('stream hold: two subscribers on one channel both get every item; one leaving does not disturb the other', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('fan');
    instruct.setHoldStream();
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const a = await HeldStream.open(t, hf.port, '/fan');
  const b = await HeldStream.open(t, hf.port, '/fan');
  await heldCount(hf, 2);
  const publisher = publisherFor(hf);
  await publisher.publishHttpStream('fan', 'x');
  await a.waitForText('x');
  await b.waitForText('x');
  a.socket.destroy();
  await until(() => hf.holds.heldCount === 1);
  await publisher.publishHttpStream('fan', 'y');
  await b.waitForText('xy');
  assert.equal(hf.holds.index.holders('fan'), 1);
});

