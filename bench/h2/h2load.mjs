import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { adoptChild } from '../lib/processes.mjs';

/**
 * One h2load run (nghttp2-client), pinned to `cpu`, one thread. `proto` 'h2' offers ALPN h2 only (h2load's
 * default list also has http/1.1, so a front without h2 would be measured over HTTP/1.1 unnoticed); 'h1' is
 * `--h1`. The TLS 1.3 suite is fixed so every front runs the same one (Node and HAProxy prefer their own
 * order, AES-256 first). Either a timed run (`durationS`, after `warmupS`) or a count (`requests`). With
 * `logFile`, h2load writes a line per request (start us, status, duration us), from which p50/p99 come.
 * A timed run gets its warm-up in the same h2load process (`--warm-up-time`): every connection is made during
 * it. h2load 1.52 hangs at the end of a `-D` run during which some of its connections were still in their TLS
 * handshake (seen against a front slow to accept 50 at once), so a run without warm-up is not used for timing.
 *
 * Resolves with what h2load printed, parsed: req/s, requests done/succeeded/failed, the negotiated protocol,
 * cipher and key exchange, and the latency percentiles.
 */
export const TLS13_SUITE = 'TLS_AES_128_GCM_SHA256';

export function runH2load({ url, proto, clients, streams = 1, durationS, warmupS = 0, requests, headers = [], cpu, logFile, onMeasureStart = () => {}, onMeasureEnd = () => {} }) {
  const args = ['-c', String(cpu), 'h2load', '-t', '1', '-c', String(clients), '-m', String(streams), `--tls13-ciphers=${TLS13_SUITE}`];
  args.push(proto === 'h1' ? '--h1' : '--npn-list=h2');
  if (durationS !== undefined) args.push('-D', String(durationS), ...(warmupS > 0 ? ['--warm-up-time', String(warmupS)] : []));
  else args.push('-n', String(requests));
  for (const h of headers) args.push('-H', h);
  if (logFile) {
    rmSync(logFile, { force: true });
    args.push('--log-file', logFile);
  }
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    adoptChild('h2load', child);
    let out = '';
    // A timed run with a warm-up says when the measured phase starts and ends: the caller reads its counters then.
    let phase = warmupS > 0 ? 'warm-up' : 'measured';
    child.stdout.on('data', (c) => {
      out += c;
      if (phase === 'warm-up' && out.includes('Warm-up phase is over')) {
        phase = 'measured';
        onMeasureStart();
      }
      if (phase === 'measured' && out.includes('Main benchmark duration is over')) {
        phase = 'done';
        onMeasureEnd();
      }
    });
    child.stderr.on('data', (c) => (out += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      const result = parseH2load(out);
      result.exitCode = code;
      if (logFile) Object.assign(result, latencyPercentiles(logFile));
      resolve(result);
    });
  });
}

function num(re, text, i = 1) {
  const m = re.exec(text);
  return m === null ? NaN : Number(m[i]);
}

function seconds(value, unit) {
  return Number(value) * { s: 1, ms: 1e-3, us: 1e-6 }[unit];
}

export function parseH2load(text) {
  const finished = /finished in ([\d.]+)(s|ms|us), ([\d.]+) req\/s/.exec(text);
  return {
    text,
    finishedS: finished === null ? NaN : seconds(finished[1], finished[2]),
    rps: finished === null ? NaN : Number(finished[3]),
    done: num(/requests: \d+ total, \d+ started, (\d+) done/, text),
    succeeded: num(/(\d+) succeeded/, text),
    failed: num(/(\d+) failed/, text),
    errored: num(/(\d+) errored/, text),
    status2xx: num(/status codes: (\d+) 2xx/, text),
    // No line at all when the handshake found no common ALPN protocol (every request then fails).
    protocol: /Application protocol: (\S+)/.exec(text)?.[1] ?? 'none',
    tls: /TLS Protocol: (\S+)/.exec(text)?.[1] ?? '?',
    cipher: /Cipher: (\S+)/.exec(text)?.[1] ?? '?',
    keyExchange: /Server Temp Key: (.+)/.exec(text)?.[1]?.trim() ?? '?',
  };
}

/** p50/p99 of the per-request durations h2load logged (third column, microseconds). */
export function latencyPercentiles(logFile) {
  let lines;
  try {
    lines = readFileSync(logFile, 'utf8').split('\n');
  } catch {
    return { logged: 0, p50Us: NaN, p99Us: NaN };
  }
  const us = [];
  for (const line of lines) {
    const cols = line.split('\t');
    if (cols.length >= 3 && cols[1] !== '') us.push(Number(cols[2]));
  }
  const sorted = Float64Array.from(us).sort();
  const pct = (p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
  return { logged: sorted.length, p50Us: pct(50), p99Us: pct(99) };
}
