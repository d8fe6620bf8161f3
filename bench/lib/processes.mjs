import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import http from 'node:http';

/** Every process this run started, so each is stopped by its own PID, even when the run fails. */
const running = new Set();

/**
 * Start a server in the foreground, pinned to `cpu` with taskset (taskset execs the command, so the PID we
 * get is the server's own). Output goes to `logFile` for the post-mortem when a peer fails to start.
 */
export function startProcess({ name, command, args, cpu, logFile, cwd, env }) {
  const fd = openSync(logFile, 'a');
  const child = spawn('taskset', ['-c', String(cpu), command, ...args], {
    cwd,
    env: env ?? process.env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const proc = {
    name,
    child,
    pid: child.pid,
    logFile,
    exitCode: undefined,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        proc.exitCode = code ?? signal;
        running.delete(proc);
        resolve(proc.exitCode);
      });
    }),
  };
  child.once('error', (err) => {
    proc.exitCode = err.message;
  });
  running.add(proc);
  return proc;
}

/** Track a short-lived child (a wrk run) so an interrupted bench stops it too. */
export function adoptChild(name, child) {
  const proc = { name, child, pid: child.pid, exitCode: undefined, logFile: null };
  proc.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      proc.exitCode = code ?? signal;
      running.delete(proc);
      resolve(proc.exitCode);
    });
  });
  running.add(proc);
  return proc;
}

/** SIGTERM (every peer shuts down cleanly on it: nginx master takes its worker along), SIGKILL if it hangs. */
export async function stopProcess(proc, timeoutMs = 5_000) {
  if (proc.exitCode !== undefined) return proc.exitCode;
  killPid(proc.pid, 'SIGTERM');
  const timer = setTimeout(() => killPid(proc.pid, 'SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return code;
}

export async function stopAll() {
  await Promise.all([...running].map((proc) => stopProcess(proc)));
}

/** Last resort on an abrupt exit: no awaiting possible, so a SIGTERM to each PID we still own. */
export function stopAllSync() {
  for (const proc of running) killPid(proc.pid, 'SIGTERM');
}

/** Signal one PID; false when it is already gone. */
export function killPid(pid, signal) {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
    return false;
  }
}

export function logTail(proc, lines = 20) {
  try {
    return readFileSync(proc.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** One GET on a fresh connection (no agent: a pooled socket would hide a peer that stopped accepting). */
export function httpGet(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(2_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Poll until `url` answers `check(response)` truthy, or fail with the peer's log tail. */
export async function waitUntilReady(proc, url, check = (r) => r.status === 200, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    if (proc.exitCode !== undefined) break;
    try {
      const response = await httpGet(url);
      if (check(response)) return response;
      lastError = `status ${response.status}, ${response.body.length} bytes`;
    } catch (err) {
      lastError = err.message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `${proc.name} (pid ${proc.pid}) not ready at ${url}: ${proc.exitCode !== undefined ? `exited ${proc.exitCode}` : lastError}\n${logTail(proc)}`,
  );
}

/**
 * Ctrl-C or SIGTERM to a bench: `before()` first (a load generator stops sending), then every process this
 * run started, by PID, and exit 130. A second signal while that runs is ignored.
 */
export function stopAllOnSignal(log, before = () => {}) {
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      before();
      log(`\n${sig}: stopping everything this run started`);
      stopAll().finally(() => process.exit(130));
    });
  }
}
