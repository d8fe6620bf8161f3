import type { ServerResponse } from 'node:http';
import type { Instruct, KeepAlive } from '../grip/instruct.js';
import type { PublishItem } from '../grip/publish-items.js';
import { HeldClient, type HoldHost, type HoldOrigin, type Transport } from './held-client.js';

const SSE_ID_LINE = /^id:/m;
const sseBytesCache = new WeakMap<PublishItem, Buffer>();

/**
 * SSE events carry the item's id, so a reconnecting EventSource sends it back as Last-Event-ID. Built once
 * per item and shared by every subscriber.
 */
function sseContent(item: PublishItem, content: Buffer): Buffer {
  if (item.id === undefined || /[\r\n]/.test(item.id)) return content;
  let bytes = sseBytesCache.get(item);
  if (bytes === undefined) {
    bytes = SSE_ID_LINE.test(content.toString('utf8')) ? content : Buffer.concat([Buffer.from(`id: ${item.id}\n`), content]);
    sseBytesCache.set(item, bytes);
  }
  return bytes;
}

/**
 * A held HTTP stream (`Grip-Hold: stream`): published `http-stream` content is appended to the open
 * response. A `text/event-stream` hold is Server-Sent Events: ids on events, heartbeats by default, replay.
 */
export class StreamHold extends HeldClient {
  readonly transport: Transport;
  keepAlive: KeepAlive | null;
  keepAliveDueMs = Infinity;
  /** Socket corked for a batch of items from one publish request. */
  corked = false;

  constructor(host: HoldHost, res: ServerResponse, origin: HoldOrigin, instruct: Instruct, sse: boolean, defaultHeartbeat: KeepAlive | null) {
    super(host, res, origin, instruct);
    this.transport = sse ? 'sse' : 'stream';
    this.keepAlive = instruct.keepAlive ?? (sse ? defaultHeartbeat : null);
  }

  /** Apply instructions from a next-link response to the running stream. */
  update(instruct: Instruct): void {
    if (instruct.channels.length > 0) this.channels = instruct.channels;
    if (instruct.keepAlive !== null) this.keepAlive = instruct.keepAlive;
    Object.assign(this.meta, instruct.meta);
    this.nextLink = instruct.nextLink;
    if (instruct.goneLink !== null) this.goneLink = instruct.goneLink;
  }

  /** (Re)arm timers after data went out. */
  armTimers(nowMs: number, dataSent: boolean): void {
    if (this.keepAlive !== null && this.keepAlive.timeoutSec > 0) {
      if (dataSent ? this.keepAlive.mode === 'idle' : this.keepAliveDueMs === Infinity) {
        this.keepAliveDueMs = nowMs + this.keepAlive.timeoutSec * 1000;
      }
    } else this.keepAliveDueMs = Infinity;
    if (this.nextLink !== null && (dataSent || this.nextLinkDueMs === Infinity)) {
      this.nextLinkDueMs = nowMs + this.nextLink.timeoutSec * 1000;
    } else if (this.nextLink === null) this.nextLinkDueMs = Infinity;
    this.host.reschedule(this);
  }

  nextDueMs(): number {
    return Math.min(this.keepAliveDueMs, this.nextLinkDueMs);
  }

  onDue(nowMs: number): void {
    if (this.closed) return;
    if (this.keepAliveDueMs <= nowMs && this.keepAlive !== null) {
      this.write(this.keepAlive.data);
      this.keepAliveDueMs = nowMs + this.keepAlive.timeoutSec * 1000;
    }
    if (this.nextLinkDueMs <= nowMs) {
      this.nextLinkDueMs = Infinity;
      if (this.nextLink !== null) this.host.fetchNext(this, 'idle');
    }
    if (!this.closed) this.host.reschedule(this);
  }

  /** Raw bytes to the client, with the slow-consumer check. Returns false when the client was dropped. */
  write(bytes: Buffer): boolean {
    if (this.closed || this.res.destroyed) return false;
    if (bytes.length === 0) return true;
    this.res.write(bytes);
    // While corked for a publish batch every byte counts as queued, however fast the client reads: the
    // check would drop healthy clients of any batch over the limit. The manager checks once it uncorks.
    return this.corked || !this.checkSlowConsumer();
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
        const content = format.content ?? Buffer.alloc(0);
        const ok = this.write(this.transport === 'sse' ? sseContent(item, content) : content);
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
