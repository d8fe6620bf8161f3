import WebSocket from 'ws';

/**
 * V8's own count of live heap bytes right after a full garbage collection in another Node process started
 * with `--inspect=127.0.0.1:PORT`: over the DevTools protocol, `HeapProfiler.collectGarbage` then
 * `Runtime.getHeapUsage`. The process under test needs no code of its own for it (no `--expose-gc` hook), and
 * what is left after a full GC is what it really keeps: the figure a leak shows in. Each call forces one full
 * GC in that process (a pause of its event loop), so callers sample it sparingly.
 */
export async function heapAfterGc(inspectPort, timeoutMs = 30_000) {
  const targets = await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`, { signal: AbortSignal.timeout(timeoutMs) })).json();
  const url = targets[0]?.webSocketDebuggerUrl;
  if (url === undefined) throw new Error(`no inspector target on port ${inspectPort}`);
  const ws = new WebSocket(url);
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    let nextId = 1;
    const pending = new Map();
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString());
      const p = pending.get(msg.id);
      if (p === undefined) return;
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`));
      else p.resolve(msg.result);
    });
    const call = (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => reject(new Error(`${method}: no answer in ${timeoutMs} ms`)), timeoutMs);
        pending.set(id, { resolve: (r) => (clearTimeout(timer), resolve(r)), reject: (e) => (clearTimeout(timer), reject(e)) });
        ws.send(JSON.stringify({ id, method, params }));
      });
    const started = performance.now();
    await call('HeapProfiler.collectGarbage');
    const gcMs = performance.now() - started;
    const { usedSize, totalSize } = await call('Runtime.getHeapUsage');
    return { usedBytes: usedSize, totalBytes: totalSize, gcMs };
  } finally {
    ws.terminate();
  }
}
