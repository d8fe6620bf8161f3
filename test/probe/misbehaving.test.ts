import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { probePipelining } from '../../src/probe/pipelining.js';
import { parseTarget } from '../../src/probe/target.js';
import { listen } from '../helpers/listen.js';
import { startRawBackend } from '../helpers/raw-backend.js';
import { checkOf, echoAnswer, probe, targetOf, verdicts } from './probe-helpers.js';

/** Pipelined requests are the ones with the probe's query marker; the rest of the probe asks one at a time. */
const isPipelined = (head: string) => targetOf(head).includes('holdfast-probe=');

test('probe: a 1.1 server that closes after every answer without saying so fails keep-alive, and every check says why', async (t) => {
  const { url } = await startRawBackend(t, (socket, head) => {
    socket.write(echoAnswer(head));
    socket.end();
  });
  const report = await probe(`${url}/`, { maxRequests: 10, idleMaxMs: 2000 });
  assert.deepEqual(verdicts(report), {
    answer: 'ok',
    'keepalive.http11': 'fail',
    'keepalive.http10': 'ok',
    'keepalive.http10-keepalive': 'warn',
    'keepalive.requests': 'warn',
    'keepalive.idle': 'warn',
    pipelining: 'fail',
    'connection-close': 'warn',
  });
  assert.match(checkOf(report, 'keepalive.http11').evidence, /closed before a 2nd request was answered/);
  assert.deepEqual(checkOf(report, 'keepalive.requests').measured, { served: 1, atLeast: false, lastSaidClose: false });
  assert.equal(checkOf(report, 'pipelining').measured.answers, 1);
  assert.equal(checkOf(report, 'connection-close').measured.saidClose, false);
});

test('probe: a server that ignores Connection: close (and keeps 1.0 connections open unasked) is caught answering again', async (t) => {
  const { url } = await startRawBackend(t, (socket, head) => socket.write(echoAnswer(head)));
  const report = await probe(`${url}/`, { maxRequests: 20, idleMaxMs: 300 });
  assert.deepEqual(verdicts(report), {
    answer: 'ok',
    'keepalive.http11': 'ok',
    'keepalive.http10': 'warn',
    'keepalive.http10-keepalive': 'warn',
    'keepalive.requests': 'ok',
    'keepalive.idle': 'ok',
    pipelining: 'ok',
    'connection-close': 'fail',
  });
  assert.deepEqual(checkOf(report, 'connection-close').measured, { closed: false, saidClose: false, answeredAnother: true });
  assert.deepEqual(checkOf(report, 'keepalive.requests').measured, { served: 20, atLeast: true, lastSaidClose: false });
  assert.match(checkOf(report, 'keepalive.requests').evidence, /at least 20/);
  assert.equal(checkOf(report, 'keepalive.idle').measured.atLeast, true);
  assert.deepEqual(checkOf(report, 'pipelining').measured, { answers: 3, answeredRequests: [1, 2, 3], orderVerified: true });

  // The same plain URL asked for as SSE, and as a WebSocket: neither is there.
  const sse = await probe(`${url}/`, { sse: true, sseWaitMs: 500 });
  assert.deepEqual(verdicts(sse), { answer: 'ok', 'sse.stream': 'fail', 'sse.ids': 'skip', 'sse.heartbeat': 'skip', 'sse.resume': 'skip' });
  const ws = await probe(`${url.replace('http:', 'ws:')}/`);
  assert.deepEqual(verdicts(ws), { 'ws.upgrade': 'fail', 'ws.ping': 'skip', 'ws.echo': 'skip', 'ws.close': 'skip' });
  assert.match(checkOf(ws, 'ws.upgrade').evidence, /answered HTTP\/1.1 200/);
});

test('probe: pipelined answers out of order are named by request', async (t) => {
  const queued: string[] = [];
  const { url } = await startRawBackend(t, (socket, head) => {
    if (!isPipelined(head)) return void socket.write(echoAnswer(head));
    queued.push(head);
    // All three in, then answered last first.
    if (queued.length === 3) for (const q of queued.splice(0).reverse()) socket.write(echoAnswer(q));
  });
  const result = await probePipelining(parseTarget(`${url}/`), { timeoutMs: 5000 });
  assert.equal(result.verdict, 'fail');
  assert.deepEqual(result.measured, { answers: 3, answeredRequests: [3, 2, 1], orderVerified: true });
  assert.match(result.evidence, /out of order/);
});

test('probe: a pipelined request the server drops shows as the missing number', async (t) => {
  const { url } = await startRawBackend(t, (socket, head) => {
    if (!(isPipelined(head) && targetOf(head).endsWith('-2'))) socket.write(echoAnswer(head));
  });
  // The finding is an answer that never comes, so the wait for it is the timeout: short here.
  const result = await probePipelining(parseTarget(`${url}/`), { timeoutMs: 1000 });
  assert.equal(result.verdict, 'fail');
  assert.deepEqual(result.measured, { answers: 2, answeredRequests: [1, 3], orderVerified: true });
  assert.match(result.evidence, /request 2 dropped/);
});

test('probe: an SSE stream without ids or heartbeats gets warnings, and nothing to resume from', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: one\n\ndata: two\n\n');
  });
  const port = await listen(t, server);
  const report = await probe(`http://127.0.0.1:${port}/events`, { sseWaitMs: 1500 });
  assert.deepEqual(verdicts(report), { answer: 'ok', 'sse.stream': 'ok', 'sse.ids': 'warn', 'sse.heartbeat': 'warn', 'sse.resume': 'skip' });
  assert.deepEqual(checkOf(report, 'sse.ids').measured, { events: 2, withId: 0, lastId: null });
  assert.equal(checkOf(report, 'sse.heartbeat').measured.heartbeats, 0);
  assert.match(report.notes.join('\n'), /answers an event stream/);
});

test('probe: a WebSocket server that never answers a ping fails the ping check, and only that', async (t) => {
  const server = createServer();
  // autoPong off: ws then leaves pings unanswered, as a broken server or proxy would.
  const wss = new WebSocketServer({ server, autoPong: false });
  wss.on('connection', (ws: WebSocket) => ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  const port = await listen(t, server);
  const report = await probe(`ws://127.0.0.1:${port}/`, { timeoutMs: 1000 });
  assert.deepEqual(verdicts(report), { 'ws.upgrade': 'ok', 'ws.ping': 'fail', 'ws.echo': 'ok', 'ws.close': 'ok' });
  assert.equal(checkOf(report, 'ws.ping').measured.pong, false);
  assert.equal(checkOf(report, 'ws.echo').measured.echoed, true);
  assert.equal(checkOf(report, 'ws.close').measured.code, 1000);
});
