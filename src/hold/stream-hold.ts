import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { responseSendTarget, type SendTarget } from '../edge/send-stall.js';
import type { Instruct, KeepAlive } from '../grip/instruct.js';
import type { PublishItem } from '../grip/publish-items.js';
import { HeldClient, type HoldHost, type HoldOrigin, type Transport } from './held-client.js';
import { asChunk, sseFrame, streamFrame } from './stream-frames.js';

/** Node's own fields: `_headerSent` is true once the head went to the socket (`headersSent` is true from writeHead on). */
type ChunkedResponse = ServerResponse & { chunkedEncoding?: boolean; _headerSent?: boolean };

/**
 * A held HTTP stream (`Grip-Hold: stream`): published `http-stream` content is appended to the open
 * response. A `text/event-stream` hold is Server-Sent Events: ids on events, heartbeats by default, replay.
 */
export class StreamHold extends HeldClient<ServerResponse> {
  readonly transport: Transport;
  keepAlive: KeepAlive | null;
  keepAliveDueMs = Infinity;
  /** When content last went out: idle keep-alives and next links count from here. */
  lastDataMs = 0;
  /**
   * The connection, once Node has put the response head on it and frames the body as chunks: from then on
   * the stream writes pre-framed chunks to it directly (both conditions hold for the rest of the response,
   * so they are checked until they first do, not on every write).
   */
  #chunkSocket: Socket | null = null;

  constructor(host: HoldHost, res: ServerResponse, origin: HoldOrigin, instruct: Instruct, sse: boolean, defaultHeartbeat: KeepAlive | null) {
    super(host, res, origin, instruct);
    this.transport = sse ? 'sse' : 'stream';
    this.keepAlive = instruct.keepAlive ?? (sse ? defaultHeartbeat : null);
  }

  corkTarget(): Socket | null {
    return this.res.socket;
  }

  /** HTTP/2: the stream (its response has no socket of its own, h2-compat.ts). */
  protected override sendTarget(): SendTarget | null {
    return responseSendTarget(this.res);
  }

  /** Apply instructions from a next-link response to the running stream. */
  update(instruct: Instruct): void {
    if (instruct.channels.length > 0) this.channels = instruct.channels;
    if (instruct.keepAlive !== null) this.keepAlive = instruct.keepAlive;
    Object.assign(this.meta, instruct.meta);
    this.nextLink = instruct.nextLink;
    if (instruct.goneLink !== null) this.goneLink = instruct.goneLink;
  }

  /**
   * Arm the deadlines. Data going out only records the time: an idle deadline that passed is moved past the
   * last data when it fires (onDue), so a busy stream costs no timer work per message.
   */
  armTimers(nowMs: number, dataSent: boolean): void {
    if (dataSent) this.lastDataMs = nowMs;
    let changed = false;
    const keepAlive = this.keepAlive;
    if (keepAlive === null || keepAlive.timeoutSec <= 0) {
      if (this.keepAliveDueMs !== Infinity) {
        this.keepAliveDueMs = Infinity;
        changed = true;
      }
    } else if (this.keepAliveDueMs === Infinity) {
      this.keepAliveDueMs = nowMs + keepAlive.timeoutSec * 1000;
      changed = true;
    }
    if (this.nextLink === null) {
      if (this.nextLinkDueMs !== Infinity) {
        this.nextLinkDueMs = Infinity;
        changed = true;
      }
    } else if (this.nextLinkDueMs === Infinity) {
      this.nextLinkDueMs = nowMs + this.nextLink.timeoutSec * 1000;
      changed = true;
    }
    if (changed) this.host.reschedule(this);
  }

  nextDueMs(): number {
    return Math.min(this.keepAliveDueMs, this.nextLinkDueMs);
  }

  onDue(nowMs: number): void {
    if (this.closed) return;
    const keepAlive = this.keepAlive;
    if (keepAlive !== null && this.keepAliveDueMs <= nowMs) {
      const idleDueMs = this.lastDataMs + keepAlive.timeoutSec * 1000;
      if (keepAlive.mode === 'idle' && idleDueMs > nowMs) this.keepAliveDueMs = idleDueMs;
      else {
        this.write(keepAlive.data);
        this.keepAliveDueMs = nowMs + keepAlive.timeoutSec * 1000;
      }
    }
    if (this.nextLinkDueMs <= nowMs) {
      const idleDueMs = this.nextLink === null ? 0 : this.lastDataMs + this.nextLink.timeoutSec * 1000;
      if (idleDueMs > nowMs) this.nextLinkDueMs = idleDueMs;
      else {
        this.nextLinkDueMs = Infinity;
        if (this.nextLink !== null) this.host.fetchNext(this, 'idle');
      }
    }
    if (!this.closed) this.host.reschedule(this);
  }

  /** Raw bytes to the client, with the slow-consumer check. Returns false when the client was dropped. */
  write(bytes: Buffer): boolean {
    return this.#write(bytes, null);
  }

  /** `chunk`: the same bytes framed as one chunk when the caller has them (a published item's), else built here. */
  #write(bytes: Buffer, chunk: Buffer | null): boolean {
    if (this.closed) return false;
    // Straight to the socket once Node has put the head out and frames the body as chunks; otherwise (a
    // pipelined response not yet on the socket, an HTTP/1.0 client) through Node's response. A writable
    // socket means a response not destroyed (destroying it destroys the socket): at 100k subscribers every
    // object a delivery reads is a likely cache miss, so the response is not read on the direct path.
    const socket = this.#chunkSocket ?? this.#takeChunkSocket();
    const direct = socket !== null && socket.writable;
    if (!direct && this.res.destroyed) return false;
    if (bytes.length === 0) return true;
    if (direct) socket.write(chunk ?? asChunk(bytes));
    else this.res.write(bytes);
    // While corked for a publish batch every byte counts as queued, however fast the client reads: the
    // check would drop healthy clients of any batch over the limit. The manager checks once it uncorks.
    return this.corked || !this.checkSlowConsumer();
  }

  /** Once writing straight to the socket, the response queues nothing of its own: the socket's queue is all. */
  protected override queuedBytes(): number {
    return this.#chunkSocket === null ? this.res.writableLength : this.#chunkSocket.writableLength;
  }

  #takeChunkSocket(): Socket | null {
    const res = this.res as ChunkedResponse;
    if (res.socket === null || res.chunkedEncoding !== true || res._headerSent !== true) return null;
    this.#chunkSocket = res.socket;
    return res.socket;
  }

  protected carriesContent(item: PublishItem): boolean {
    return item.formats['http-stream']?.action === 'send';
  }

  protected deliver(item: PublishItem): boolean {
    const format = item.formats['http-stream'];
    if (format === undefined) return false;
    switch (format.action) {
      case 'close':
        this.end();
        return true;
      case 'hint':
        if (this.nextLink !== null) this.host.fetchNext(this, 'hint');
        return true;
      case 'send': {
        const frame = this.transport === 'sse' ? sseFrame(item, format.content) : streamFrame(item, format.content);
        const ok = this.#write(frame.bytes, frame.chunk);
        if (ok) this.armTimers(Date.now(), true);
        return ok;
      }
    }
  }

  /** End the stream cleanly (publish close action, drain, next link without more). */
  end(): void {
    if (this.closed) return;
    this.host.release(this, false);
    this.res.end();
  }
}
