import { spawn } from 'node:child_process';
import type { TestContext } from 'node:test';
import { ROOT } from '../helpers/cli.js';
import { eventually } from '../helpers/until.js';

/**
 * A README shell block as a reader pastes it into a terminal, run with care for a test machine:
 * - lines that only install or build (`npm ci`, `npm install`, `npm run build`, `cd`) are skipped: the test
 *   command did that, and the CLI runs from source (`node dist/main.js` becomes `node --import tsx src/main.ts`);
 * - the documented default addresses become free loopback ports (127.0.0.1:8080 the client listener, :5561
 *   the control listener, :3000 the app; 0.0.0.0 becomes 127.0.0.1), also given as HOLDFAST_LISTEN,
 *   HOLDFAST_CONTROL, HOLDFAST_BACKEND, PORT and GRIP_CONTROL_URL so a config file's addresses move too;
 * - a line commented `# prints: TEXT` must make TEXT appear in the terminal (from it or from a command left
 *   running in the background) before the next line is typed. Commands left running end with the test.
 */
export interface Ports {
  listen: number;
  control: number;
  app: number;
}

export class ShellSession {
  #output = '';
  readonly #child;
  readonly #ports: Ports;

  constructor(t: TestContext, ports: Ports) {
    this.#ports = ports;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) env[k] = v;
    Object.assign(env, {
      HOLDFAST_LISTEN: `127.0.0.1:${ports.listen}`,
      HOLDFAST_CONTROL: `127.0.0.1:${ports.control}`,
      HOLDFAST_BACKEND: `http://127.0.0.1:${ports.app}`,
      PORT: String(ports.app),
      GRIP_CONTROL_URL: `http://127.0.0.1:${ports.control}`,
    });
    // Its own process group, so the commands it leaves in the background end with it.
    this.#child = spawn('bash', ['--noprofile', '--norc', '-e'], { cwd: ROOT, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stdout.setEncoding('utf8').on('data', (s: string) => (this.#output += s));
    this.#child.stderr.setEncoding('utf8').on('data', (s: string) => (this.#output += s));
    t.after(() => {
      try {
        process.kill(-this.#child.pid!, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    });
  }

  get output(): string {
    return this.#output;
  }

  /** Types the block's lines one by one, waiting for each `# prints:` before the next. */
  async run(block: string, where: string): Promise<void> {
    for (const original of block.split('\n')) {
      const line = this.#translate(original);
      if (line === null) continue;
      const expected = /#\s*prints:\s*(.+?)\s*$/.exec(original)?.[1];
      const from = this.#output.length;
      this.#child.stdin.write(`${line}\n`);
      if (expected === undefined) continue;
      const wanted = this.#translate(expected) ?? expected;
      try {
        await eventually(
          () => {
            if (this.#child.exitCode !== null) throw new Error(`the shell stopped (exit ${this.#child.exitCode})`);
            return this.#output.slice(from).includes(wanted);
          },
          60_000,
          `"${wanted}"`,
        );
      } catch (err) {
        throw new Error(`${where}: after "${line}": ${(err as Error).message}; the terminal showed:\n${this.#output}`);
      }
    }
  }

  #translate(line: string): string | null {
    const commands = line.replace(/#.*$/, '').split('&&').map((c) => c.trim());
    if (commands.every((c) => /^(npm (ci|install|run build)|cd \S+)?$/.test(c))) return null;
    const { listen, control, app } = this.#ports;
    return line
      .replaceAll('node dist/main.js', 'node --import tsx src/main.ts')
      .replaceAll('0.0.0.0:8080', `127.0.0.1:${listen}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${listen}`)
      .replaceAll('127.0.0.1:5561', `127.0.0.1:${control}`)
      .replaceAll('127.0.0.1:3000', `127.0.0.1:${app}`);
  }
}
