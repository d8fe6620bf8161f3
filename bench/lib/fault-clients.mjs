// Clients, the backend process and figures shared by bench/faults and bench/soak: plain GETs that record
// what came back (status, x-holdfast-error, how long, or how the connection failed), raw SSE streams that
// record each event and how the stream ended, and the backend (lib/work-backend.mjs) as a real child process.
import { fork } from 'node:child_process';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adoptChild } from './processes.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** The backend as a child process on `port` (a restart passes the same port); resolves once it listens. */
export function startWorkBackend(port, timeoutMs = 30_000) {
  const child = fork(join(here, 'work-backend.mjs'), [String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const proc = adoptChild('backend', child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the backend did not listen on ${port} within ${timeoutMs} ms`)), timeoutMs);
    child.once('message', () => {
      clearTimeout(timer);
      resolve({ proc, port, readyAt: performance.now() });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the backend exited (${code ?? signal}) before it listened on ${port}`));
    });
  });
}

/**
 * One GET; never rejects. { status (0 = no answer), code (x-holdfast-error), ms, close (the answer said
 * Connection: close), failure (how the connection failed, e.g. ECONNRESET), timedOut, startedAt, endedAt }.
 * `timeoutMs` bounds it: a request still unanswered then counts as hung.
 */
export function get(port, path, { agent = false, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    let settled = false;
    const done = (r) => {
      if (settled) return;
      settled = true;
      resolve({ status: 0, code: null, close: false, failure: null, timedOut: false, ...r, startedAt, endedAt: performance.now(), ms: performance.now() - startedAt });
    };
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.on('data', () => {});
      res.once('end', () => done({ status: res.statusCode, code: res.headers['x-holdfast-error'] ?? null, close: res.headers.connection === 'close' }));
      res.once('error', (err) => done({ status: res.statusCode, failure: `body: ${err.code ?? err.message}` }));
    });
    req.setTimeout(timeoutMs, () => {
      done({ timedOut: true, failure: 'hung' });
      req.destroy();
    });
    req.once('error', (err) => done({ failure: err.code ?? err.message }));
  });
}

/**
 * A raw SSE stream (no reconnect: the fault scripts want to see each stream end). `events` holds
 * { id, event, data, at }; `openedAt` is when the head arrived (Holdfast subscribes before it flushes the
 * head, so from then on the stream misses nothing); `ended` is { how: 'end' | error code, at } once over.
 */
export function openSse(port, path, { headers = {}, onEvent = null, onEnd = null } = {}) {
  const s = { status: 0, openedAt: null, ended: null, events: [], req: null, close: null, startedAt: performance.now() };
  const finish = (how) => {
    if (s.ended !== null) return;
    s.ended = { how, at: performance.now() };
    onEnd?.(s);
  };
  s.opened = new Promise((resolve) => {
    s.req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      s.status = res.statusCode;
      s.openedAt = performance.now();
      resolve(s);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let at;
        while ((at = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const ev = { id: null, event: 'message', data: null, at: performance.now() };
          for (const line of block.split('\n')) {
            if (line.startsWith('id:')) ev.id = line.slice(3).trim();
            else if (line.startsWith('event:')) ev.event = line.slice(6).trim();
            else if (line.startsWith('data:')) ev.data = ev.data === null ? line.slice(5).trim() : `${ev.data}\n${line.slice(5).trim()}`;
          }
          if (ev.data === null && ev.id === null) continue; // a heartbeat comment
          s.events.push(ev);
          onEvent?.(s, ev);
        }
      });
      res.once('end', () => finish('end'));
      res.once('error', (err) => finish(err.code ?? err.message));
      res.once('close', () => finish(res.complete ? 'end' : 'aborted'));
    });
    s.req.once('error', (err) => {
      finish(err.code ?? err.message);
      resolve(s);
    });
  });
  s.close = () => {
    finish('closed by the client');
    s.req.destroy();
  };
  return s;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The p-th percentile of numbers (nearest rank); NaN for none. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** "200 x 12, 502 HF_ERR_UPSTREAM_RESET x 3, no answer (ECONNRESET) x 1": what a set of requests got. */
export function outcomes(results) {
  const counts = new Map();
  for (const r of results) {
    const key = r.status === 0 ? `no answer (${r.failure})` : `${r.status}${r.code ? ` ${r.code}` : ''}${r.failure ? ` then ${r.failure}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x ${n}`).join(', ') || 'none';
}
