import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/observe/log.js';
import { RateLimitedLog } from '../../src/observe/rate-limited-log.js';
import { LogSink } from '../helpers/holdfast.js';

const T0 = 1_800_000_000_000;

test('rate-limited log: 1,000 events within a second are one line with count 1000; the next second\'s events another line', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
  const sink = new LogSink();
  const limited = new RateLimitedLog(createLogger('info', sink), 'warn', 'refused');
  for (let i = 0; i < 1_000; i++) {
    limited.note('HF_ERR_CONNECTION_LIMIT', { client: `10.0.0.${i % 250}` });
    t.mock.timers.tick(0.5);
  }
  t.mock.timers.tick(499);
  assert.equal(sink.lines.length, 0, 'nothing before the second is over');
  t.mock.timers.tick(1);
  assert.equal(sink.lines.length, 1);
  assert.equal(sink.lines[0]!.count, 1_000);
  assert.equal(sink.lines[0]!.kind, 'HF_ERR_CONNECTION_LIMIT');
  assert.equal(sink.lines[0]!.client, '10.0.0.249', 'the last event\'s fields');
  assert.equal(sink.lines[0]!.msg, 'refused');
  assert.equal(sink.lines[0]!.level, 40);

  // The next second: a window of its own.
  for (let i = 0; i < 7; i++) limited.note('HF_ERR_CONNECTION_LIMIT', { client: 'x' });
  t.mock.timers.tick(999);
  assert.equal(sink.lines.length, 1);
  t.mock.timers.tick(1);
  assert.equal(sink.lines.length, 2);
  assert.equal(sink.lines[1]!.count, 7);
  // Quiet: no line at all.
  t.mock.timers.tick(10_000);
  assert.equal(sink.lines.length, 2);
});

test('rate-limited log: each kind has its own window; flush writes the open ones at once', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
  const sink = new LogSink();
  const limited = new RateLimitedLog(createLogger('info', sink), 'warn', 'refused');
  limited.note('HF_ERR_CONNECTION_LIMIT', {});
  limited.note('HF_ERR_CLIENT_CONNECTION_LIMIT', {});
  limited.note('HF_ERR_CLIENT_CONNECTION_LIMIT', {});
  limited.flush();
  assert.deepEqual(
    sink.lines.map((l) => [l.kind, l.count]),
    [
      ['HF_ERR_CONNECTION_LIMIT', 1],
      ['HF_ERR_CLIENT_CONNECTION_LIMIT', 2],
    ],
  );
  t.mock.timers.tick(2_000);
  assert.equal(sink.lines.length, 2, 'a flushed window does not log again');
});
