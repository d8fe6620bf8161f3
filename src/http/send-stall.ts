import type { Socket } from 'node:net';
import type { Logger } from '../observe/log.js';
import { RateLimitedLog } from '../observe/rate-limited-log.js';
import { SweepTimer } from '../util/sweep-timer.js';

/** Something that writes to a client connection and knows what to do when that connection stops taking data. */
export interface SendStallSubject {
  /** The connection stopped taking data: cut it and count it. Returns what it was (`sse`, `ws`, `response`), for the log. */
  onSendStall(): string;
}

interface Watched {
  subject: SendStallSubject;
  /** Bytes the socket had handed to the kernel at the last sweep that saw them move. */
  sent: number;
  sinceMs: number;
}

/**
 * nginx's `send_timeout` for every client connection Holdfast writes to over time (held streams, SSE,
 * terminated WebSockets, proxied responses): a connection with data queued in Node that the kernel has not
 * taken more of for `stallMs` is cut. Holdfast's own queue is bounded by size (push.maxQueuedBytesPerConnection,
 * websocket.maxQueuedBytes, backpressure on proxied bodies), but a client that never reads also pins the
 * kernel's socket buffers (issue 15: 780 MB of TCP memory for 200 such clients), which Node cannot bound:
 * Node 20 has no setsockopt, so no SO_SNDBUF per socket (nodejs/node#49418; HAProxy's tune.sndbuf.client,
 * a setter is only proposed in nodejs/node#65022). What the deadline bounds is how long that memory is held.
 *
 * One shared sweep, as BodyStallWatch: only connections whose queue was non-empty after a write are in the
 * map (a fan-out to 100k clients that keep up adds none), and progress is read from the socket's counters,
 * so there is no per-connection timer or listener. A connection is cut between `stallMs` and `stallMs` plus
 * two sweep intervals after the kernel last took a byte of it.
 */
export class SendStallWatch {
  readonly stallMs: number;
  readonly #watched = new Map<Socket, Watched>();
  readonly #log: RateLimitedLog;
  readonly #sweep: SweepTimer;

  constructor(stallMs: number, log: Logger) {
    this.stallMs = stallMs;
    this.#sweep = new SweepTimer(Math.max(100, Math.min(1_000, Math.floor(stallMs / 4))), (nowMs) => this.check(nowMs));
    this.#log = new RateLimitedLog(log, 'warn', 'client connections cut: their sent data did not drain (timeouts.sendStallMs)');
  }

  get size(): number {
    return this.#watched.size;
  }

  /** After a write: if the socket kept some of it queued, watch it until it drains or stalls. */
  noteWrite(socket: Socket | null, subject: SendStallSubject): void {
    if (socket === null || socket.writableLength === 0 || socket.destroyed || this.#watched.has(socket)) return;
    this.#watched.set(socket, { subject, sent: sentBytes(socket), sinceMs: Date.now() });
    this.#sweep.start();
  }

  check(nowMs: number): void {
    for (const [socket, state] of this.#watched) {
      if (socket.destroyed || socket.writableLength === 0) {
        this.#watched.delete(socket);
        continue;
      }
      const sent = sentBytes(socket);
      if (sent !== state.sent) {
        state.sent = sent;
        state.sinceMs = nowMs;
      } else if (nowMs - state.sinceMs >= this.stallMs) {
        this.#watched.delete(socket);
        const queuedBytes = socket.writableLength;
        const kind = state.subject.onSendStall();
        this.#log.note(kind, { kind, queuedBytes, sendStallMs: this.stallMs });
      }
    }
    if (this.#watched.size === 0) this.#sweep.stop();
  }

  stop(): void {
    this.#sweep.stop();
    this.#watched.clear();
    this.#log.flush();
  }
}

/**
 * Cut a client that is not reading with a reset, not a FIN. A plain close leaves whatever the kernel still
 * holds for the socket (up to net.ipv4.tcp_wmem's maximum, about 4 MB) in an orphaned FIN_WAIT1 socket that
 * keeps probing a zero window for minutes (measured: 391 MB of TCP memory still held after 100 such clients
 * were closed); RFC 9293 §3.10.7.1's abort (SO_LINGER 0) discards it at once. Nothing is lost that the
 * client would have read.
 */
export function resetConnection(socket: Socket | null, fallback: { destroy(): unknown }): void {
  if (socket !== null && !socket.destroyed) socket.resetAndDestroy();
  else fallback.destroy();
}

/**
 * What the kernel has taken: `bytesWritten` counts what Node queued as well, `writableLength` what is still
 * queued (in Node or in a libuv write not yet done).
 */
function sentBytes(socket: Socket): number {
  return socket.bytesWritten - socket.writableLength;
}
