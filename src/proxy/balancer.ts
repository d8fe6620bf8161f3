import type { Backend } from './upstream.js';

/**
 * What a balancer may look at in a request: its headers and where it came from. A client request's
 * IncomingMessage fits; a GRIP link fetch gives the original request's upstream headers.
 */
export interface PickRequest {
  readonly req: { readonly rawHeaders: readonly string[] };
  readonly owner: { readonly clientAddress: string };
}

/**
 * Chooses a server of a group for one request. Servers that are down, have weight 0 or are in `exclude`
 * (this request already failed on them) are never chosen. With `needCapacity`, round-robin and
 * least-requests choose only among servers below their concurrency cap; hashing ignores it (the key owns a
 * server; the group queues the request for it, as HAProxy queues on the server).
 */
export interface Balancer {
  pick(nowMs: number, request: PickRequest | null, exclude: ReadonlySet<Backend> | undefined, needCapacity: boolean): Backend | null;
}

export function usable(backend: Backend, nowMs: number, exclude: ReadonlySet<Backend> | undefined, needCapacity: boolean): boolean {
  return backend.weight > 0 && backend.isUp(nowMs) && !(needCapacity && !backend.hasCapacity) && !exclude?.has(backend);
}
