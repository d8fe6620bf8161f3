import assert from 'node:assert/strict';
import type { Server, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startBackend } from '../helpers/backend.js';
import { metricValue, startTestHoldfast } from '../helpers/holdfast.js';
import { eventually, until } from '../helpers/until.js';

function routedTo(group: string, url: string): ConfigInput {
  return {
    listen: '127.0.0.1:0',
    control: '127.0.0.1:0',
    log: { level: 'info' },
    groups: { [group]: { servers: [{ url }] } },
    routes: [{ group }],
  };
}


test('POST /reload under traffic: new requests use the new groups, in-flight ones finish on the old, zero failures', async (t) => {
  const held: ServerResponse[] = [];
  const oldBackend = await startBackend(t, (req, res) => {
    if (req.url === '/slow') held.push(res);
    else res.end('old');
  });
  const newBackend = await startBackend(t, (_req, res) => void res.end('new'));
  let next: ConfigInput = routedTo('v1', oldBackend.url);
  const hf = await startTestHoldfast(t, [], { ...routedTo('v1', oldBackend.url), backends: undefined }, {
    loadConfig: () => validateConfig(next),
  });
  const agent = new Agent({ connections: 16 });
  t.after(() => agent.close());

  let sent = 0;
  let stop = false;
  const failures: string[] = [];
  const bodies = new Map<number, string>();
  const loop = async () => {
    while (!stop) {
      const n = ++sent;
      try {
        const res = await request(`${hf.url}/t${n}`, { dispatcher: agent });
        const body = await res.body.text();
        if (res.statusCode !== 200) failures.push(`${n}: ${res.statusCode} ${String(res.headers['x-holdfast-error'])}`);
        bodies.set(n, body);
      } catch (err) {
        failures.push(`${n}: ${(err as Error).message}`);
      }
    }
  };
  const loops = Array.from({ length: 6 }, loop);
  const slow = [0, 1, 2].map(async () => {
    const res = await request(`${hf.url}/slow`, { dispatcher: agent });
    return { status: res.statusCode, body: await res.body.text() };
  });
  await until(() => held.length === 3 && sent > 100);

  next = routedTo('v2', newBackend.url);
  const reloaded = await request(`${hf.controlUrl}/reload`, { method: 'POST' });
  assert.equal(reloaded.statusCode, 200);
  assert.equal(await reloaded.body.text(), 'reloaded\n');
  const sentAtReload = sent;
  await until(() => newBackend.seen.length >= 200);
  // The old group still has the slow requests: its pool stays open until they finish.
  for (const res of held) res.end('old slow');
  stop = true;
  await Promise.all(loops);
  for (const r of await Promise.all(slow)) assert.deepEqual(r, { status: 200, body: 'old slow' });

  assert.deepEqual(failures, [], 'nothing failed or was dropped');
  for (const seen of oldBackend.seen.filter((s) => s.url.startsWith('/t'))) {
    assert.ok(Number(seen.url.slice(2)) <= sentAtReload, `${seen.url} was sent after the reload but reached the old group`);
  }
  for (const [n, body] of bodies) if (n > sentAtReload) assert.equal(body, 'new', `request ${n}`);
  assert.equal(hf.routing.groups.has('v1'), false);
  assert.equal(hf.config.routes[0]!.group, 'v2');
  // The retired group's pool closes once idle: the old backend sees its connections go.
  await eventually(async () => (await openConnections(oldBackend.server)) === 0, 10_000, 'the retired pool to close its connections');
  assert.equal(await metricValue(hf, 'holdfast_config_reloads_total', { outcome: 'applied' }), 1);
});

function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
}

test('a bad reload is refused with every bad key, and the running configuration keeps serving', async (t) => {
  const backend = await startBackend(t, (_req, res) => void res.end('current'));
  let next: unknown = null;
  const hf = await startTestHoldfast(t, [], { ...routedTo('v1', backend.url), backends: undefined }, {
    loadConfig: () => validateConfig(next),
  });
  next = {
    listen: '127.0.0.1:0',
    groups: { v2: { servers: [{ url: 'ftp://files.test' }], algorithm: 'fastest' } },
    routes: [{ group: 'nope' }],
  };
  const res = await request(`${hf.controlUrl}/reload`, { method: 'POST' });
  const body = await res.body.text();
  assert.equal(res.statusCode, 400);
  assert.equal(res.headers['x-holdfast-error'], 'HF_ERR_CONFIG');
  for (const path of ['groups.v2.servers.0.url', 'groups.v2.algorithm', 'routes.0.group']) {
    assert.ok(body.includes(path), `${path} is named: ${body}`);
  }
  assert.ok(body.includes('"nope"'));
  const logged = await hf.logs.waitFor({ msg: 'config reload refused, the running one stays' });
  assert.equal(logged.code, 'HF_ERR_CONFIG');

  const after = await request(`${hf.url}/still`);
  assert.equal(after.statusCode, 200);
  assert.equal(await after.body.text(), 'current');
  assert.equal(await metricValue(hf, 'holdfast_config_reloads_total', { outcome: 'refused' }), 1);
  const wrongMethod = await request(`${hf.controlUrl}/reload`);
  await wrongMethod.body.dump();
  assert.equal(wrongMethod.statusCode, 405);
});
