/**
 * Which held clients hold which channel, exact and by wildcard prefix (`scores.*` is stored as `scores.`).
 * add/remove report the first and last holder so the node subscribes on the bus only to channels its own
 * clients hold.
 */
export class ChannelIndex<C> {
  readonly #exact = new Map<string, Set<C>>();
  readonly #prefixes = new Map<string, Set<C>>();
  #subscriptions = 0;

  get channelCount(): number {
    return this.#exact.size + this.#prefixes.size;
  }

  get subscriptionCount(): number {
    return this.#subscriptions;
  }

  /** True when `client` is the channel's first holder on this node. */
  add(client: C, channel: string, prefix: boolean): boolean {
    const map = prefix ? this.#prefixes : this.#exact;
    let set = map.get(channel);
    const first = set === undefined;
    if (set === undefined) {
      set = new Set();
      map.set(channel, set);
    }
    if (!set.has(client)) {
      set.add(client);
      this.#subscriptions++;
    }
    return first;
  }

  /** True when `client` was the channel's last holder on this node. */
  remove(client: C, channel: string, prefix: boolean): boolean {
    const map = prefix ? this.#prefixes : this.#exact;
    const set = map.get(channel);
    if (set === undefined || !set.delete(client)) return false;
    this.#subscriptions--;
    if (set.size > 0) return false;
    map.delete(channel);
    return true;
  }

  /** Calls `visit` for every holder of `channel`, exact holders first, then each matching prefix's. */
  forEachHolder(channel: string, visit: (client: C) => void): void {
    const exact = this.#exact.get(channel);
    if (exact !== undefined) for (const c of exact) visit(c);
    if (this.#prefixes.size === 0) return;
    for (const [prefix, set] of this.#prefixes) {
      if (channel.startsWith(prefix)) for (const c of set) visit(c);
    }
  }

  holders(channel: string): number {
    return this.#exact.get(channel)?.size ?? 0;
  }
}
