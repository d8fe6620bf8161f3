import type { GroupConfig } from '../../config/schema.js';
import { usable, type Balancer, type PickRequest } from '../balancer.js';
import { cookieValue } from '../cookies.js';
import { rawHeaderValue } from '../../http/headers.js';
import type { Backend } from '../upstream.js';
import { RoundRobinBalancer } from './round-robin.js';

/** Points per unit of weight on the ring: enough that shares stay within a few percent (ketama uses 160). */
const POINTS_PER_WEIGHT = 160;

/**
 * Consistent hashing (a ketama ring): each server owns POINTS_PER_WEIGHT x weight points placed by hashing
 * its origin, a key goes to the owner of the first point at or after the key's hash. Adding or removing a
 * server moves only the keys of the points it gains or loses, about 1/N of them. A server that is down or
 * excluded is skipped by walking on along the ring, so only its own keys move. A request without the key
 * (no such header or cookie) is balanced round-robin, as HAProxy does.
 */
export class ConsistentHashBalancer implements Balancer {
  readonly #points: Uint32Array;
  readonly #owners: Backend[];
  readonly #hashOn: NonNullable<GroupConfig['hashOn']>;
  readonly #headerName: string | undefined;
  readonly #fallback: RoundRobinBalancer;

  constructor(servers: readonly Backend[], hashOn: NonNullable<GroupConfig['hashOn']>) {
    this.#hashOn = hashOn;
    this.#headerName = hashOn.header?.toLowerCase();
    this.#fallback = new RoundRobinBalancer(servers);
    const ring = buildRing(servers);
    this.#points = ring.points;
    this.#owners = ring.owners;
  }

  /** The key of a request, or undefined when it has none. */
  keyOf(request: PickRequest): string | undefined {
    if (this.#headerName !== undefined) return rawHeaderValue(request.req.rawHeaders, this.#headerName);
    if (this.#hashOn.cookie !== undefined) return cookieValue(request.req.rawHeaders, this.#hashOn.cookie);
    return request.owner.clientAddress;
  }

  pick(nowMs: number, request: PickRequest | null, exclude: ReadonlySet<Backend> | undefined, needCapacity: boolean): Backend | null {
    const key = request === null ? undefined : this.keyOf(request);
    if (key === undefined) return this.#fallback.pick(nowMs, null, exclude, needCapacity);
    return this.lookup(hash32(key), nowMs, exclude);
  }

  /** The first usable owner at or after `hash` on the ring. */
  lookup(hash: number, nowMs: number, exclude?: ReadonlySet<Backend>): Backend | null {
    const points = this.#points;
    const n = points.length;
    if (n === 0) return null;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    for (let k = 0; k < n; k++) {
      const owner = this.#owners[(lo + k) % n]!;
      if (usable(owner, nowMs, exclude, false)) return owner;
    }
    return null;
  }
}

function buildRing(servers: readonly Backend[]): { points: Uint32Array; owners: Backend[] } {
  const entries: { point: number; owner: Backend }[] = [];
  for (const server of servers) {
    for (let i = 0; i < server.weight * POINTS_PER_WEIGHT; i++) entries.push({ point: hash32(`${server.name}#${i}`), owner: server });
  }
  // Ties (vanishingly rare) broken by name so every process builds the same ring.
  entries.sort((a, b) => a.point - b.point || (a.owner.name < b.owner.name ? -1 : 1));
  return { points: Uint32Array.from(entries.map((e) => e.point)), owners: entries.map((e) => e.owner) };
}

/** MurmurHash3 x86 32-bit over the UTF-16 code units: fast, well mixed, stable across processes. */
export function hash32(text: string, seed = 0x9747b28c): number {
  let h = seed >>> 0;
  const n = text.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = (text.charCodeAt(i) & 0xffff) | ((text.charCodeAt(i + 1) & 0xffff) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = text.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
