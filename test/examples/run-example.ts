import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { holdfast, ROOT } from '../helpers/cli.js';
import { freePort } from '../helpers/listen.js';
import { eventually, within } from '../helpers/until.js';

export interface RunningExample {
  /** Holdfast's client listener in front of the example app. */
  url: string;
  controlUrl: string;
  /** The example app itself, without Holdfast. */
  appUrl: string;
}

/**
 * An example of examples/NAME run as its README says: `node server.mjs` (its packages resolve from the
 * root's node_modules, where the root's devDependencies put them) and Holdfast started with the example's
 * holdfast.yaml, only the ports moved to free ones by flags (which override the file).
 */
export async function runExample(t: TestContext, name: string): Promise<RunningExample> {
  const [appPort, port, controlPort] = [await freePort(), await freePort(), await freePort()];
  const controlUrl = `http://127.0.0.1:${controlPort}`;
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

  const hf = holdfast(t, [
    '--config', `examples/${name}/holdfast.yaml`,
    '--listen', `127.0.0.1:${port}`,
    '--control', `127.0.0.1:${controlPort}`,
    '--backend', `http://127.0.0.1:${appPort}`,
    '--log-level', 'warn',
  ]);
  await eventually(
    async () => {
      if (hf.exitCode !== null) throw new Error(`holdfast exited: ${(await hf.output).stderr}`);
      return fetch(`${controlUrl}/healthz`).then((r) => r.ok, () => false);
    },
    30_000,
    'holdfast to answer /healthz',
  );
  return { url: `http://127.0.0.1:${port}`, controlUrl, appUrl: `http://127.0.0.1:${appPort}` };
}

/** The sum of a metric's samples on the control listener's /metrics. */
export async function metricSum(controlUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${controlUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
