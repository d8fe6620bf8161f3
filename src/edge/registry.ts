import { ClientRequestError, E, type HoldfastError } from '../errors.js';
import type { Socket } from 'node:net';

/** What the registry needs to know of a client connection. */
export interface TrackedConnection {
  readonly socket: Socket;
  readonly clientAddress: string;
  /** Responses not yet finished; 0 with at least one request seen means idle keep-alive. */
  pendingResponses: number;
  requestsSeen: number;
  /** socket.bytesRead when it went idle: more bytes since means a next request is arriving. */
  bytesReadAtIdle: number;
  idleSinceMs: number;
  /** No further request on it is forwarded. */
  closing: boolean;
}

export interface Limits {
  maxConnections: number;
  maxConnectionsPerClient: number;
}

export type AdmitResult =
  | { admitted: true; reclaimed: TrackedConnection | null }
  | { admitted: false; error: HoldfastError; limit: 'global' | 'per-client' };

/**
 * Counts client connections against the global and per-address limits. At a limit it reclaims the idle
 * keep-alive connection that has waited longest (of that client, for the per-client limit) before it refuses
 * anyone: an idle keep-alive connection may be closed at any time (RFC 9112 §9.8), a refused newcomer may not
 * come back. The idle set is a Map kept in idle order, so the longest idle is its first entry.
 */
export class ConnectionRegistry<C extends TrackedConnection> {
  readonly #limits: Limits;
  readonly #all = new Set<C>();
  readonly #byClient = new Map<string, Set<C>>();
  readonly #idle = new Map<C, true>();

  constructor(limits: Limits) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#all.size;
  }

  connections(): IterableIterator<C> {
    return this.#all.values();
  }

  admit(conn: C): AdmitResult {
    let reclaimed: C | null = null;
    const mine = this.#byClient.get(conn.clientAddress);
    if (mine !== undefined && mine.size >= this.#limits.maxConnectionsPerClient) {
      reclaimed = this.#oldestIdleOf(mine);
      if (reclaimed === null) {
        return {
          admitted: false,
          limit: 'per-client',
          error: new ClientRequestError(
            E.CLIENT_CONNECTION_LIMIT,
            `limits.maxConnectionsPerClient (${this.#limits.maxConnectionsPerClient}) reached for this address and none of its connections is idle`,
          ),
        };
      }
      this.reclaim(reclaimed);
    } else if (this.#all.size >= this.#limits.maxConnections) {
      reclaimed = this.#oldestIdle();
      if (reclaimed === null) {
        return {
          admitted: false,
          limit: 'global',
          error: new ClientRequestError(
            E.CONNECTION_LIMIT,
            `limits.maxConnections (${this.#limits.maxConnections}) reached and no connection is idle`,
          ),
        };
      }
      this.reclaim(reclaimed);
    }
    this.#all.add(conn);
    if (mine === undefined) this.#byClient.set(conn.clientAddress, new Set([conn]));
    else mine.add(conn);
    return { admitted: true, reclaimed };
  }

  markBusy(conn: C): void {
    this.#idle.delete(conn);
  }

  markIdle(conn: C, nowMs: number): void {
    if (!this.#all.has(conn)) return;
    conn.idleSinceMs = nowMs;
    conn.bytesReadAtIdle = conn.socket.bytesRead;
    this.#idle.delete(conn);
    this.#idle.set(conn, true);
  }

  remove(conn: C): void {
    if (!this.#all.delete(conn)) return;
    this.#idle.delete(conn);
    const mine = this.#byClient.get(conn.clientAddress);
    mine?.delete(conn);
    if (mine?.size === 0) this.#byClient.delete(conn.clientAddress);
  }

  /** Close an idle keep-alive connection now and stop counting it. */
  reclaim(conn: C): void {
    conn.closing = true;
    this.remove(conn);
    conn.socket.destroy();
  }

  #isReclaimable(conn: C): boolean {
    return (
      conn.pendingResponses === 0 &&
      conn.requestsSeen > 0 &&
      !conn.closing &&
      conn.socket.bytesRead === conn.bytesReadAtIdle
    );
  }

  #oldestIdle(): C | null {
    for (const conn of this.#idle.keys()) {
      if (this.#isReclaimable(conn)) return conn;
    }
    return null;
  }

  #oldestIdleOf(candidates: ReadonlySet<C>): C | null {
    let best: C | null = null;
    for (const conn of candidates) {
      if (!this.#idle.has(conn) || !this.#isReclaimable(conn)) continue;
      if (best === null || conn.idleSinceMs < best.idleSinceMs) best = conn;
    }
    return best;
  }
}
