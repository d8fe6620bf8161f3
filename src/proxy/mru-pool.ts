import { createRequire } from 'node:module';
import { Pool, type Dispatcher } from 'undici';

/**
 * undici's Pool hands a request to the first free connection in the order the connections were opened, so
 * after a burst the oldest idle connection is reused first: the one most likely to be near the backend's
 * keep-alive timeout, where the backend closes it as we write (the keep-alive race, DESIGN.md). HAProxy and
 * nginx reuse the most recently used connection, and so does this Pool: each connection records when it last
 * became free, and a request goes to the free one that did so last. Connections the burst no longer needs
 * then idle out (undici's keepAliveTimeout) instead of being kept half-warm by turns.
 *
 * It relies on three of undici's pool internals (the connection list, the per-connection "busy" mark, and
 * the method that picks a connection). They are looked up once at start-up: if an undici upgrade renames
 * them, `createMruPool` falls back to the plain first-free Pool rather than break (the pooling tests then
 * fail on the order, which is how an upgrade finds out).
 */

interface PoolInternals {
  kClients: symbol;
  kNeedDrain: symbol;
  kGetDispatcher: symbol;
  kAddClient: symbol;
}

type Connection = Dispatcher & { closed?: boolean; destroyed?: boolean } & Record<symbol, unknown>;
type PoolWithInternals = Pool & Record<symbol, unknown>;

/** When a connection last became free, as an ever-growing counter (not a clock: ties must not happen). */
const kFreedAt = Symbol('holdfast.freedAt');
let freedCounter = 0;

function loadInternals(): PoolInternals | null {
  try {
    const require = createRequire(import.meta.url);
    const base = require('undici/lib/dispatcher/pool-base.js') as Partial<Record<keyof PoolInternals, unknown>>;
    const { kClients, kNeedDrain, kGetDispatcher, kAddClient } = base;
    if (typeof kClients !== 'symbol' || typeof kNeedDrain !== 'symbol') return null;
    if (typeof kGetDispatcher !== 'symbol' || typeof kAddClient !== 'symbol') return null;
    const proto = Pool.prototype as unknown as Record<symbol, unknown>;
    if (typeof proto[kGetDispatcher] !== 'function' || typeof proto[kAddClient] !== 'function') return null;
    return { kClients, kNeedDrain, kGetDispatcher, kAddClient };
  } catch {
    return null;
  }
}

function markFreed(this: Connection): void {
  this[kFreedAt] = ++freedCounter;
}

function mruPoolClass(internals: PoolInternals): typeof Pool {
  const { kClients, kNeedDrain, kGetDispatcher, kAddClient } = internals;
  const base = Pool.prototype as unknown as Record<symbol, (this: PoolWithInternals, ...args: unknown[]) => unknown>;
  const addClient = base[kAddClient]!;
  const getDispatcher = base[kGetDispatcher]!;
  class MruPool extends Pool {}
  const proto = MruPool.prototype as unknown as Record<symbol, unknown>;
  proto[kAddClient] = function addClientMru(this: PoolWithInternals, client: Connection): unknown {
    // undici emits `drain` on a connection each time it can take a request again (pipelining 1: after
    // every response).
    client.on('drain', markFreed);
    return addClient.call(this, client);
  };
  proto[kGetDispatcher] = function mostRecentlyFreed(this: PoolWithInternals): unknown {
    let best: Connection | null = null;
    for (const client of this[kClients] as Connection[]) {
      if (client[kNeedDrain] === true || client.closed === true || client.destroyed === true) continue;
      if (best === null || ((client[kFreedAt] as number | undefined) ?? 0) > ((best[kFreedAt] as number | undefined) ?? 0)) {
        best = client;
      }
    }
    // None free: undici's own choice, which opens a connection while under the cap.
    return best ?? getDispatcher.call(this);
  };
  return MruPool;
}

const internals = loadInternals();
const PoolClass: typeof Pool = internals === null ? Pool : mruPoolClass(internals);

/** Whether pools reuse the most recently used connection (false only if undici's internals moved). */
export const poolReusesMostRecent = internals !== null;

export function createMruPool(origin: string, options: Pool.Options): Pool {
  return new PoolClass(origin, options);
}
