import { spawn } from 'node:child_process';
import { adoptChild } from './processes.mjs';

/**
 * One wrk run, pinned to `cpu`, one thread (one core's worth of load). The Lua `done()` hook in
 * wrk/report.lua prints a WRK_JSON line; wrk's own text is kept for the log.
 */
export function runWrk({ url, connections, durationS, cpu, script }) {
  const args = ['-c', String(cpu), 'wrk', '-t1', `-c${connections}`, `-d${durationS}s`, '--timeout', '5s', '-s', script, url];
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    adoptChild('wrk', child);
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('WRK_JSON '));
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk exited ${code} for ${url}:\n${out}${err}`));
        return;
      }
      const result = JSON.parse(line.slice('WRK_JSON '.length));
      result.rps = result.requests / (result.durationUs / 1e6);
      result.errorCount = Object.values(result.errors).reduce((a, b) => a + b, 0);
      result.text = out;
      resolve(result);
    });
  });
}
