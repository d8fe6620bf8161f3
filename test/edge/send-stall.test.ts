import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { mock, test, type TestContext } from 'node:test';
import { WebSocketMessageFormat } from '@fanoutio/grip';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { HeldStream, heldCount, publisherFor, publishRaw, startGripBackend, streamItem } from '../hold/push-helpers.js';
import { eventually } from '../helpers/until.js';
import { WsClient, startWsOverHttpBackend } from '../ws/ws-helpers.js';
import { decodeEvents } from '../../src/ws/websocket-events.js';

/**
 * timeouts.sendStallMs (issue 15, defect 8): a client that never reads fills the kernel's socket buffers
 * (megabytes) long before Holdfast's own queue bound counts anything, so a connection whose queued data has
 * not moved for the deadline is cut. The sweep runs on setInterval and reads Date.now(): both are faked;
 * the sockets, and the kernel buffers a paused client leaves full, are real.
 */
const STALL_MS = 2_000;
const SWEEP_MS = 500;
/** Queued in Node beyond what the kernel took: libuv found the socket unwritable, the kernel is full. */
const STUCK_BYTES = 256 * 1024;
const ITEM = 'x'.repeat(64 * 1024);

/** Advance the fake clock one sweep at a time, letting real I/O run between sweeps, until `done` or `ms` passed. */
async function sweepUntil(done: () => boolean, ms: number): Promise<void> {
  for (let passed = 0; passed < ms && !done(); passed += SWEEP_MS) {
    mock.timers.tick(SWEEP_MS);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function fakeClock(t: TestContext): void {
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
}

test('send deadline: an SSE client that never reads is cut after timeouts.sendStallMs and counted; a reader on the channel keeps receiving', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('feed');
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url], { timeouts: { sendStallMs: STALL_MS } });
  fakeClock(t);
  const stalled = await HeldStream.open(t, hf.port, '/events');
  await stalled.waitHead();
  stalled.socket.pause();
  const reader = await HeldStream.open(t, hf.port, '/events');
  await heldCount(hf, 2);
  const [stalledHold] = hf.holds.index.snapshot(['feed']);
  const stalledSocket = (stalledHold!.res as ServerResponse).socket!;

  let published = 0;
  while (stalledSocket.writableLength < STUCK_BYTES) {
    assert.ok(published < 1_000, 'the paused client should leave data queued within 64 MB');
    await publishRaw(hf, { items: [streamItem('feed', `data: ${ITEM}\n\n`)] });
    published++;
    await reader.waitFor((b) => b.length >= published * (ITEM.length + 8), `item ${published}`);
  }
  assert.ok(stalledSocket.writableLength < hf.config.push.maxQueuedBytesPerConnection, 'under the queue bound: not a slow_consumer drop');

  await sweepUntil(() => false, STALL_MS - SWEEP_MS);
  // A cut destroys the socket in the sweep that decides it: checked right after the sweeps, not after I/O.
  assert.equal(stalledSocket.destroyed, false, 'not cut before the deadline');
  assert.equal(hf.holds.heldCount, 2, 'not cut before the deadline');
  await sweepUntil(() => stalledSocket.destroyed, 2 * STALL_MS);
  assert.ok(stalledSocket.destroyed, 'cut at the deadline');
  await eventually(() => hf.holds.heldCount === 1, 10_000, 'the cut client released');
  assert.equal(await metricValue(hf, 'holdfast_drops_total', { reason: 'drain_timeout' }), 1);
  assert.equal((await metricValue(hf, 'holdfast_drops_total', { reason: 'slow_consumer' })) ?? 0, 0);

  const last = await publishRaw(hf, { items: [streamItem('feed', 'data: after\n\n')] });
  assert.equal(last.headers.get('x-holdfast-delivered'), '1');
  await reader.waitForText('data: after\n\n');
  assert.equal(hf.holds.heldCount, 1, 'the reader was never cut');
});

