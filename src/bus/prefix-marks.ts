/**
 * Where each wildcard prefix's live items stand, so that after a reconnect the driver can read what the
 * prefix missed from history. A prefix's items come over many channels whose histories are separate, so
 * the mark is a position every history shares: the bus engine's clock.
 *
 * The mark is the newest position received through the prefix, plus the channels received at exactly that
 * position's tick (Redis stream ids of different streams share a millisecond). A catch-up reads each
 * matching history from the mark's tick and skips what `atTick` says arrived; everything later is missed.
 * A prefix that has received nothing yet is marked with the tick its subscription began, and nothing of
 * that tick is taken as missed (an item of the same millisecond published before the subscription would
 * otherwise be delivered to clients that never asked for it).
 */
export interface PrefixMark {
  /** The engine's clock (Redis: stream id milliseconds) of the newest item received, or of the subscribe. */
  tick: number;
  /** Items (`channel` + ' ' + position) received at `tick`; null when the mark is a subscribe time. */
  atTick: Set<string> | null;
}

/** Whether an item (of `channel` at `position`, engine clock `tick`) came after `mark`: one the prefix missed. */
export function missedSince(mark: PrefixMark, channel: string, position: string, tick: number): boolean {
  if (tick !== mark.tick) return tick > mark.tick;
  return mark.atTick !== null && !mark.atTick.has(`${channel} ${position}`);
}

export class PrefixMarks {
  readonly #marks = new Map<string, PrefixMark>();
  /** Live items held back per prefix while its catch-up reads history, so order holds per channel. */
  readonly #buffers = new Map<string, { channel: string; position: string; tick: number; deliver: () => void }[]>();

  /** A prefix is newly subscribed at `tick` (the engine's clock). */
  start(prefix: string, tick: number): void {
    if (!this.#marks.has(prefix)) this.#marks.set(prefix, { tick, atTick: null });
  }

  stop(prefix: string): void {
    this.#marks.delete(prefix);
    this.#buffers.delete(prefix);
  }

  /** An item of `channel` at `position` (engine clock `tick`) arrived through `prefix`. */
  received(prefix: string, channel: string, position: string, tick: number): void {
    const mark = this.#marks.get(prefix);
    if (mark === undefined || tick < mark.tick) return;
    let atTick = mark.atTick;
    if (tick > mark.tick || atTick === null) {
      atTick = new Set();
      mark.tick = tick;
      mark.atTick = atTick;
    }
    atTick.add(`${channel} ${position}`);
  }

  /**
   * The prefix's mark as it stands now, kept apart for a catch-up: it reads one channel after another,
   * and judging the later ones by a mark the earlier ones advanced would skip what they missed.
   */
  snapshot(prefix: string): PrefixMark | undefined {
    const mark = this.#marks.get(prefix);
    return mark === undefined ? undefined : { tick: mark.tick, atTick: mark.atTick === null ? null : new Set(mark.atTick) };
  }

  /** From now until `release`, live items of `prefix` wait (a catch-up of it is reading history). */
  hold(prefix: string): void {
    if (this.#marks.has(prefix)) this.#buffers.set(prefix, []);
  }

  /** Holds a live item back if `prefix` is catching up; false when it may be delivered now. */
  buffer(prefix: string, channel: string, position: string, tick: number, deliver: () => void): boolean {
    const buffer = this.#buffers.get(prefix);
    if (buffer === undefined) return false;
    buffer.push({ channel, position, tick, deliver });
    return true;
  }

  /**
   * The catch-up is done: deliver what waited, but not what the catch-up itself delivered (`delivered`
   * holds `channel + ' ' + position` of those). Compared by item, not by the mark: the catch-up reads one
   * channel after another, so the mark may already stand past a live item of a channel read earlier.
   */
  release(prefix: string, delivered: ReadonlySet<string>): void {
    const buffer = this.#buffers.get(prefix);
    this.#buffers.delete(prefix);
    if (buffer === undefined) return;
    for (const live of buffer) {
      if (delivered.has(`${live.channel} ${live.position}`)) continue;
      this.received(prefix, live.channel, live.position, live.tick);
      live.deliver();
    }
  }
}
