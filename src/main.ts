#!/usr/bin/env -S MALLOC_TRIM_THRESHOLD_=33554432 node --no-memory-reducer --single-threaded-gc
// The settings above are read only at start-up, so they cannot live in code (bench/RESULTS.md has the figures):
// - MALLOC_TRIM_THRESHOLD_ (glibc; ignored elsewhere): by default free() hands the top of the heap back to the
//   kernel once more than 128 KiB is free there. Depending on the heap's history, every 10 KiB response buffer
//   then lands there: about 2.4 page faults per request, 20-30% more CPU at 10k/50 ("glibc heap trimming").
//   32 MiB keeps that churn in the process and still returns a large idle surplus.
// - --no-memory-reducer: after an idle spell V8's memory reducer shrinks the heap and then grows it "slowly"
//   for as long as the process lives, so a proxy that was idle before a load spike runs a full mark-compact
//   about every 100 ms under that load: a quarter less throughput and twice the p99 ("V8's memory reducer").
// - --single-threaded-gc: Holdfast is one event loop, run one instance per core; V8's GC helper threads then
//   compete with the event loop for that core and hold requests up for whole scheduler slices (p99 at one
//   connection 5.9-8.3 ms with them, 1.5 ms without; throughput unchanged: "single-threaded GC").
// `npm start` and the benches pass the same flags; `node dist/main.js` without them still works, only slower.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { FLAGS } from './config/flags.js';
import { loadConfig } from './config/load.js';
import { parseHostPort } from './config/schema.js';
import { publishMessage } from './control/publish-client.js';
import { createDemoBackend, withDemoQuietPaths } from './demo/backend.js';
import { ConfigError, HoldfastError } from './errors.js';
import { startHoldfast, type RunningHoldfast } from './holdfast.js';
import { runPrimary } from './cluster/primary.js';
import { runWorker } from './cluster/worker.js';

/** How `holdfast demo --workers N` hands the primary's demo backend to its workers (not a setting). */
const DEMO_BACKEND_ENV = 'HOLDFAST_INTERNAL_DEMO_BACKEND';

const HELP = `Holdfast: a realtime reverse proxy for stateless HTTP backends.

Usage:
  holdfast [options]                      proxy clients to the backends
  holdfast demo [options]                 start a demo backend and Holdfast in front of it
  holdfast publish CHANNEL MESSAGE        publish MESSAGE to CHANNEL through the control listener
      [--control host:port] [--id ID] [--event NAME] [--key KEY]
  holdfast --help | --version

Options (each also as an environment variable, shown after the flag):
${FLAGS.map((f) => `  --${`${f.flag} <${f.kind === 'int' ? 'n' : 'value'}>`.padEnd(36)} ${f.env}\n      ${f.help}`).join('\n')}
  --config <file>                        HOLDFAST_CONFIG
      YAML or JSON file with the same settings (see README); flags and env override it

Precedence: built-in defaults < config file < HOLDFAST_* environment < flags.
Exit codes: 0 after a clean shutdown, 1 on a runtime failure (such as a port in use), 2 on a bad configuration;
publish: 3 when the item was a duplicate (its id already published to the channel) and nothing was sent.
SIGTERM/SIGINT drain gracefully (timeouts.drainMs); a second signal exits at once.
SIGHUP (or POST /reload on the control listener) reloads backends, groups and routes from the same sources;
a bad configuration is refused and the running one stays.
With --workers above 1, send these signals to the primary (the process started): it applies them to every worker.
`;

function fail(message: string, exitCode: number): never {
  process.stderr.write(`holdfast: ${message}\n`);
  process.exit(exitCode);
}

