import { TimerWheel, type WheelEntry } from '../util/timer-wheel.js';

/** Anything in the WebSocket subsystem with deadlines: a terminated socket or a tunnel. */
export interface WsTimed extends WheelEntry {
  /** The wheel says a deadline passed. */
  onDue(nowMs: number): void;
}

/** A quarter second is fine-grained enough for deadlines counted in seconds, and keeps the wheel cheap. */
export const WS_TICK_MS = 250;

/**
 * One shared timer for every WebSocket deadline (pings, pong deadlines, keep-alive POSTs, retry backoff,
 * tunnel idling) instead of a Node timer per socket; the same hashed wheel the held HTTP clients use.
 */
export function createWsWheel(): TimerWheel<WsTimed> {
  return new TimerWheel<WsTimed>(WS_TICK_MS, wsEntryOnDue);
}

function wsEntryOnDue(entry: WsTimed): void {
  entry.onDue(Date.now());
}

/**
 * Ping/pong bookkeeping of one terminated socket. When a ping is due and nothing was heard from the peer
 * since the last check, a ping goes out; a peer that has not answered `pongTimeoutMs` later is dead. Any
 * frame from the peer counts as a sign of life (a busy peer is plainly alive, and browsers never ping), and
 * noting one is a boolean store, so a chatty connection pays nothing and is never pinged. A silent peer is
 * pinged after pingIntervalMs and found dead pongTimeoutMs later; the bound after its last frame is
 * 2 x pingIntervalMs + pongTimeoutMs + one wheel tick.
 */
export class PingPong {
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  /** When the next ping is due (Infinity when pings are off or one is outstanding). */
  pingDueMs: number;
  /** Deadline of the ping in flight; Infinity when none is outstanding. */
  pongDueMs = Infinity;
  /** A frame arrived since the last check. */
  heard = false;

  constructor(pingIntervalMs: number, pongTimeoutMs: number, nowMs: number) {
    this.pingIntervalMs = pingIntervalMs;
    this.pongTimeoutMs = pongTimeoutMs;
    this.pingDueMs = pingIntervalMs > 0 ? nowMs + pingIntervalMs : Infinity;
  }

  nextDueMs(): number {
    return Math.min(this.pongDueMs, this.pingDueMs);
  }

  /** The pong to our ping: the next ping is due a full interval from now. */
  pong(nowMs: number): void {
    if (this.pingIntervalMs === 0) return;
    this.heard = false;
    this.pongDueMs = Infinity;
    this.pingDueMs = nowMs + this.pingIntervalMs;
  }

  /** What is due now: nothing, a ping to send (its deadline is armed), or a dead peer. */
  check(nowMs: number): 'none' | 'ping' | 'dead' {
    if (this.pongDueMs !== Infinity) {
      if (this.heard) {
        this.pong(nowMs);
        return 'none';
      }
      return this.pongDueMs <= nowMs ? 'dead' : 'none';
    }
    if (this.pingDueMs > nowMs) return 'none';
    if (this.heard) {
      this.heard = false;
      this.pingDueMs = nowMs + this.pingIntervalMs;
      return 'none';
    }
    this.pingDueMs = Infinity;
    this.pongDueMs = nowMs + this.pongTimeoutMs;
    return 'ping';
  }
}
