import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLAGS } from '../../src/config/flags.js';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const BACKEND = { backend: ['http://127.0.0.1:3000'] };

/** Whether the flag's value loads, and if not, the issue reported for it. */
function load(flag: string, value: string) {
  try {
    loadConfig({ flags: { ...BACKEND, [flag]: value } });
    return undefined;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues;
  }
}

test('each number flag\'s "≥ N" is the schema\'s bound: N loads, N - 1 is refused naming the flag', () => {
  const numeric = FLAGS.filter((f) => /≥ \d+$/.test(f.expects));
  assert.ok(numeric.length >= 7, numeric.map((f) => f.flag).join(', '));
  for (const spec of numeric) {
    const min = Number(/≥ (\d+)$/.exec(spec.expects)![1]);
    assert.equal(load(spec.flag, String(min)), undefined, `--${spec.flag} ${min} loads`);
    const issues = load(spec.flag, String(min - 1));
    assert.deepEqual(issues?.map((i) => [i.source, i.expected]), [[`--${spec.flag}`, spec.expects]], `--${spec.flag} ${min - 1}`);
  }
});

test('a value from a HOLDFAST_* variable is named by the variable; flags win over it', () => {
  assert.throws(
    () => loadConfig({ flags: BACKEND, env: { HOLDFAST_WORKERS: 'many' } }),
    (err: ConfigError) => err.issues[0]?.source === 'HOLDFAST_WORKERS' && err.message.includes("HOLDFAST_WORKERS must be a whole number from 1 to 256, or auto, got 'many'"),
  );
  assert.throws(
    () => loadConfig({ flags: { ...BACKEND, workers: 'lots' }, env: { HOLDFAST_WORKERS: 'many' } }),
    (err: ConfigError) => err.issues.length === 1 && err.issues[0]?.source === '--workers',
  );
  // An element of a repeated flag is named by the flag, with its key path.
  assert.throws(
    () => loadConfig({ flags: { backend: ['ftp://files.test'] } }),
    (err: ConfigError) => err.message.includes("--backend must be an http:// or https:// origin such as http://127.0.0.1:3000, got 'ftp://files.test' (backends.0)"),
  );
});
