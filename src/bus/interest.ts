/**
 * The channels and wildcard prefixes this node's clients hold, counted, so a driver subscribes in the
 * engine on the first holder and unsubscribes after the last (interest-based fan-out).
 */
export class Interest {
  readonly #channels = new Map<string, number>();
  readonly #prefixes = new Map<string, number>();

  /** True when this is the first holder: the driver subscribes in the engine now. */
  add(channel: string, prefix: boolean): boolean {
    const map = prefix ? this.#prefixes : this.#channels;
    const n = map.get(channel) ?? 0;
    map.set(channel, n + 1);
    return n === 0;
  }

  /** True when the last holder left: the driver unsubscribes in the engine now. */
  remove(channel: string, prefix: boolean): boolean {
    const map = prefix ? this.#prefixes : this.#channels;
    const n = map.get(channel);
    if (n === undefined) return false;
    if (n > 1) {
      map.set(channel, n - 1);
      return false;
    }
    map.delete(channel);
    return true;
  }

  wants(channel: string): boolean {
    if (this.#channels.has(channel)) return true;
    for (const prefix of this.#prefixes.keys()) if (channel.startsWith(prefix)) return true;
    return false;
  }

  holdsPrefix(prefix: string): boolean {
    return this.#prefixes.has(prefix);
  }

  /** Every subscription, for a driver to renew after reconnecting. */
  *entries(): Iterable<{ channel: string; prefix: boolean }> {
    for (const channel of this.#channels.keys()) yield { channel, prefix: false };
    for (const channel of this.#prefixes.keys()) yield { channel, prefix: true };
  }

  get size(): number {
    return this.#channels.size + this.#prefixes.size;
  }
}
