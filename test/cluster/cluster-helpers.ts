import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { eventually, within } from '../helpers/until.js';
import { readJsonLines } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Starting a worker loads TypeScript through tsx: seconds on a machine shared with other test runs. */
export const START_MS = 90_000;
export const WAIT_MS = 30_000;

export type LogLine = Record<string, unknown>;

export interface ClusterChild {
  process: ChildProcess;
  logs: LogLine[];
  stderr(): string;
  /** The first line (logged already, or later) with this msg whose fields include `fields`. */
  logged(msg: string, fields?: Record<string, unknown>, timeoutMs?: number): Promise<LogLine>;
  /** Lines with this msg so far. */
  all(msg: string): LogLine[];
  /** The primary's exit, once every process writing to its stdout and stderr has closed them. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every worker pid the primary reported ready, in order. */
  workerPids(): number[];
}

/**
 * `holdfast --workers N` from source as a child process, its JSON log lines (primary and workers share
 * stdout) parsed. After the test, exactly the primary and the worker pids it reported are killed if alive.
 */
export function spawnCluster(t: TestContext, args: string[]): ClusterChild {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDFAST_') && v !== undefined) env[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let errText = '';
  let waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const matcher = (msg: string, fields: Record<string, unknown>) => (l: LogLine) =>
    l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v);
  readJsonLines<LogLine>(child.stdout, (entry) => {
    logs.push(entry);
    waiters = waiters.filter((w) => {
      if (!w.match(entry)) return true;
      w.resolve(entry);
      return false;
  });
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (errText += text));
  // 'close', not 'exit': it comes after stdout and stderr are read to the end (the workers write there too),
  // so a test that checks the logs or stderr once the primary is gone sees every line.
  const exited = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const workerPids = () => logs.filter((l) => l.msg === 'worker ready').map((l) => l.workerPid as number);
  t.after(() => {
    for (const pid of [child.pid, ...workerPids()]) {
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
  return {
    process: child,
    logs,
    stderr: () => errText,
    exited,
    workerPids,
    all: (msg) => logs.filter((l) => l.msg === msg),
    logged(msg, fields = {}, timeoutMs = WAIT_MS) {
      const match = matcher(msg, fields);
      const found = logs.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${msg}" log line ${JSON.stringify(fields)} within ${timeoutMs} ms; stderr: ${errText}`)), timeoutMs);
        waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

/** Whether a process with this pid exists (signal 0 checks without sending). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export interface Started {
  listenPort: number;
  controlPort: number;
  controlUrl: string;
  pids: number[];
}

export async function clusterStarted(hf: ClusterChild): Promise<Started> {
  const line = await hf.logged('cluster started', {}, START_MS);
  const listenPort = (line.listen as { port: number }).port;
  const controlPort = (line.control as { port: number }).port;
  return { listenPort, controlPort, controlUrl: `http://127.0.0.1:${controlPort}`, pids: line.workerPids as number[] };
}

/**
 * Which of `pids` holds the server side of the loopback TCP connection from `clientPort` to `serverPort`:
 * the socket's inode from /proc/net/tcp, then the process whose fd table has it. node:cluster's primary
 * accepts and hands the socket to one worker, so exactly one worker owns it.
 */
export function socketOwner(serverPort: number, clientPort: number, pids: readonly number[]): number | undefined {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  let inode: string | undefined;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    if (fields[1]!.endsWith(`:${hex(serverPort)}`) && fields[2]!.endsWith(`:${hex(clientPort)}`)) inode = fields[9];
  }
  if (inode === undefined) return undefined;
  const target = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // that worker is gone
      throw err;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // closed while we listed
        throw err;
      }
      if (link === target) return pid;
    }
  }
  return undefined;
}

/** Waits until the connection's owner is known (the handoff from the primary to a worker takes a moment). */
export async function ownerOf(serverPort: number, clientPort: number, pids: readonly number[]): Promise<number> {
  let owner: number | undefined;
  await eventually(() => (owner = socketOwner(serverPort, clientPort, pids)) !== undefined, WAIT_MS, `an owner for client port ${clientPort}`);
  return owner!;
}

/** A held SSE request on a raw socket: everything received, as text (chunk framing included). */
export class SseSocket {
  text = '';
  closed = false;
  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8').on('data', (chunk: string) => (this.text += chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => (this.closed = true)); // a reset shows as closed; tests assert on what arrived
  }

  get localPort(): number {
    return this.socket.localPort!;
  }

  static async open(t: TestContext, port: number, path: string, lastEventId?: string): Promise<SseSocket> {
    const socket = connect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    await within(once(socket, 'connect'), 10_000, 'the TCP connection');
    const sse = new SseSocket(socket);
    const extra = lastEventId === undefined ? '' : `Last-Event-ID: ${lastEventId}\r\n`;
    socket.write(`GET ${path} HTTP/1.1\r\nHost: cluster.test\r\nAccept: text/event-stream\r\n${extra}\r\n`);
    return sse;
  }

  async has(text: string, what = text): Promise<void> {
    await eventually(() => this.text.includes(text), WAIT_MS, `"${what}" on client port ${this.localPort}: got ${JSON.stringify(this.text.slice(-300))}`);
  }
}

/** A keep-alive HTTP connection whose local port we know, so a test can tell which worker serves it. */
export async function pinnedClient(t: TestContext, url: string): Promise<{ client: Client; localPort: number }> {
  let socket: Socket | undefined;
  const client = new Client(url, {
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connect: (options, callback) => {
      const s = connect(Number(options.port), options.hostname);
      socket = s;
      s.once('connect', () => callback(null, s));
      s.once('error', (err) => callback(err, null));
    },
  });
  t.after(() => client.destroy());
  const res = await client.request({ method: 'GET', path: '/' });
  await res.body.dump();
  assert.ok(socket !== undefined);
  return { client, localPort: socket.localPort! };
}

/**
 * An SSE backend: `/events/<channel>` holds the client as a stream on that channel, with a short retry.
 * `reconnectGate` holds back answers to requests carrying Last-Event-ID until it resolves.
 */
export async function startSseBackend(
  t: TestContext,
  reconnectGate: Promise<void> = Promise.resolve(),
): Promise<{ url: string; requests: { url: string; lastEventId: string | undefined }[] }> {
  const requests: { url: string; lastEventId: string | undefined }[] = [];
  const server = createServer((req, res) => {
    const lastEventId = req.headers['last-event-id'] as string | undefined;
    requests.push({ url: req.url ?? '', lastEventId });
    const channel = (req.url ?? '/').split('/')[2] ?? 'none';
    void (lastEventId === undefined ? Promise.resolve() : reconnectGate).then(() => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'grip-hold': 'stream', 'grip-channel': channel });
      res.end('retry: 100\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

export function streamItem(channel: string, data: string, id?: string, prevId?: string): Record<string, unknown> {
  return { channel, ...(id === undefined ? {} : { id }), ...(prevId === undefined ? {} : { 'prev-id': prevId }), formats: { 'http-stream': { content: `data: ${data}\n\n` } } };
}

/** POST /publish on a given connection; status and the x-holdfast-* headers. */
export async function publishOn(client: Client, items: Record<string, unknown>[]): Promise<{ status: number; headers: Record<string, string> }> {
  const res = await client.request({ method: 'POST', path: '/publish/', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
  await res.body.dump();
  return { status: res.statusCode, headers: res.headers as Record<string, string> };
}

/** The sum of a metric's samples in Prometheus text, for samples whose labels include `labels`. */
export function metricSum(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (labels !== '' && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function scrape(controlUrl: string): Promise<string> {
  const res = await fetch(`${controlUrl}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text;
}
