// How long the control listener makes a health check wait while the server is busy with fan-outs (issue 11:
// `/healthz` waited 286-554 ms behind one publish to 20k SSE clients). One keep-alive connection sends
// `GET /healthz` every `everyMs`, one request at a time; each round trip is recorded. A round trip much longer
// than the idle ones is time the request spent waiting for the event loop.
import net from 'node:net';

const REQUEST = 'GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n';

/** Starts probing; `stop()` resolves to the round trips in ms, in order. */
export function startHealthzProbe(port, everyMs = 10) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const rtts = [];
  let sentAt = 0;
  let inFlight = false;
  let buffered = '';
  let stopped = false;
  let failure = null;
  const send = () => {
    if (stopped || inFlight) return;
    inFlight = true;
    sentAt = performance.now();
    socket.write(REQUEST);
  };
  socket.on('data', (chunk) => {
    buffered += chunk.toString('latin1');
    // The answer is small and has a Content-Length or is chunked; its end is the body's last line.
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) return;
    const length = /content-length: *(\d+)/i.exec(buffered.slice(0, end));
    const complete = length !== null ? buffered.length >= end + 4 + Number(length[1]) : buffered.endsWith('0\r\n\r\n');
    if (!complete) return;
    if (!buffered.startsWith('HTTP/1.1 200')) failure ??= buffered.split('\r\n', 1)[0];
    rtts.push(performance.now() - sentAt);
    buffered = '';
    inFlight = false;
  });
  socket.on('error', (err) => {
    failure ??= err.message;
  });
  socket.once('connect', send);
  const timer = setInterval(send, everyMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      // The last request may still be waiting for its answer: give it a bounded moment.
      for (let i = 0; i < 200 && inFlight; i++) await new Promise((r) => setTimeout(r, 10));
      socket.destroy();
      return { rtts, failure, unanswered: inFlight ? 1 : 0 };
    },
  };
}

/** max, p99 and p50 of the round trips, and how many there were. */
export function summarizeProbe({ rtts, failure, unanswered }) {
  const sorted = Float64Array.from(rtts).sort();
  const at = (p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
  return { count: sorted.length, p50: at(50), p99: at(99), max: sorted.length ? sorted[sorted.length - 1] : NaN, failure, unanswered };
}
