import type { Bus } from '../bus/bus.js';
import type { PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { GapEvent } from './gap-event.js';
import type { HeldClient } from './held-client.js';
import { StreamHold } from './stream-hold.js';

export interface ReplayDeps {
  bus: Bus;
  metrics: Metrics;
  log: Logger;
  /** What an SSE client is told when its last event is older than the history. */
  gapEvent: GapEvent;
}

/**
 * Sends a client that starts with a Last-Event-ID or a `prev-id` what it missed, from the bus's history;
 * what is published meanwhile waits in the client's replay buffer, so order holds and nothing doubles.
 */
export class Replay {
  readonly #deps: ReplayDeps;

  constructor(deps: ReplayDeps) {
    this.#deps = deps;
  }

  /** Starts the replay when the client asks for one; the client is subscribed already. */
  start(client: HeldClient, lastEventId: string | undefined): void {
    const wantsReplay = client.channels.some((c) => c.prevId !== undefined) || lastEventId !== undefined;
    if (!wantsReplay) return;
    client.replayBuffer = [];
    this.#replay(client, lastEventId).catch((err: unknown) => {
      this.#deps.log.warn({ err }, 'replay failed');
      flushReplayBuffer(client, new Set());
    });
  }

  async #replay(client: HeldClient, lastEventId: string | undefined): Promise<void> {
    const replayedIds = new Set<string>();
    let needsNext = false;
    let foundAny = false;
    /** Channels whose history no longer has the client's Last-Event-ID, with what they still retain. */
    const gaps: { channel: string; retained: PublishItem[] }[] = [];
    const replay = (items: readonly PublishItem[]): boolean => {
      for (const item of items) {
        if (client.closed) return false;
        if (client.deliverReplayed(item)) {
          this.#deps.metrics.replayed.inc();
          if (item.id !== undefined) replayedIds.add(item.id);
        }
      }
      return !client.closed;
    };
    for (const channel of client.channels) {
      if (channel.name.endsWith('.*')) continue;
      const afterId = channel.prevId ?? lastEventId;
      if (afterId === undefined) continue;
      const history = await this.#deps.bus.history(channel.name, afterId);
      if (!history.found) {
        if (channel.prevId !== undefined) needsNext = true;
        else gaps.push({ channel: channel.name, retained: history.items });
        continue;
      }
      foundAny = true;
      if (!replay(history.items)) return;
    }
    if (client.closed) return;
    // The client's last event is older than the history (or from before a restart): say so instead of
    // silently skipping data, then send what the history still has; clients that track ids skip repeats.
    // When the id was found in another of its channels, the client's position is known there and the
    // other channels' retained items would be guesses: they are left out, as before.
    if (!foundAny && lastEventId !== undefined) {
      for (const gap of gaps) {
        if (client instanceof StreamHold && client.transport === 'sse') this.#deps.gapEvent.send(client, gap.channel, lastEventId);
        if (!replay(gap.retained)) return;
      }
    }
    if (needsNext && client.nextLink !== null) client.host.links.fetchNext(client, 'recover');
    flushReplayBuffer(client, replayedIds);
  }
}

/** What was published during the replay, minus what the replay sent already. */
function flushReplayBuffer(client: HeldClient, replayedIds: ReadonlySet<string>): void {
  const buffered = client.replayBuffer ?? [];
  client.replayBuffer = null;
  for (const item of buffered) {
    if (item.id !== undefined && replayedIds.has(item.id)) continue;
    client.receive(item);
  }
}
