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

  /**
   * The holders of any of `channels` right now, each once (a client holding `scores.1` and `scores.*` is one
   * recipient), as an array of its own: a delivery that goes out in slices walks this snapshot, not the live
   * sets, so clients that subscribe while it runs are not reached by it (they had no part in the publish and
   * get the item from history if they ask for it) and clients that leave are skipped by their `closed` flag.
   */
  snapshot(channels: Iterable<string>): C[] {
    const sets = new Set<Set<C>>();
    for (const channel of channels) {
      const exact = this.#exact.get(channel);
      if (exact !== undefined) sets.add(exact);
      if (this.#prefixes.size === 0) continue;
      for (const [prefix, set] of this.#prefixes) if (channel.startsWith(prefix)) sets.add(set);
    }
    if (sets.size <= 1) {
      for (const only of sets) return Array.from(only);
      return [];
    }
    const union = new Set<C>();
    for (const set of sets) for (const c of set) union.add(c);
    return [...union];
  }

  /**
   * The `limit` channels with the most holders, most first (a wildcard prefix `scores.` shown as `scores.*`).
   * One pass over the channels keeping a small sorted list: for the dashboard, once a second, not per delivery.
   */
  top(limit: number): { name: string; holders: number }[] {
    const best: { name: string; holders: number }[] = [];
    const consider = (name: string, holders: number) => {
      if (best.length === limit && holders <= best[best.length - 1]!.holders) return;
      let at = best.length;
      while (at > 0 && best[at - 1]!.holders < holders) at--;
      best.splice(at, 0, { name, holders });
      if (best.length > limit) best.pop();
    };
    if (limit <= 0) return best;
    for (const [name, set] of this.#exact) consider(name, set.size);
    for (const [prefix, set] of this.#prefixes) consider(`${prefix}*`, set.size);
    return best;
  }

  holders(channel: string): number {
    return this.#exact.get(channel)?.size ?? 0;
  }
}
