// The IPC channel is shared (the bus, the cluster control, prom-client) and its other end is another
// process: every message is validated, and anything malformed is null rather than half-trusted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHubToWorker, parseWorkerToHub } from '../../src/bus/cluster-messages.js';
import { ConfigError } from '../../src/errors.js';
import { fromWireError, parsePrimaryToWorker, parseWorkerToPrimary, toWireError } from '../../src/cluster/messages.js';

test('bus IPC messages: valid ones parse, malformed and foreign ones are null', () => {
  assert.deepEqual(parseWorkerToHub({ hf: 'bus.publish', id: 3, items: ['{}'] }), { hf: 'bus.publish', id: 3, items: ['{}'] });
  assert.deepEqual(parseHubToWorker({ hf: 'bus.published', id: 1, statuses: ['published', 'duplicate'], delivered: 2, unreported: 1, remoteNodes: 3 }), {
    hf: 'bus.published',
    id: 1,
    statuses: ['published', 'duplicate'],
    delivered: 2,
    unreported: 1,
    remoteNodes: 3,
  });
  assert.deepEqual(parseHubToWorker({ hf: 'bus.welcome', engine: 'redis', state: 'connecting' }), { hf: 'bus.welcome', engine: 'redis', state: 'connecting' });
  assert.deepEqual(parseHubToWorker({ hf: 'bus.state', state: 'up' }), { hf: 'bus.state', state: 'up' });
  assert.deepEqual(parseHubToWorker({ hf: 'bus.gap', channel: 'c' }), { hf: 'bus.gap', channel: 'c' });
  const malformed: [string, unknown][] = [
    ['not an object', 'bus.hello'],
    ['null', null],
    ['no tag', { id: 1 }],
    ['another subsystem', { type: 'prom-client:getMetricsReq', requestId: 1 }],
    ['unknown bus kind', { hf: 'bus.nope' }],
    ['negative id', { hf: 'bus.publish', id: -1, items: [] }],
    ['fractional id', { hf: 'bus.history', id: 1.5, channel: 'c', afterId: '1' }],
    ['items not strings', { hf: 'bus.publish', id: 1, items: [{ channel: 'c' }] }],
    ['prefix not boolean', { hf: 'bus.subscribe', channel: 'c', prefix: 'yes' }],
    ['count missing', { hf: 'bus.delivered', id: 1 }],
  ];
  for (const [name, message] of malformed) assert.equal(parseWorkerToHub(message), null, name);
  const malformedFromHub: [string, unknown][] = [
    ['unknown status', { hf: 'bus.published', id: 1, statuses: ['sent'], delivered: 0, unreported: 0, remoteNodes: null }],
    ['delivered negative', { hf: 'bus.published', id: 1, statuses: [], delivered: -1, unreported: 0, remoteNodes: null }],
    ['unreported missing', { hf: 'bus.published', id: 1, statuses: [], delivered: 0, remoteNodes: null }],
    ['remote nodes missing', { hf: 'bus.published', id: 1, statuses: [], delivered: 0, unreported: 0 }],
    ['remote nodes a string', { hf: 'bus.published', id: 1, statuses: [], delivered: 0, unreported: 0, remoteNodes: '2' }],
    ['welcome without engine', { hf: 'bus.welcome', state: 'up' }],
    ['welcome from an unknown engine', { hf: 'bus.welcome', engine: 'kafka', state: 'up' }],
    ['state closed (not a state a worker follows)', { hf: 'bus.state', state: 'closed' }],
    ['gap without channel', { hf: 'bus.gap' }],
    ['found not boolean', { hf: 'bus.history-result', id: 1, items: [], found: 1 }],
    ['reason missing', { hf: 'bus.failed', id: 1 }],
    ['a worker-side kind', { hf: 'bus.publish', id: 1, items: [] }],
  ];
  for (const [name, message] of malformedFromHub) assert.equal(parseHubToWorker(message), null, name);
});

test('cluster control messages: valid ones parse, malformed ones are null; a ConfigError crosses with its issues', () => {
  const ready = { hf: 'cluster.ready', listen: { host: '127.0.0.1', port: 8080 }, control: { host: '127.0.0.1', port: 5561 } };
  assert.deepEqual(parseWorkerToPrimary(ready), ready);
  assert.deepEqual(parsePrimaryToWorker({ hf: 'cluster.drain', extra: 1 }), { hf: 'cluster.drain' });
  const malformed: [string, unknown][] = [
    ['address without port', { ...ready, listen: { host: '127.0.0.1' } }],
    ['exit code not a number', { hf: 'cluster.start-failed', message: 'x', exitCode: '1' }],
    ['error without code', { hf: 'cluster.reloaded', id: 1, error: { httpStatus: 400, message: 'bad' } }],
    ['issues not a list of issues', { hf: 'cluster.reloaded', id: 1, error: { code: 'HF_ERR_CONFIG', httpStatus: 400, message: 'bad', issues: [1] } }],
    ['metrics not a list', { hf: 'cluster.metrics-json', id: 1, metrics: {} }],
    ['a bus message', { hf: 'bus.hello' }],
  ];
  for (const [name, message] of malformed) assert.equal(parseWorkerToPrimary(message), null, name);
  assert.equal(parsePrimaryToWorker({ hf: 'cluster.metrics-result', id: 1, text: 5 }), null, 'text not a string');
  assert.equal(parsePrimaryToWorker({ hf: 'cluster.reload-all-result', id: 1, applied: 1 }), null, 'workers missing');

  const err = new ConfigError([{ path: 'routes.0.group', value: 'x', expected: 'a known group' }]);
  const back = fromWireError(toWireError(err));
  assert.ok(back instanceof ConfigError);
  assert.equal(back.code, 'HF_ERR_CONFIG');
  assert.deepEqual(back.issues, err.issues);
  assert.equal(back.message, err.message);
});
