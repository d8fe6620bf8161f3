import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Channel } from '@fanoutio/grip';
import { startTestHoldfast } from '../helpers/holdfast.js';
import { h2Connect } from '../helpers/h2.js';
import { startGripBackend, until } from './push-helpers.js';

/**
 * A stream held over HTTP/2 gives back what node:http2's compatibility objects keep for a request in
 * progress (h2-compat.ts, releaseForHold), but a GRIP link fetched for it later repeats the original
 * request's fields, as over HTTP/1 (links.test.ts): those must survive the release.
 */
test('HTTP/2: a held stream’s next link repeats the original request’s fields and Host', async (t) => {
  const backend = await startGripBackend(t, (req, res) => {
    const instruct = res.grip.startInstruct();
    if (req.url === '/recover') {
      instruct.addChannel(new Channel('h2rec', '9'));
      instruct.setHoldStream();
      res.end('recovered 8..9\n');
      return;
    }
    // A prev-id not in history: the next link is fetched at once, right after the hold starts.
    instruct.addChannel(new Channel('h2rec', '7'));
    instruct.setHoldStream();
    instruct.setNextLink('/recover', 120);
    res.end('start\n');
  });
  const hf = await startTestHoldfast(t, [backend.url], { h2c: true });
  const session = await h2Connect(t, `http://127.0.0.1:${hf.port}`);
  const stream = session.request({ ':path': '/stream', 'x-client': 'kept' });
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (body += chunk));
  await until(() => body.includes('recovered 8..9\n'), 'the next link’s answer on the stream');
  const next = backend.seen.find((r) => r.url === '/recover');
  assert.ok(next !== undefined, 'the link was fetched');
  assert.equal(next.headers['x-client'], 'kept', 'links repeat the original request’s fields');
  assert.equal(next.headers.host, `127.0.0.1:${hf.port}`);
  stream.close();
});
