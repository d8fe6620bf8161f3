import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, parseCommandLine } from '../../src/cli/args.js';
import { helpFor } from '../../src/cli/help.js';

/** The first line of the UsageError a command line gets (the second always points at the command's --help). */
function refusal(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return err.message.split('\n')[0]!;
  }
  assert.fail(`${argv.join(' ')} was accepted`);
}

test('flags people bring from other servers are pointed at Holdfast\'s own', () => {
  const cases: [string[], RegExp][] = [
    [['--port', '8090'], /use --listen 127\.0\.0\.1:8090 \(0\.0\.0\.0:8090 for every interface\)/],
    [['--port=8090'], /use --listen 127\.0\.0\.1:8090/],
    [['-p', '9000'], /use --listen 127\.0\.0\.1:9000/],
    [['--host', '0.0.0.0'], /use --listen 0\.0\.0\.0:8080/],
    [['--config-file', 'holdfast.yaml'], /use --config holdfast\.yaml/],
    [['-c', 'holdfast.yaml'], /use --config holdfast\.yaml/],
    [['--upstream', 'http://127.0.0.1:3000'], /use --backend URL, once per backend/],
    [['--verbose'], /use --log-level debug/],
    [['--threads', '4'], /use --workers N/],
    [['--redis', 'redis://127.0.0.1:6379'], /use --bus redis:\/\/host:port/],
    [['--metrics-port', '9100'], /use --control 127\.0\.0\.1:9100/],
    [['--timeout', '5000'], /--request-head-timeout, --keep-alive-timeout, --upstream-timeout or --drain-timeout/],
    [['publish', 'news', 'hi', '--port', '5562'], /use --control 127\.0\.0\.1:5562/],
    [['publish', '--channel', 'news'], /CHANNEL and MESSAGE come without a flag/],
    [['publish', 'news', 'hi', '--token', 's3cret'], /use --key KEY \(or HOLDFAST_PUBLISH_KEY\)/],
  ];
  for (const [argv, expected] of cases) assert.match(refusal(argv), expected, argv.join(' '));
});

test('a typo gets the nearest real flag or command; an option of the other command is named as such', () => {
  assert.equal(refusal(['--max-conections', '5']), 'unknown option --max-conections; did you mean --max-connections?');
  assert.equal(refusal(['--max-conn', '5']), 'unknown option --max-conn; did you mean --max-connections?');
  assert.equal(refusal(['--lisen', '127.0.0.1:80']), 'unknown option --lisen; did you mean --listen?');
  assert.equal(refusal(['demo', '--worker', '2']), 'unknown option --worker; did you mean --workers?');
  assert.equal(refusal(['--bogus-flag']), 'unknown option --bogus-flag');
  assert.equal(refusal(['pubish', 'news', 'hi']), 'unknown command "pubish"; did you mean holdfast publish?');
  assert.equal(refusal(['--key', 'secret']), '--key is an option of holdfast publish (holdfast publish CHANNEL MESSAGE --key ...)');
  assert.equal(refusal(['publish', 'news', 'hi', '--workers', '2']), '--workers is an option of holdfast itself, not of holdfast publish');
});

test('a flag without its value says what the value is', () => {
  assert.equal(refusal(['--listen']), '--listen needs a value: host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080');
  assert.equal(refusal(['publish', 'news', 'hi', '--control']), '--control needs a value: host:port, such as 127.0.0.1:5561');
});

test('help for each command: --help, -h and help COMMAND', () => {
  const demo = parseCommandLine(['demo', '--help']);
  assert.equal(demo.command, 'demo');
  assert.equal(demo.values.help, true);
  assert.equal(parseCommandLine(['help', 'publish']).command, 'publish');
  assert.equal(parseCommandLine(['-h']).values.help, true);
  assert.match(helpFor('demo'), /^Usage: holdfast demo/);
  assert.match(helpFor('publish'), /^Usage: holdfast publish CHANNEL MESSAGE/);
  assert.notEqual(helpFor('serve'), helpFor('publish'));
});

test('a valid command line parses to its command, values and arguments', () => {
  const parsed = parseCommandLine(['publish', 'news', 'hello world', '--id', 'm1', '--control', '127.0.0.1:5561']);
  assert.equal(parsed.command, 'publish');
  assert.deepEqual(parsed.args, ['news', 'hello world']);
  assert.equal(parsed.values.id, 'm1');
  const serve = parseCommandLine(['--backend', 'http://a:1', '--backend', 'http://b:2', '--max-connections=-5']);
  assert.equal(serve.command, 'serve');
  assert.deepEqual(serve.values.backend, ['http://a:1', 'http://b:2']);
  assert.equal(serve.values['max-connections'], '-5');
});
