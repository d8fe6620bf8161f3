/**
 * Where each wildcard prefix's live items stand in a stream with one sequence for every subject (NATS
 * JetStream), so that after an outage the driver can read what the prefix missed: every stored item under
 * the prefix after the mark. (The Redis driver keeps one history per channel and marks by clock instead:
 * prefix-marks.ts.)
 *
 * While the connection is down and until the catch-up is done, live items of channels that this node
 * holds only through a prefix wait here, so a channel's first live item after the reconnect cannot
 * overtake what it missed during the outage.
 */
export class StreamPrefixMarks<E extends { seq: number }> {
  /** Prefix -> the highest stream sequence received through it (or the stream's last when it was subscribed). */
  readonly #marks = new Map<string, number>();
  /** Set from a connection loss until its catch-up ran: the marks then, and the live items held back since. */
  #outage: { marks: Map<string, number>; held: Map<string, E[]> } | null = null;

  /** A prefix newly subscribed, when the stream's last sequence was `seq`. */
  start(prefix: string, seq: number): void {
    if (!this.#marks.has(prefix)) this.#marks.set(prefix, seq);
  }

  stop(prefix: string): void {
    this.#marks.delete(prefix);
  }

  /** An item of `channel` at `seq` arrived: every held prefix it starts with has now seen that far. */
  received(channel: string, seq: number): void {
    for (const [prefix, mark] of this.#marks) if (seq > mark && channel.startsWith(prefix)) this.#marks.set(prefix, seq);
  }

  /** The connection is lost: remember where each prefix stood (a second loss before the catch-up keeps the first). */
  lost(): void {
    this.#outage ??= { marks: new Map(this.#marks), held: new Map() };
  }

  /** Holds back a live item of a channel held only through a prefix while an outage is being caught up. */
  holdBack(channel: string, entry: E): boolean {
    const outage = this.#outage;
    if (outage === null || !this.#covers(channel)) return false;
    const list = outage.held.get(channel);
    if (list === undefined) outage.held.set(channel, [entry]);
    else list.push(entry);
    return true;
  }

  /** The marks when the connection was lost, to read each prefix's missed items from; null if none was. */
  outageMarks(): ReadonlyMap<string, number> | null {
    return this.#outage?.marks ?? null;
  }

  /** The catch-up is done: the live items held back since the loss, by channel. */
  endOutage(): Map<string, E[]> {
    const held = this.#outage?.held ?? new Map<string, E[]>();
    this.#outage = null;
    return held;
  }

  #covers(channel: string): boolean {
    for (const prefix of this.#marks.keys()) if (channel.startsWith(prefix)) return true;
    return false;
  }
}
