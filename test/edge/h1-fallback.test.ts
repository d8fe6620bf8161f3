import assert from 'node:assert/strict';
import { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { startBackend } from '../helpers/backend.js';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { RawClient } from '../helpers/raw.js';
import { HeldStream, heldCount, publisherFor, startGripBackend } from '../hold/push-helpers.js';

/**
 * The node:http fallback (what the edge runs when http/llhttp.ts's start-up check fails, or when asked with
 * HOLDFAST_HTTP1_ENGINE=node-http): the rest of test/edge runs on the llhttp engine, so this keeps the
 * fallback honest on the paths every deployment uses. Each test file runs in its own process, so setting the
 * variable here touches no other file.
 */
process.env.HOLDFAST_HTTP1_ENGINE = 'node-http';

test('the fallback serves persistent, pipelined HTTP/1.1 in order with Node’s ServerResponse', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url]);
  assert.equal(hf.edge.engine, 'node-http');
  let responses = 0;
  hf.edge.server.on('request', (_req: unknown, res: unknown) => {
    if (res instanceof ServerResponse) responses++;
  });
  const client = await RawClient.connect(t, hf.port);
  client.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi');
  const answers = await client.readResponses(3);
  assert.deepEqual(answers.map((r) => r.body.toString()), ['GET /a\n', 'GET /b\n', 'POST /c\n']);
  assert.equal(backend.seen[2]!.body.toString(), 'hi');
  assert.equal(responses, 3, "Node's server answered them");
  assert.equal(client.ended, false);
});

test('the fallback refuses a malformed request with the edge’s own answer and forwards nothing', async (t) => {
  const backend = await startBackend(t);
  const hf = await startTestHoldfast(t, [backend.url], { log: { level: 'silent' } });
  const client = await RawClient.connect(t, hf.port);
  client.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  const res = await client.readResponse();
  assert.equal(res.status, 400);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_MALFORMED_REQUEST');
  assert.equal(backend.seen.length, 0);
});

test('the fallback holds an SSE stream and delivers a publish to it', async (t) => {
  const backend = await startGripBackend(t, (_req, res) => {
    const instruct = res.grip.startInstruct();
    instruct.addChannel('fallback');
    instruct.setHoldStream();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(':open\n\n');
  });
  const hf = await startTestHoldfast(t, [backend.url]);
  const stream = await HeldStream.open(t, hf.port, '/events');
  await stream.waitForText(':open\n\n');
  await heldCount(hf, 1);
  await publisherFor(hf).publishHttpStream('fallback', 'data: over node:http\n\n');
  await stream.waitForText('data: over node:http\n\n');
});
