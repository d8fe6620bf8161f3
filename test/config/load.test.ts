import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadConfig, validateConfig } from '../../src/config/load.js';
import { ConfigError, type ConfigIssue } from '../../src/errors.js';

const BACKEND = 'http://127.0.0.1:3000';

function tempFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The issues of the ConfigError `fn` throws, keyed by path. */
function issuesOf(fn: () => unknown): Map<string, ConfigIssue> {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.code, 'HF_ERR_CONFIG');
  return new Map(caught.issues.map((i) => [i.path, i]));
}

test('defaults fill everything but the backends', () => {
  const config = loadConfig({ flags: { backend: [BACKEND] }, env: {} });
  assert.deepEqual(config.backends, [BACKEND]);
  assert.equal(config.listen, '127.0.0.1:8080');
  assert.equal(config.control, '127.0.0.1:5561');
  assert.deepEqual(config.limits, {
    maxConnections: 10_000,
    maxConnectionsPerClient: 1_000,
    maxRequestsPerConnection: 1_000,
    maxHeaderBytes: 16_384,
    maxHeaderFields: 100,
    maxConcurrentStreams: 128,
    maxPipelinedInFlight: 8,
  });
  assert.deepEqual(config.timeouts, {
    requestHeadMs: 10_000,
    keepAliveIdleMs: 15_000,
    requestBodyStallMs: 30_000,
    upstreamConnectMs: 5_000,
    upstreamResponseMs: 60_000,
    upstreamBodyStallMs: 120_000,
    sendStallMs: 30_000,
    drainMs: 15_000,
  });
  assert.deepEqual(config.upstream, {
    maxConnectionsPerBackend: 128,
    keepAliveIdleMs: 4_000,
    retries: 2,
    maxFails: 1,
    failTimeoutMs: 10_000,
  });
  assert.deepEqual(config.log, { level: 'info', access: true, accessExcludePaths: [] });
});

test('no backend at all is an error naming backends', () => {
  const issues = issuesOf(() => loadConfig({ env: {} }));
  assert.deepEqual([...issues.keys()], ['backends']);
  assert.equal(issues.get('backends')!.value, undefined);
});

test('precedence: defaults < file < HOLDFAST_* environment < flags', (t) => {
  const file = tempFile(
    t,
    'holdfast.yaml',
    [
      'listen: 127.0.0.1:7001',
      'backends: [http://127.0.0.1:4001]',
      'timeouts:',
      '  drainMs: 1001',
      '  upstreamResponseMs: 3001',
      'upstream:',
      '  retries: 5',
      '',
    ].join('\n'),
  );
  const env = {
    HOLDFAST_LISTEN: '127.0.0.1:7002',
    HOLDFAST_DRAIN_TIMEOUT: '1002',
    HOLDFAST_BACKEND: 'http://127.0.0.1:4002, http://127.0.0.1:4003',
    HOLDFAST_LOG_LEVEL: 'warn',
    HOLDFAST_MAX_CONNECTIONS: '', // empty means unset
    UNRELATED: 'x',
  };
  const flags = { listen: '127.0.0.1:7003', 'log-level': 'error' };
  const config = loadConfig({ file, env, flags });
  assert.equal(config.listen, '127.0.0.1:7003', 'flag beats env and file');
  assert.equal(config.log.level, 'error', 'flag beats env');
  assert.equal(config.timeouts.drainMs, 1002, 'env beats file');
  assert.deepEqual(config.backends, ['http://127.0.0.1:4002', 'http://127.0.0.1:4003'], 'env list, comma separated');
  assert.equal(config.timeouts.upstreamResponseMs, 3001, 'file beats default');
  assert.equal(config.upstream.retries, 5);
  assert.equal(config.limits.maxConnections, 10_000, 'an empty env value leaves the default');
  assert.equal(config.timeouts.requestHeadMs, 10_000, 'untouched siblings of file keys keep their defaults');

  // The same file alone, and with only env.
  assert.equal(loadConfig({ file, env: {} }).listen, '127.0.0.1:7001');
  assert.equal(loadConfig({ file, env }).listen, '127.0.0.1:7002');
});

test('repeated --backend flags are a list, replacing the file and env lists', (t) => {
  const file = tempFile(t, 'c.json', JSON.stringify({ backends: ['http://127.0.0.1:4001'] }));
  const config = loadConfig({
    file,
    env: { HOLDFAST_BACKEND: 'http://127.0.0.1:4002' },
    flags: { backend: ['http://127.0.0.1:4003', 'http://127.0.0.1:4004'] },
  });
  assert.deepEqual(config.backends, ['http://127.0.0.1:4003', 'http://127.0.0.1:4004']);
});

