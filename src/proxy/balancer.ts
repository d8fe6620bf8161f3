import type { Backend } from './upstream.js';

/**
 * Round-robin over the backends that passive health has not taken out. `exclude` holds the ones this request
 * already failed on, so a retry goes elsewhere when anywhere else is up.
 */
export class RoundRobinBalancer {
  readonly #backends: readonly Backend[];
  #next = 0;

  constructor(backends: readonly Backend[]) {
    this.#backends = backends;
  }

  pick(nowMs: number, exclude?: ReadonlySet<Backend>): Backend | null {
    const n = this.#backends.length;
    for (let i = 0; i < n; i++) {
      const backend = this.#backends[(this.#next + i) % n]!;
      if (!backend.isUp(nowMs) || exclude?.has(backend)) continue;
      this.#next = (this.#next + i + 1) % n;
      return backend;
    }
    return null;
  }
}
