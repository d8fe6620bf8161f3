import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import type { BackendGroup } from '../../src/proxy/group.js';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast, type TestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { startRawBackend } from '../helpers/raw-backend.js';
import { eventually, within } from '../helpers/until.js';
import { HeldStream, heldCount, startGripBackend } from '../hold/push-helpers.js';
import { WsClient, startRawOverHttpBackend } from '../ws/ws-helpers.js';

// Link fetches and WebSocket-over-HTTP POSTs go to their group the way proxied requests do (issue 12):
// through its admission (concurrency cap, bounded queue), and every failure or answer counts for passive health.

function oneServerGroup(url: string, group: Record<string, unknown> = {}, extra: Partial<ConfigInput> = {}): Partial<ConfigInput> {
  return { backends: undefined, groups: { web: { servers: [{ url }], ...group } }, routes: [{ group: 'web' }], ...extra };
}

function webGroup(hf: TestHoldfast): BackendGroup {
  return hf.routing.groups.get('web')!;
}

/** A GRIP stream whose gone link is POSTed when the client leaves; `/slow` is held until released. */
async function startGoneBackend(t: TestContext) {
  const slow: ServerResponse[] = [];
  const backend = await startGripBackend(t, (req, res) => {
    if (req.url === '/slow') {
      slow.push(res);
      return;
    }
    if (req.url!.startsWith('/gone')) {
      res.end();
      return;
    }
    const instruct = res.grip.startInstruct();
    instruct.addChannel('c');
    instruct.setHoldStream();
    res.setHeader('Grip-Link', '</gone>; rel=gone');
    res.end();
  });
  return { backend, slow };
}

/**
 * A held stream on a one-slot group whose only slot a proxied `/slow` request holds, then the stream's client
 * leaves: its gone link is POSTed to a group at its in-flight limit.
 */
async function goneLinkBehindBusySlot(t: TestContext, queue: { maxLength: number; timeoutMs: number }) {
  const { backend, slow } = await startGoneBackend(t);
  const hf = await startTestHoldfast(t, [], oneServerGroup(backend.url, { maxConcurrentPerServer: 1, queue }));
  const stream = await HeldStream.open(t, hf.port, '/stream');
  await heldCount(hf, 1);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await eventually(() => slow.length === 1, 5_000, 'the slow request at the backend');
  stream.socket.destroy();
  return { hf, backend, slow, client };
}

test('a link fetch to a group at its in-flight limit waits in the group queue, and goes once the slot frees', async (t) => {
  const { hf, backend, slow, client } = await goneLinkBehindBusySlot(t, { maxLength: 10, timeoutMs: 60_000 });
  const group = webGroup(hf);
  // The gone POST is admitted as a proxied request is: no free slot, so it waits in the queue.
  await eventually(() => group.queueLength === 1, 5_000, 'the gone link fetch to wait in the group queue');
  assert.ok(!backend.seen.some((r) => r.url === '/gone'), 'nothing sent while it waits');
  slow[0]!.end('done');
  await client.readResponse();
  await eventually(() => backend.seen.some((r) => r.url === '/gone'), 5_000, 'the gone POST once the slot is free');
  await eventually(() => group.active === 0, 5_000, 'the link fetch to give its slot back');
});

test('a link fetch to a group at its limit with a full queue is refused by the same rule as a proxied request', async (t) => {
  const { hf, backend, slow, client } = await goneLinkBehindBusySlot(t, { maxLength: 0, timeoutMs: 1_000 });
  const refused = await within(hf.logs.waitFor({ msg: 'gone link failed' }), 5_000, 'the gone link to fail');
  assert.match(String(refused.err), /queue is full/);
  slow[0]!.end('done');
  await client.readResponse();
  assert.ok(!backend.seen.some((r) => r.url === '/gone'), 'the refused gone POST never reached the backend');
});

test('a link target that answers garbage marks the server down, as a proxied request answered with garbage does', async (t) => {
  const backend = await startRawBackend(t, (socket, head) => {
    if (head.startsWith('POST /gone')) {
      socket.end('garbage\r\n\r\n');
      return;
    }
    socket.write('HTTP/1.1 200 OK\r\ngrip-hold: stream\r\ngrip-channel: c\r\ngrip-link: </gone>; rel=gone\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n');
  });
  const hf = await startTestHoldfast(t, [], oneServerGroup(backend.url, { passive: { maxFails: 1, failTimeoutMs: 60_000 } }));
  const server = webGroup(hf).servers[0]!;
  const stream = await HeldStream.open(t, hf.port, '/stream');
  await heldCount(hf, 1);
  assert.ok(server.isUp(Date.now()));
  stream.socket.destroy();
  await within(hf.logs.waitFor({ msg: 'backend marked down', backend: backend.url }), 5_000, 'the log line');
  assert.equal(server.isUp(Date.now()), false);
});

test('a WebSocket-over-HTTP backend that answers 500 marks the server down under passive.on5xx, as a proxied 500 does', async (t) => {
  const backend = await startRawOverHttpBackend(t, (socket) => {
    socket.write('HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nboom');
  });
  const hf = await startTestHoldfast(
    t,
    [],
    oneServerGroup(backend.url, { passive: { maxFails: 1, failTimeoutMs: 60_000, on5xx: true } }, { websocket: { overHttpPaths: ['/ws'] } }),
  );
  const server = webGroup(hf).servers[0]!;
  const client = await WsClient.open(t, `ws://127.0.0.1:${hf.port}/ws`);
  assert.ok(server.isUp(Date.now()));
  client.ws.send('hello');
  await within(hf.logs.waitFor({ msg: 'backend marked down', backend: backend.url }), 5_000, 'the log line');
  assert.equal(server.isUp(Date.now()), false);
});

test('a WebSocket-over-HTTP POST to a group at its in-flight limit waits in the group queue', async (t) => {
  const slow: ServerResponse[] = [];
  let posts = 0;
  const backend = await startBackend(t, (req, res) => {
    if (req.url === '/slow') {
      slow.push(res);
      return;
    }
    posts++;
    res.writeHead(200, { 'content-type': 'application/websocket-events' });
    res.end(posts === 1 ? 'OPEN\r\n' : '');
  });
  const hf = await startTestHoldfast(
    t,
    [],
    oneServerGroup(
      backend.url,
      { maxConcurrentPerServer: 1, queue: { maxLength: 10, timeoutMs: 60_000 } },
      { websocket: { overHttpPaths: ['/ws'] } },
    ),
  );
  const group = webGroup(hf);
  const ws = await WsClient.open(t, `ws://127.0.0.1:${hf.port}/ws`);
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await eventually(() => slow.length === 1, 5_000, 'the slow request at the backend');
  ws.ws.send('hello');
  await eventually(() => group.queueLength === 1, 5_000, 'the POST to wait in the group queue');
  assert.equal(posts, 1, 'only the OPEN reached the backend while the slot is taken');
  slow[0]!.end('done');
  await client.readResponse();
  await eventually(() => posts === 2, 5_000, 'the POST once the slot is free');
});