test('YAML and JSON files give the same configuration', (t) => {
  const settings = {
    listen: '[::1]:9000',
    backends: ['http://127.0.0.1:4001', 'http://localhost:4002'],
    limits: { maxConnections: 50, maxRequestsPerConnection: 0 },
    timeouts: { keepAliveIdleMs: 500 },
    upstream: { maxFails: 3, failTimeoutMs: 2_000 },
    log: { level: 'debug', access: false },
  };
  const yaml = tempFile(
    t,
    'holdfast.yml',
    [
      '# comments are fine',
      "listen: '[::1]:9000'",
      'backends:',
      '  - http://127.0.0.1:4001',
      '  - http://localhost:4002',
      'limits:',
      '  maxConnections: 50',
      '  maxRequestsPerConnection: 0',
      'timeouts: { keepAliveIdleMs: 500 }',
      'upstream:',
      '  maxFails: 3',
      '  failTimeoutMs: 2000',
      'log:',
      '  level: debug',
      '  access: false',
    ].join('\n'),
  );
  const json = tempFile(t, 'holdfast.json', JSON.stringify(settings));
  const fromYaml = loadConfig({ file: yaml, env: {} });
  const fromJson = loadConfig({ file: json, env: {} });
  assert.deepEqual(fromYaml, fromJson);
  assert.equal(fromYaml.listen, '[::1]:9000');
  assert.equal(fromYaml.limits.maxConnections, 50);
  assert.equal(fromYaml.limits.maxConnectionsPerClient, 1_000);
  assert.equal(fromYaml.log.access, false);
  assert.deepEqual(fromJson, validateConfig(settings), 'loading a file is validating its contents');
});

test('an empty YAML file is an empty mapping', (t) => {
  const file = tempFile(t, 'empty.yaml', '# nothing yet\n');
  assert.deepEqual(loadConfig({ file, flags: { backend: [BACKEND] } }).backends, [BACKEND]);
});

test('unknown keys are errors naming the full key path', (t) => {
  const file = tempFile(
    t,
    'typo.yaml',
    ['backends: [http://127.0.0.1:4001]', 'limits:', '  maxConections: 5', 'timeout:', '  drainMs: 5', 'log:', '  colour: true'].join(
      '\n',
    ),
  );
  const issues = issuesOf(() => loadConfig({ file, env: {} }));
  assert.deepEqual([...issues.keys()].sort(), ['limits.maxConections', 'log.colour', 'timeout']);
  assert.equal(issues.get('limits.maxConections')!.value, 5);
  assert.deepEqual(issues.get('timeout')!.value, { drainMs: 5 });
  assert.equal(issues.get('log.colour')!.value, true);
});

test('a renamed key names its successor', () => {
  const issues = issuesOf(() =>
    validateConfig({
      upstreams: [BACKEND],
      backends: [BACKEND],
      maxConnections: 10,
      limits: { maxconn: 5 },
      timeouts: { headersMs: 1_000, idleMs: 2_000 },
    }),
  );
  const successors: Record<string, string> = {
    upstreams: 'backends',
    maxConnections: 'limits.maxConnections',
    'limits.maxconn': 'limits.maxConnections',
    'timeouts.headersMs': 'timeouts.requestHeadMs',
    'timeouts.idleMs': 'timeouts.keepAliveIdleMs',
  };
  assert.deepEqual([...issues.keys()].sort(), Object.keys(successors).sort());
  for (const [path, successor] of Object.entries(successors)) {
    assert.ok(issues.get(path)!.expected.includes(successor), `${path} should point at ${successor}: ${issues.get(path)!.expected}`);
  }
  assert.equal(issues.get('limits.maxconn')!.value, 5);
});

test('several bad values and unknown keys are reported at once, each with its path and value', () => {
  const issues = issuesOf(() =>
    validateConfig({
      listen: 'everywhere',
      control: '127.0.0.1:99999',
      backends: ['http://127.0.0.1:4001', 'ftp://files.test', 'http://127.0.0.1:4002/api'],
      limits: { maxConnections: -1, maxHeaderBytes: 10, maxHeaderFields: 0, maxQueue: 3 },
      timeouts: { drainMs: 'soon', upstreamResponseMs: 1.5 },
      idleMs: 5,
      upstream: { retries: 11 },
      log: { level: 'loud', access: 'yes' },
    }),
  );
  const expected: Record<string, unknown> = {
    listen: 'everywhere',
    control: '127.0.0.1:99999',
    'backends.1': 'ftp://files.test',
    'backends.2': 'http://127.0.0.1:4002/api',
    'limits.maxConnections': -1,
    'limits.maxHeaderBytes': 10,
    'limits.maxHeaderFields': 0,
    'limits.maxQueue': 3,
    idleMs: 5,
    'timeouts.drainMs': 'soon',
    'timeouts.upstreamResponseMs': 1.5,
    'upstream.retries': 11,
    'log.level': 'loud',
    'log.access': 'yes',
  };
  assert.deepEqual([...issues.keys()].sort(), Object.keys(expected).sort());
  for (const [path, value] of Object.entries(expected)) assert.deepEqual(issues.get(path)!.value, value, path);
});

