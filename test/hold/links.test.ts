import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel, Publisher } from '@fanoutio/grip';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { HeldStream, heldCount, publisherFor, publishRaw, startGripBackend, streamItem, until } from './push-helpers.js';

const T0 = 1_700_000_000_000;

test('Grip-Link rel=next: fetched when the stream idles for its timeout, its body appended', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 });
  const backend = await startGripBackend(t, (req, res) => {
    if (req.url === '/next') {
      res.end('page2\n');
      return;
    }
    const instruct = res.grip.startInstruct();
    instruct.addChannel('paged');
    instruct.setHoldStream();
    instruct.setNextLink('/next', 10);
    res.end('page1\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/first', ['X-Client: kept']);
  await client.waitForText('page1\n');
  await heldCount(hf, 1);
  t.mock.timers.tick(6_000);
  // Traffic restarts the idle timer: the link is due 10 s after this item, not after the hold began.
  await publishRaw(hf, { items: [streamItem('paged', 'live\n')] });
  await client.waitForText('live\n');
  t.mock.timers.tick(6_000);
  assert.equal(backend.seen.length, 1);
  t.mock.timers.tick(4_000);
  await client.waitFinished();
  assert.equal(client.body, 'page1\nlive\npage2\n', 'a link answer without instructions ends the stream');
  const next = backend.seen[1]!;
  assert.equal(next.method, 'GET');
  assert.equal(next.url, '/next');
  assert.equal(next.headers['x-client'], 'kept', 'links repeat the original request\'s headers');
  const verifier = new Publisher({ control_uri: hf.controlUrl, verify_iss: 'pushpin', verify_key: 'changeme' });
  assert.equal((await verifier.validateGripSig(next.headers['grip-sig'] as string)).isSigned, true);
  assert.equal(hf.holds.heldCount, 0);
});

test('recovery: a stream whose prev-id is not in history fetches its next link at once with Grip-Last', async (t) => {
  const backend = await startGripBackend(t, (req, res) => {
    const instruct = res.grip.startInstruct();
    if (req.url === '/recover') {
      instruct.addChannel(new Channel('rec', '9'));
      instruct.setHoldStream();
      res.end('recovered 8..9\n');
      return;
    }
    instruct.addChannel(new Channel('rec', '7'));
    instruct.setHoldStream();
    instruct.setNextLink('/recover', 120);
    res.end('start\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const client = await HeldStream.open(t, hf.port, '/stream');
  await client.waitForText('recovered 8..9\n');
  const recover = backend.seen[1]!;
  assert.equal(recover.url, '/recover');
  assert.equal(recover.headers['grip-last'], 'rec; last-id=7');
  await heldCount(hf, 1);
  await publisherFor(hf).publishHttpStream('rec', 'ten\n', '10', '9');
  await client.waitForText('ten\n');
  assert.equal(client.body, 'start\nrecovered 8..9\nten\n');
});

test('recovery: a prev-id found in history replays from it, no link fetched', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel(new Channel('hist', '1'));
    instruct.setHoldStream();
    instruct.setNextLink('/never', 120);
    res.end('start\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  await publishRaw(hf, { items: [streamItem('hist', 'one\n', '1'), streamItem('hist', 'two\n', '2'), streamItem('hist', 'three\n', '3')] });
  const client = await HeldStream.open(t, hf.port, '/stream');
  await client.waitForText('three\n');
  assert.equal(client.body, 'start\ntwo\nthree\n');
  assert.equal(backend.seen.length, 1);
});

test('Grip-Link rel=gone: POSTed when the client disconnects, not when the publisher closes the stream', async (t) => {
  const backend = await startGripBackend(t, (req, res) => {
    if (req.url!.startsWith('/gone')) {
      res.end();
      return;
    }
    const who = req.url!.slice(1);
    const instruct = res.grip.startInstruct();
    instruct.addChannel(who);
    instruct.setHoldStream();
    res.setHeader('Grip-Link', `</gone?${who}>; rel=gone`);
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const a = await HeldStream.open(t, hf.port, '/a');
  await heldCount(hf, 1);
  const b = await HeldStream.open(t, hf.port, '/b');
  await heldCount(hf, 2);
  await publishRaw(hf, { items: [{ channel: 'b', formats: { 'http-stream': { action: 'close' } } }] });
  await b.waitFinished();
  a.socket.destroy();
  await until(() => backend.seen.some((r) => r.url === '/gone?a'), 'the gone POST');
  const gone = backend.seen.find((r) => r.url === '/gone?a')!;
  assert.equal(gone.method, 'POST');
  assert.equal(typeof gone.headers['grip-sig'], 'string');
  assert.ok(!backend.seen.some((r) => r.url === '/gone?b'), 'a stream the publisher ended is not "gone"');
  assert.equal(hf.holds.heldCount, 0);
});
