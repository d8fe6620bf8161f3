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
import { UsageError, parseCommandLine, type CommandLine } from './cli/args.js';
import { helpFor } from './cli/help.js';
import { DEMO_BACKEND_ENV } from './config/flags.js';
import { loadConfig } from './config/load.js';
import { parseHostPort, type HoldfastConfig } from './config/schema.js';
import { startWarnings } from './config/warnings.js';
import { publishMessage } from './control/publish-client.js';
import { createDemoBackend, withDemoQuietPaths } from './demo/backend.js';
import { probeCommand } from './probe/command.js';
import { ConfigError, ControlUnreachableError, HoldfastError, NotControlListenerError } from './errors.js';
import { startHoldfast, type RunningHoldfast } from './holdfast.js';
import { runPrimary } from './cluster/primary.js';
import { runWorker } from './cluster/worker.js';
import { createLogger } from './observe/log.js';

function fail(message: string, exitCode: number): never {
  process.stderr.write(`holdfast: ${message}\n`);
  process.exit(exitCode);
}

async function main(argv: string[]): Promise<void> {
  // The probe is a client with flags of its own: it never reads the proxy's configuration.
  if (argv[0] === 'probe') {
    const outcome = await probeCommand(argv.slice(1));
    process.stderr.write(outcome.stderr);
    process.stdout.write(outcome.stdout, () => process.exit(outcome.exitCode));
    return;
  }
  let commandLine: CommandLine;
  try {
    commandLine = parseCommandLine(argv);
  } catch (err) {
    if (err instanceof UsageError) fail(err.message, 2);
    throw err;
  }
  const { command, values } = commandLine;
  if (values.help === true) {
    process.stdout.write(helpFor(command));
    return;
  }
  if (values.version === true) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`holdfast ${pkg.version}\n`);
    return;
  }
  if (command === 'publish') return publishCommand(commandLine.args, values as Record<string, string | undefined>);

  const flags = values;
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
  logStartWarnings(config, command === 'demo');
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

/** Warnings about settings that start but are probably not meant (unknown HOLDFAST_* names, the example sigKey). */
function logStartWarnings(config: HoldfastConfig, demo: boolean): void {
  const warnings = startWarnings(config, process.env, { demo });
  if (warnings.length === 0) return;
  const log = createLogger(config.log.level);
  for (const warning of warnings) log.warn(warning.fields, warning.message);
}

const CONTROL_HINT =
  "is Holdfast running? --control (or HOLDFAST_CONTROL) must be its control listener's host:port: `control` in its config, 127.0.0.1:5561 by default";

async function publishCommand(args: string[], values: Record<string, string | undefined>): Promise<void> {
  const [channel, message] = args;
  if (channel === undefined || message === undefined || args.length > 2) {
    const got = args.length === 0 ? 'nothing' : args.map((a) => `"${a}"`).join(' ');
    fail(`publish takes CHANNEL and MESSAGE (quote a MESSAGE with spaces), got ${got}\nRun holdfast publish --help for the options.`, 2);
  }
  const controlText = values.control ?? process.env.HOLDFAST_CONTROL ?? '127.0.0.1:5561';
  const control = parseHostPort(controlText);
  const from = values.control === undefined && process.env.HOLDFAST_CONTROL !== undefined ? 'HOLDFAST_CONTROL' : '--control';
  if (control === null) fail(`${from} must be host:port, such as 127.0.0.1:5561, got '${controlText}'`, 2);
  const host = control.host.includes(':') ? `[${control.host}]` : control.host;
  const key = values.key ?? process.env.HOLDFAST_PUBLISH_KEY;
  let outcome;
  try {
    outcome = await publishMessage({ controlUrl: `http://${host}:${control.port}`, channel, message, id: values.id, event: values.event, key });
  } catch (err) {
    if (err instanceof ControlUnreachableError) fail(`${err.message}\n  ${CONTROL_HINT}`, 1);
    if (err instanceof NotControlListenerError) {
      fail(`${err.message}\n  --control takes the control listener (\`control\` in Holdfast's config, 127.0.0.1:5561 by default), not the port clients use`, 1);
    }
    throw err;
  }
  if (outcome.status !== 200) {
    const hint =
      outcome.status === 401
        ? key === undefined
          ? '\n  this Holdfast sets publish.key: pass it with --key or HOLDFAST_PUBLISH_KEY'
          : '\n  the key was refused: --key (or HOLDFAST_PUBLISH_KEY) must be the server\'s publish.key'
        : '';
    fail(`publish refused (${outcome.status}): ${outcome.body.trim()}${hint}`, 1);
  }
  if (outcome.itemStatus === 'duplicate') {
    // Not an error of the publisher's making, but nothing reached anyone: say so first, and exit 3.
    fail(
      `duplicate, not published: ${channel} already had an item with id "${values.id ?? ''}" within push.dedupWindowMs, so this one was dropped and reached no one`,
      3,
    );
  }
  if (outcome.itemStatus === 'dropped') fail(`not published: Holdfast dropped the item (${outcome.body.trim()})`, 1);
  const others = outcome.nodes === undefined ? '' : `; the bus handed it to ${outcome.nodes} other node(s)`;
  const queued = outcome.itemStatus === 'queued' ? ' (queued behind its prev-id)' : '';
  process.stdout.write(`published to ${channel}${queued}: delivered to ${outcome.delivered} held connection(s) on that node${others}\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
