import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { startHoldfast, type RunningHoldfast } from '../../src/holdfast.js';
import { ROOT } from '../helpers/cli.js';
import { LogSink } from '../helpers/holdfast.js';
import { freePort } from '../helpers/listen.js';
import { eventually, within } from '../helpers/until.js';

export interface RunningExample {
  holdfast: RunningHoldfast;
  /** Holdfast's client listener in front of the example app. */
  url: string;
  /** The example app itself, without Holdfast. */
  appUrl: string;
}

/**
 * examples/NAME as its README runs it: `node server.mjs` (its packages resolve from the root's node_modules,
 * where the root's devDependencies put them) behind a Holdfast configured by the example's holdfast.yaml,
 * read by the same loader as `--config`, only the ports moved by flags (which override the file).
 */
export async function runExample(t: TestContext, name: string): Promise<RunningExample> {
  const appPort = await freePort();
  const config = loadConfig({
    file: `${ROOT}examples/${name}/holdfast.yaml`,
    flags: { listen: '127.0.0.1:0', control: '127.0.0.1:0', backend: [`http://127.0.0.1:${appPort}`], 'log-level': 'warn' },
  });
  const hf = await startHoldfast(config, { logDestination: new LogSink(), defaultMetrics: false });
  t.after(() => hf.close());
  const controlUrl = `http://127.0.0.1:${hf.controlAddress.port}`;

  const app = spawn(process.execPath, [`examples/${name}/server.mjs`], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(appPort), GRIP_CONTROL_URL: controlUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (app.exitCode === null && app.signalCode === null) app.kill('SIGKILL');
  });
  let appOutput = '';
  app.stdout.setEncoding('utf8').on('data', (s: string) => (appOutput += s));
  app.stderr.setEncoding('utf8').on('data', (s: string) => (appOutput += s));
  await within(
    Promise.race([
      eventually(() => appOutput.includes(`example on http://127.0.0.1:${appPort}`), 30_000, `the ${name} app to listen`),
      once(app, 'exit').then(() => {
        throw new Error(`the ${name} app exited: ${appOutput}`);
      }),
    ]),
    31_000,
    `the ${name} app`,
  );
  return { holdfast: hf, url: `http://127.0.0.1:${hf.address.port}`, appUrl: `http://127.0.0.1:${appPort}` };
}
