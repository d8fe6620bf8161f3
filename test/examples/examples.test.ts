// Each app in examples/ run behind a real Holdfast with its own holdfast.yaml: an SSE client (eventsource),
// a long-poll and a WebSocket client (ws) are held, and one POST to the app's /publish reaches all three.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { Inbox, openEventSource } from '../helpers/sse.js';
import { eventually, within } from '../helpers/until.js';
import { metricValue } from '../helpers/holdfast.js';
import { runExample } from './run-example.js';

for (const name of ['express-serve-grip', 'node-http']) {
  test(`examples/${name}: SSE, long-poll and WebSocket-over-HTTP clients get one publish through Holdfast; Grip-Sig is checked`, async (t) => {
    const example = await runExample(t, name);

    const inbox = new Inbox(openEventSource(t, `${example.url}/events`));
    const poll = fetch(`${example.url}/poll`);
    const ws = new WebSocket(`${example.url.replace('http:', 'ws:')}/ws`);
    t.after(() => ws.terminate());
    const wsMessages: string[] = [];
    ws.on('message', (data: Buffer) => wsMessages.push(data.toString('utf8')));
    // The app subscribes the socket before it says welcome, so the channel is held once it arrives.
    await eventually(() => wsMessages.includes('welcome'), 15_000, 'the WebSocket welcome');
    ws.send('ping');
    await eventually(() => wsMessages.includes('echo: ping'), 15_000, 'the WebSocket echo');
    await eventually(
      async () => ((await metricValue(example.holdfast, 'holdfast_subscriptions')) ?? 0) >= 3,
      15_000,
      'three subscriptions (SSE, long-poll, WebSocket)',
    );

    const published = await fetch(`${example.url}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: 'hello from the example',
    });
    assert.equal(published.status, 200, await published.clone().text());
    await published.arrayBuffer();

    await inbox.waitCount(1);
    assert.equal(inbox.events[0]?.data, 'hello from the example');
    const answer = await within(poll, 15_000, 'the long-poll answer');
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { messages: ['hello from the example'] });
    await eventually(() => wsMessages.includes('hello from the example'), 15_000, 'the WebSocket publish');

    // The app holds nobody who did not come through Holdfast: no Grip-Sig, or one signed with another key
    // (Pushpin's default, not the example's grip.sigKey), is answered 501.
    const direct = await fetch(`${example.appUrl}/events`);
    assert.equal(direct.status, 501);
    await direct.arrayBuffer();
    const forgedSig = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('pushpin')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('changeme'));
    const forged = await fetch(`${example.appUrl}/events`, { headers: { 'Grip-Sig': forgedSig } });
    assert.equal(forged.status, 501);
    await forged.arrayBuffer();
  });
}
