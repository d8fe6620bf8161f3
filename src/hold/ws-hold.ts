import type { Socket } from 'node:net';
import type { SendStallSubject } from '../http/send-stall.js';
import type { Instruct } from '../grip/instruct.js';
import type { PublishItem, WsMessageFormat } from '../grip/publish-items.js';
import { HeldClient, type HoldHost, type HoldOrigin } from './held-client.js';

/** The terminated WebSocket a WsHold writes to (src/ws/over-http-session.ts). */
export interface WsHoldSocket extends SendStallSubject {
  /** Bytes ws has queued toward the client. */
  readonly bufferedAmount: number;
  /** Send one published item's ws-message format; false when it was not written. */
  sendPublished(format: WsMessageFormat): boolean;
  closeClient(code: number, reason: string, cause: 'policy'): void;
}

/**
 * GRIP over WebSocket: a terminated socket whose backend subscribed it to channels with `c:` control
 * messages. Published `ws-message` items reach it through the same bus, channel index and filters as the
 * HTTP holds; subscriptions come and go while it lives (HoldRegistry.subscribe/unsubscribe). Liveness and
 * keep-alives belong to the socket's session, so this hold has no deadlines of its own.
 */
export class WsHold extends HeldClient<Socket> {
  readonly transport = 'ws' as const;
  readonly socket: WsHoldSocket;

  /** `tcp` is the connection under the WebSocket: the base class releases the hold when it closes. */
  constructor(host: HoldHost, socket: WsHoldSocket, tcp: Socket, origin: HoldOrigin, meta: Record<string, string>) {
    super(host, tcp, origin, wsInstruct(meta));
    this.socket = socket;
  }

  /**
   * The TCP connection under the WebSocket: ws corks and uncorks around every frame, so without this a
   * publish of 50 items cost 50 writes per subscriber (bench/fanout, --transport ws). Node's cork nests, so
   * ws's own uncork no longer flushes inside a batch.
   */
  corkTarget(): Socket {
    return this.res;
  }

  nextDueMs(): number {
    return Infinity;
  }

  onDue(_nowMs: number): void {}

  protected carriesContent(item: PublishItem): boolean {
    return item.formats['ws-message']?.action === 'send';
  }

  protected deliver(item: PublishItem): boolean {
    const format = item.formats['ws-message'];
    if (format === undefined) return false;
    return this.socket.sendPublished(format);
  }

  /** RFC 6455 §7.4.1: a client that cannot keep up is closed with 1008 (policy), not cut. */
  override checkSlowConsumer(): boolean {
    if (this.socket.bufferedAmount <= this.host.maxQueuedBytes) {
      // The session owns the connection, so it decides what a stalled one means (and counts this hold's drop).
      this.host.sendStall.noteWrite(this.res, this.socket);
      return false;
    }
    this.host.counters.countDrop('slow_consumer');
    this.socket.closeClient(1008, 'send queue full', 'policy');
    return true;
  }
}

function wsInstruct(meta: Record<string, string>): Instruct {
  return {
    hold: null,
    channels: [],
    timeoutSec: 0,
    keepAlive: null,
    meta,
    response: { code: 101, reason: '', headers: [], body: Buffer.alloc(0) },
    nextLink: null,
    goneLink: null,
  };
}
