import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { heldCount, publisherFor, startGripBackend } from '../hold/push-helpers.js';
import { startWsEchoBackend } from '../ws/ws-helpers.js';
import { CONNECTION_CHECKS_OK, checkOf, probe, verdicts } from './probe-helpers.js';

test('probe: Holdfast in front of a plain backend keeps 1.1 and asked-for 1.0 connections, caps requests with Connection: close, pipelines in order', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], {
    limits: { maxRequestsPerConnection: 5 },
    timeouts: { keepAliveIdleMs: 1500 },
  });
  const report = await probe(`${hf.url}/hello`, { idleMaxMs: 20_000 });
  assert.deepEqual(verdicts(report), CONNECTION_CHECKS_OK);
  assert.deepEqual(checkOf(report, 'keepalive.requests').measured, { served: 5, atLeast: false, lastSaidClose: true });
  assert.deepEqual(checkOf(report, 'pipelining').measured, { answers: 3, answeredRequests: [1, 2, 3], orderVerified: true });
  const idle = checkOf(report, 'keepalive.idle').measured;
  assert.equal(idle.atLeast, false, 'Holdfast closes an idle connection within the cap');
  assert.equal(typeof idle.advertisedTimeoutSec, 'number', 'and advertises Keep-Alive: timeout=N');
  assert.deepEqual(report.summary, { ok: 8, warn: 0, fail: 0, skip: 0 });
});

test('probe: a Holdfast SSE hold streams with ids and heartbeats, and replays after Last-Event-ID', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('news');
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end();
  });
  const hf = await startTestHoldfast(t, [backend.url], { push: { sseHeartbeatMs: 1000 } });
  const running = probe(`${hf.url}/events`, { sseWaitMs: 30_000 });
  // The probe's first GET is the hold; publish once it is held so the events reach it.
  await heldCount(hf, 1);
  const publisher = publisherFor(hf);
  await publisher.publishHttpStream('news', 'data: one\n\n', '1');
  await publisher.publishHttpStream('news', 'data: two\n\n', '2');
  const report = await running;
  assert.deepEqual(verdicts(report), { answer: 'ok', 'sse.stream': 'ok', 'sse.ids': 'ok', 'sse.heartbeat': 'ok', 'sse.resume': 'ok' });
  assert.deepEqual(checkOf(report, 'sse.ids').measured, { events: 2, withId: 2, lastId: '2' });
  assert.ok((checkOf(report, 'sse.heartbeat').measured.comments as number) >= 1, 'heartbeats are comments');
  assert.deepEqual(checkOf(report, 'sse.resume').measured, { lastEventId: '1', replayed: 1, replayedIds: ['2'] });
});

test('probe: a WebSocket through Holdfast upgrades, answers a ping, echoes and closes cleanly', async (t) => {
  const backend = await startWsEchoBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  const report = await probe(`ws://127.0.0.1:${hf.port}/chat`);
  assert.deepEqual(verdicts(report), { 'ws.upgrade': 'ok', 'ws.ping': 'ok', 'ws.echo': 'ok', 'ws.close': 'ok' });
  assert.equal(checkOf(report, 'ws.close').measured.code, 1000);
});
