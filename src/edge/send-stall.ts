import type { ServerResponse } from 'node:http';
import { constants as h2, type Http2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from '../observe/log.js';
import { RateLimitedLog } from '../observe/rate-limited-log.js';
import { SweepTimer } from './sweep-timer.js';

/** Something that writes to a client connection and knows what to do when that connection stops taking data. */
export interface SendStallSubject {
  /** The connection stopped taking data: cut it and count it. Returns what it was (`sse`, `ws`, `response`), for the log. */
  onSendStall(): string;
}

/** What a cut connection that was not a held client counts as (holdfast_client_errors_total{code}). */
export const SEND_TIMEOUT_CODE = 'HF_ERR_SEND_TIMEOUT';

/**
 * What a client is written through: its connection, or on HTTP/2 its stream, which has a queue (and a flow
 * control window) of its own: a stream whose client withholds WINDOW_UPDATE stalls while its connection,
 * busy with sibling streams, does not.
 */
export type SendTarget = Socket | Http2Stream;

interface Watched {
  subject: SendStallSubject;
  /** Progress at the last sweep (sentProgress): it moves up when the client took some of the queue. */
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
  readonly #watched = new Map<SendTarget, Watched>();
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
  noteWrite(socket: SendTarget | null, subject: SendStallSubject): void {
    if (socket === null || socket.writableLength === 0 || socket.destroyed || this.#watched.has(socket)) return;
    this.#watched.set(socket, { subject, sent: sentProgress(socket), sinceMs: Date.now() });
    this.#sweep.start();
  }

  check(nowMs: number): void {
    for (const [socket, state] of this.#watched) {
      if (socket.destroyed || socket.writableLength === 0) {
        this.#watched.delete(socket);
        continue;
      }
      const sent = sentProgress(socket);
      const moved = sent > state.sent;
      state.sent = sent;
      if (moved) state.sinceMs = nowMs;
      else if (nowMs - state.sinceMs >= this.stallMs) {
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
export function resetConnection(socket: SendTarget | null, fallback: { destroy(): unknown }): void {
  if (socket === null || socket.destroyed) fallback.destroy();
  // HTTP/2: RST_STREAM (CANCEL) drops what the stream queued; its siblings and the connection go on.
  else if (isStream(socket)) socket.close(h2.NGHTTP2_CANCEL);
  else socket.resetAndDestroy();
}

/**
 * Where a response's bytes queue: its HTTP/2 stream, or the HTTP/1 connection (the request's socket: a
 * finished response lets go of its own, and the stuck bytes may be the tail of an answer already ended).
 */
export function responseSendTarget(res: ServerResponse): SendTarget | null {
  return (res as ServerResponse & { stream?: Http2Stream }).stream ?? res.req.socket;
}

function isStream(target: SendTarget): target is Http2Stream {
  return 'sentHeaders' in target;
}

/**
 * A number that moves up when the client took data. A socket: what the kernel has taken (`bytesWritten`
 * counts what Node queued as well, `writableLength` what is still queued, in Node or in a libuv write not
 * yet done). An HTTP/2 stream keeps no count of what it sent: a write leaves its queue when nghttp2 has
 * sent all of it, which needs the client's WINDOW_UPDATEs, so a queue that got shorter since the last
 * sweep is progress (one that grew with new writes is not, and becomes the new mark). A client that reads
 * nothing never shortens it; one that reads slower than it is written to is the byte bound's case.
 */
function sentProgress(target: SendTarget): number {
  return isStream(target) ? -target.writableLength : target.bytesWritten - target.writableLength;
}
