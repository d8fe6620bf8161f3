import { usable, type Balancer } from '../balancer.js';
import type { Backend } from '../upstream.js';

/**
 * Fewest outstanding requests relative to weight (HAProxy's leastconn, Envoy's least_request with full
 * scan). Ties rotate, so an idle group is still spread instead of always starting at the first server.
 */
export class LeastRequestsBalancer implements Balancer {
  readonly #servers: readonly Backend[];
  #offset = 0;

  constructor(servers: readonly Backend[]) {
    this.#servers = servers;
  }

  pick(nowMs: number, _request: unknown, exclude: ReadonlySet<Backend> | undefined, needCapacity: boolean): Backend | null {
    const n = this.#servers.length;
    let best: Backend | null = null;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const server = this.#servers[(this.#offset + k) % n]!;
      if (!usable(server, nowMs, exclude, needCapacity)) continue;
      const score = (server.outstanding + 1) / server.effectiveWeight(nowMs);
      if (score < bestScore) {
        best = server;
        bestScore = score;
      }
    }
    this.#offset = (this.#offset + 1) % n;
    return best;
  }
}