test('bad flag and environment values are named by their config path, with the value as given', () => {
  const issues = issuesOf(() =>
    loadConfig({
      env: { HOLDFAST_UPSTREAM_TIMEOUT: 'forever', HOLDFAST_BACKEND: 'not a url' },
      flags: { 'max-connections': 'lots', listen: '8080' },
    }),
  );
  assert.deepEqual([...issues.keys()].sort(), ['backends.0', 'limits.maxConnections', 'listen', 'timeouts.upstreamResponseMs']);
  assert.equal(issues.get('limits.maxConnections')!.value, 'lots');
  assert.equal(issues.get('timeouts.upstreamResponseMs')!.value, 'forever');
  assert.equal(issues.get('backends.0')!.value, 'not a url');
  assert.equal(issues.get('listen')!.value, '8080');
});

test('the error message lists every bad path with its value', () => {
  try {
    validateConfig({ backends: ['nope'], limits: { maxConnections: 0 } });
    assert.fail('should have thrown');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const lines = err.message.split('\n');
    assert.ok(lines.some((l) => l.includes('backends.0') && l.includes('"nope"')));
    assert.ok(lines.some((l) => l.includes('limits.maxConnections') && l.includes('0')));
  }
});

test('a missing config file is a config error naming the file', () => {
  const path = join(tmpdir(), 'holdfast-does-not-exist', 'holdfast.yaml');
  const issues = issuesOf(() => loadConfig({ file: path, flags: { backend: [BACKEND] } }));
  assert.deepEqual([...issues.keys()], ['(file)']);
  assert.equal(issues.get('(file)')!.value, path);
  assert.ok(issues.get('(file)')!.expected.includes('ENOENT'));
});

test('unparseable files are config errors naming the file', (t) => {
  const cases = [
    tempFile(t, 'bad.json', '{"backends": ["http://127.0.0.1:1"],'),
    tempFile(t, 'bad.yaml', 'backends: [http://127.0.0.1:1\nlisten: :80\n'),
    tempFile(t, 'tabs.yaml', 'limits:\n\tmaxConnections: 5\n'),
    tempFile(t, 'list.yaml', '- http://127.0.0.1:1\n'),
    tempFile(t, 'scalar.json', '42'),
    // A "billion laughs" alias bomb: refused by the YAML parser's alias budget, never expanded.
    tempFile(
      t,
      'bomb.yaml',
      ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`)].join('\n'),
    ),
    tempFile(t, 'binary.yaml', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('latin1')),
  ];
  for (const file of cases) {
    const issues = issuesOf(() => loadConfig({ file, flags: { backend: [BACKEND] } }));
    assert.deepEqual([...issues.keys()], ['(file)'], file);
    assert.equal(issues.get('(file)')!.value, file);
  }
});

test('a control listener off loopback needs publish.key; a name that only starts with 127. is not loopback', () => {
  for (const control of ['0.0.0.0:5561', '10.0.0.5:5561', '127.evil.example:5599', '127.0.0.1.nip.example:5561', '[::]:5561']) {
    const issues = issuesOf(() => validateConfig({ backends: [BACKEND], control }));
    assert.ok(issues.has('publish.key'), `${control} must need a key`);
  }
  for (const control of ['127.0.0.1:5561', '127.1.2.3:5561', 'localhost:5561', '[::1]:5561']) {
    assert.equal(validateConfig({ backends: [BACKEND], control }).control, control);
  }
  assert.equal(validateConfig({ backends: [BACKEND], control: '0.0.0.0:5561', publish: { key: 'k' } }).publish.key, 'k');
});

test('bus.url: memory, redis:// and nats:// URLs; anything else is named with its value', () => {
  for (const url of ['memory', 'redis://127.0.0.1:6379', 'redis://cache.internal:6379/2', 'rediss://cache:6380', 'nats://127.0.0.1:4222']) {
    assert.equal(validateConfig({ backends: [BACKEND], bus: { url } }).bus.url, url);
  }
  for (const url of ['redis', 'http://127.0.0.1:6379', 'redis://127.0.0.1:6379/x', 'nats://h:4222/path', 'redis://:6379', 'memory://', 'nats://h:4222?x=1']) {
    const issues = issuesOf(() => validateConfig({ backends: [BACKEND], bus: { url } }));
    assert.equal(issues.get('bus.url')?.value, url, url);
  }
  assert.equal(validateConfig({ backends: [BACKEND], workers: 'auto' }).workers, 'auto');
  for (const workers of [0, -1, 'many', 1.5, 1000]) {
    assert.ok(issuesOf(() => validateConfig({ backends: [BACKEND], workers: workers as number })).has('workers'), String(workers));
  }
});
