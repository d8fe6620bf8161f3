import { usable, type Balancer } from '../balancer.js';
import type { Backend } from '../upstream.js';

/**
 * nginx's smooth weighted round-robin (ngx_http_upstream_round_robin.c): every pick adds each server's
 * weight to its running score, takes the highest and subtracts the total from it. Weights 5,1,1 give
 * a,a,b,a,c,a,a rather than a burst of five; equal weights give strict rotation. Weights are the effective
 * ones, so a server in slow start takes a growing share.
 */
export class RoundRobinBalancer implements Balancer {
  readonly #servers: readonly Backend[];
  readonly #scores: number[];

  constructor(servers: readonly Backend[]) {
    this.#servers = servers;
    this.#scores = servers.map(() => 0);
  }

  pick(nowMs: number, _request: unknown, exclude: ReadonlySet<Backend> | undefined, needCapacity: boolean): Backend | null {
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.#servers.length; i++) {
      const server = this.#servers[i]!;
      if (!usable(server, nowMs, exclude, needCapacity)) continue;
      const weight = server.effectiveWeight(nowMs);
      total += weight;
      this.#scores[i]! += weight;
      if (best < 0 || this.#scores[i]! > this.#scores[best]!) best = i;
    }
    if (best < 0) return null;
    this.#scores[best]! -= total;
    return this.#servers[best]!;
  }
}