async function main(argv: string[]): Promise<void> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    config: { type: 'string' },
    id: { type: 'string' },
    event: { type: 'string' },
    key: { type: 'string' },
    help: { type: 'boolean' },
    version: { type: 'boolean' },
  };
  for (const f of FLAGS) options[f.flag] = { type: 'string', multiple: f.kind === 'list' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    fail(`${(err as Error).message}\nRun holdfast --help for the options.`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`holdfast ${pkg.version}\n`);
    return;
  }
  const command = positionals[0];
  if (command === 'publish') return publishCommand(positionals.slice(1), values as Record<string, string | undefined>);
  if (command !== undefined && command !== 'demo') fail(`unknown command "${command}"; see holdfast --help`, 2);

  const flags = values as Record<string, string | string[] | boolean | undefined>;
  let demoBackendUrl: string | undefined;
  let controlUrl = '';
  if (command === 'demo' && cluster.isWorker) {
    const demo = process.env[DEMO_BACKEND_ENV];
    if (demo !== undefined) flags.backend ??= [demo];
  } else if (command === 'demo') {
    const backend = createDemoBackend(() => controlUrl);
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    demoBackendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
    backend.unref();
    flags.backend ??= [demoBackendUrl];
  }

  let running: RunningHoldfast;
  // Reloads read the same sources again: the file (edited), the flags, the environment as it was at start.
  const readSources = () =>
    loadConfig({ file: (values.config as string | undefined) ?? process.env.HOLDFAST_CONFIG, flags, env: process.env });
  // The demo page polls every second; its own polling stays out of the access log, so the terminal stays readable.
  const readConfig = command === 'demo' ? () => withDemoQuietPaths(readSources()) : readSources;
  if (cluster.isWorker) process.exit(await runWorker(readConfig));
  let config;
  try {
    config = readConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
  const workers = config.workers === 'auto' ? availableParallelism() : config.workers;
  if (workers > 1) {
    // The primary validated the configuration above, so a bad one still stops before any worker starts.
    const outcome = await runPrimary({
      config,
      readConfig,
      workers,
      ...(demoBackendUrl === undefined ? {} : { env: { [DEMO_BACKEND_ENV]: demoBackendUrl } }),
      onStarted: ({ listen, control }) => {
        controlUrl = `http://${control.host}:${control.port}`;
        if (command === 'demo') {
          process.stderr.write(`\nHoldfast demo (${workers} workers): open http://${listen.host}:${listen.port}/\n  demo backend ${demoBackendUrl ?? ''}, metrics ${controlUrl}/metrics\n  Ctrl-C to stop.\n\n`);
        }
      },
    });
    if (outcome.code !== 0 && outcome.message !== undefined) fail(outcome.message, outcome.code);
    process.exit(outcome.code);
  }
  try {
    running = await startHoldfast(config, { loadConfig: readConfig });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    if (err instanceof HoldfastError) fail(err.message, 1);
    throw err;
  }

  const url = `http://${running.address.host}:${running.address.port}/`;
  controlUrl = `http://${running.controlAddress.host}:${running.controlAddress.port}`;
  if (command === 'demo') {
    process.stderr.write(
      `\nHoldfast demo: open ${url}\n  demo backend ${demoBackendUrl ?? ''}, metrics http://${running.controlAddress.host}:${running.controlAddress.port}/metrics\n  Ctrl-C to stop.\n\n`,
    );
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(1);
    running.log.info({ signal }, 'shutting down');
    running.drain().then(
      // Requests cut at the deadline make the exit non-zero: a supervisor should know the drain was not clean.
      (cut) => process.exit(cut > 0 ? 1 : 0),
      (err: unknown) => {
        running.log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    try {
      running.reload();
    } catch {
      // Logged by reload (every bad key); the running configuration stays.
    }
  });
}

async function publishCommand(args: string[], values: Record<string, string | undefined>): Promise<void> {
  const [channel, message] = args;
  if (channel === undefined || message === undefined || args.length > 2) {
    fail('usage: holdfast publish CHANNEL MESSAGE [--control host:port] [--id ID] [--event NAME] [--key KEY]', 2);
  }
  const control = parseHostPort(values.control ?? process.env.HOLDFAST_CONTROL ?? '127.0.0.1:5561');
  if (control === null) fail(`--control: expected host:port, got "${values.control ?? ''}"`, 2);
  const host = control.host.includes(':') ? `[${control.host}]` : control.host;
  try {
    const outcome = await publishMessage({
      controlUrl: `http://${host}:${control.port}`,
      channel,
      message,
      id: values.id,
      event: values.event,
      key: values.key ?? process.env.HOLDFAST_PUBLISH_KEY,
    });
    if (outcome.status !== 200) fail(`publish refused (${outcome.status}): ${outcome.body.trim()}`, 1);
    if (outcome.itemStatus === 'duplicate') {
      // A duplicate is not an error of the publisher's making, but nothing reached anyone: say so, and exit 3.
      process.stderr.write(
        `holdfast: not published: id "${values.id ?? ''}" was already published to ${channel} within push.dedupWindowMs (a duplicate); delivered to 0\n`,
      );
      process.exit(3);
    }
    const others = outcome.nodes === undefined ? '' : `; the bus handed it to ${outcome.nodes} other node(s)`;
    process.stdout.write(`published to ${channel}: delivered to ${outcome.delivered} held connection(s) on that node${others}\n`);
  } catch (err) {
    fail(`cannot reach the control listener at ${host}:${control.port}: ${(err as Error).message}`, 1);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
