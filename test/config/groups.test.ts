import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError, type ConfigIssue } from '../../src/errors.js';

const A = 'http://127.0.0.1:4001';
const B = 'http://127.0.0.1:4002';

function issuesOf(input: unknown): Map<string, ConfigIssue> {
  try {
    validateConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return new Map(err.issues.map((i) => [i.path, i]));
  }
  assert.fail('expected a ConfigError');
}

test('groups as a map or as a list with names give the same configuration, with every default filled', () => {
  const asMap = validateConfig({ groups: { api: { servers: [{ url: A }, { url: B, weight: 3 }] } }, routes: [{ group: 'api' }] });
  const asList = validateConfig({ groups: [{ name: 'api', servers: [{ url: A }, { url: B, weight: 3 }] }], routes: [{ group: 'api' }] });
  assert.deepEqual(asList, asMap);
  assert.equal(asMap.backends, undefined);
  assert.deepEqual(asMap.groups.api, {
    servers: [
      { url: A, weight: 1 },
      { url: B, weight: 3 },
    ],
    algorithm: 'roundRobin',
    slowStartMs: 0,
    maxConcurrentPerServer: 0,
    queue: { maxLength: 1_000, timeoutMs: 5_000 },
    passive: { on5xx: false },
  });
  assert.deepEqual(asMap.routes, [{ group: 'api', pathPrefix: '/', stripPrefix: false }]);
  const full = validateConfig({
    groups: { api: { servers: [{ url: A }], healthCheck: { path: '/healthz' }, compression: {}, sticky: { cookie: 'srv' } } },
    routes: [{ host: 'API.example.com', group: 'api' }],
  });
  assert.deepEqual(full.groups.api!.healthCheck, { path: '/healthz', intervalMs: 2_000, timeoutMs: 1_000, fall: 3, rise: 2 });
  assert.equal(full.groups.api!.compression!.brotliQuality, 4);
  assert.equal(full.groups.api!.compression!.minBytes, 1_024);
  assert.equal(full.routes[0]!.host, 'api.example.com', 'hosts compare lower-cased');
});

test('bad group and route keys are all reported with their paths; a route naming an unknown group names it', () => {
  const issues = issuesOf({
    groups: {
      api: {
        servers: [{ url: 'ftp://x' }, { url: A, weight: -1, wieght: 2 }],
        algorithm: 'hash',
        queue: { maxLength: -5 },
        healthCheck: { path: 'healthz', fall: 0 },
        compression: { types: ['json'] },
      },
      web: { servers: [], sticky: {} },
    },
    routes: [{ group: 'api', host: 'bad host' }, { group: 'nope' }, { group: 'web', stripPrefix: true, replacePrefix: '/x' }],
  });
  const expected = [
    'groups.api.servers.0.url',
    'groups.api.servers.1.weight',
    'groups.api.servers.1.wieght',
    'groups.api.queue.maxLength',
    'groups.api.healthCheck.path',
    'groups.api.healthCheck.fall',
    'groups.api.compression.types.0',
    'groups.web.servers',
    'groups.web.sticky.cookie',
    'routes.0.host',
    'routes.1.group',
    'routes.2',
  ];
  assert.deepEqual([...issues.keys()].sort(), expected.sort());
  assert.equal(issues.get('groups.api.servers.1.wieght')!.expected, 'unknown key');
  assert.ok(issues.get('routes.1.group')!.expected.includes('unknown group "nope"'));
  assert.equal(issues.get('routes.1.group')!.value, 'nope');
  assert.equal(issues.get('groups.api.servers.0.url')!.value, 'ftp://x');
});

test('cross-checks: hash needs hashOn (exactly one key), a list group needs a name, names are unique, routes are needed', () => {
  const hash = issuesOf({
    groups: { a: { servers: [{ url: A }], algorithm: 'hash' }, b: { servers: [{ url: A }], hashOn: { header: 'x', cookie: 'y' } } },
    routes: [{ group: 'a' }],
  });
  assert.deepEqual([...hash.keys()].sort(), ['groups.a.hashOn', 'groups.b.hashOn']);
  const list = issuesOf({ groups: [{ servers: [{ url: A }] }, { name: 'x', servers: [{ url: A }] }, { name: 'x', servers: [{ url: B }] }], routes: [{ group: 'x' }] });
  assert.deepEqual([...list.keys()].sort(), ['groups.0.name', 'groups.2.name']);
  assert.deepEqual([...issuesOf({ groups: { a: { servers: [{ url: A }] } } }).keys()], ['routes']);
  assert.deepEqual([...issuesOf({ backends: [A], groups: { default: { servers: [{ url: B }] } } }).keys()], ['groups.default']);
  assert.deepEqual([...issuesOf({ groups: { a: { servers: [{ url: A, weight: 0 }] } }, routes: [{ group: 'a' }] }).keys()], ['groups.a.servers']);
});

test('backends and groups together: routes may name the default group', () => {
  const config = validateConfig({ backends: [A], groups: { admin: { servers: [{ url: B }] } }, routes: [{ pathPrefix: '/admin', group: 'admin' }, { pathPrefix: '/x', group: 'default' }] });
  assert.deepEqual(config.backends, [A]);
  assert.equal(config.routes.length, 2);
});