test('send deadline: a GRIP WebSocket that never reads is cut (the backend hears DISCONNECT); a reading one stays', async (t) => {
  const backend = await startWsOverHttpBackend(t, (ws) => {
    ws.accept();
    ws.subscribe('room');
  });
  const hf = await startTestHoldfast(t, [backend.url], { websocket: { overHttpPaths: ['/ws'] }, timeouts: { sendStallMs: STALL_MS } });
  fakeClock(t);
  const url = `ws://127.0.0.1:${hf.port}/ws/chat`;
  const stalled = await WsClient.open(t, url);
  await eventually(() => hf.holds.heldCount === 1, 10_000, 'the first subscription');
  const [stalledSession] = hf.upgrades.sessions;
  stalled.ws.pause();
  const reader = await WsClient.open(t, url);
  await eventually(() => hf.holds.index.holders('room') === 2, 10_000, 'both subscriptions');

  let published = 0;
  while (stalledSession!.bufferedAmount < STUCK_BYTES) {
    assert.ok(published < 1_000, 'the paused client should leave data queued within 64 MB');
    await publisherFor(hf).publishFormats('room', new WebSocketMessageFormat(ITEM));
    published++;
    assert.equal((await reader.nextText()).length, ITEM.length);
  }

  await sweepUntil(() => false, STALL_MS - SWEEP_MS);
  // The sweep that cuts takes the socket out of the watch at once (the reader's, drained, left it already).
  assert.equal(hf.holds.sendStall.size, 1, 'not cut before the deadline');
  assert.equal(hf.holds.heldCount, 2, 'not cut before the deadline');
  await sweepUntil(() => hf.holds.sendStall.size === 0, 2 * STALL_MS);
  await eventually(() => hf.holds.heldCount === 1, 10_000, 'the cut client released');
  assert.equal(await metricValue(hf, 'holdfast_drops_total', { reason: 'drain_timeout' }), 1);
  await eventually(() => backend.seen.some((r) => decodeEvents(r.body).some((e) => e.type === 'DISCONNECT')), 10_000, 'DISCONNECT to the backend');

  await publisherFor(hf).publishFormats('room', new WebSocketMessageFormat('after'));
  assert.equal(await reader.nextText(), 'after');
});

test('send deadline: a proxied response the client stops reading is cut, and the backend connection is let go', async (t) => {
  let backendResponseClosed = false;
  let backendResponse: ServerResponse | null = null;
  const backend = await startBackend(t, (req, res) => {
    if (req.url !== '/big') return void res.end('small');
    backendResponse = res;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.on('close', () => (backendResponseClosed = true));
    // 256 MB, produced as the client takes it: the backend is paused by backpressure, never done.
    let left = 4_096;
    Readable.from((function* () { while (left-- > 0) yield Buffer.alloc(64 * 1024, 0x61); })()).pipe(res);
  });
  const hf: TestHoldfast = await startTestHoldfast(t, [backend.url], { timeouts: { sendStallMs: STALL_MS } });
  fakeClock(t);
  const socket = connect(hf.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  socket.write('GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n');
  socket.pause();
  // Backpressure all the way: the client's kernel buffers, Holdfast's queue, undici paused, the backend's buffers.
  await eventually(() => backendResponse?.writableNeedDrain === true, 10_000, 'the response to back up to the backend');
  const edgeSocket = [...hf.edge.registry.connections()][0]!.socket;

  await sweepUntil(() => false, STALL_MS - SWEEP_MS);
  // A cut destroys the client socket in the sweep that decides it: checked right after the sweeps.
  assert.equal(edgeSocket.destroyed, false, 'not cut before the deadline');
  assert.equal(backendResponseClosed, false, 'not cut before the deadline');
  // The sweep that cuts takes the socket out of the watch; the rest (client close, undici abort, the backend
  // seeing its connection go) is real I/O.
  // On a busy machine the kernel may still take bytes for a while (each restarts the deadline): keep the
  // sweeps going, a sweep per poll, until the cut's real I/O reaches the backend.
  await eventually(async () => {
    mock.timers.tick(SWEEP_MS);
    await new Promise<void>((resolve) => setImmediate(resolve));
    return backendResponseClosed;
  }, 10_000, 'the backend exchange to stop');
  socket.resume();
  await eventually(() => closed, 10_000, 'the client connection closed');
  assert.equal(await metricValue(hf, 'holdfast_client_errors_total', { code: 'HF_ERR_SEND_TIMEOUT' }), 1);

  const ok = await fetch(`${hf.url}/small`);
  assert.equal(await ok.text(), 'small');
});
