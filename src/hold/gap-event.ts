import type { HoldCounting } from './held-client.js';
import type { StreamHold } from './stream-hold.js';

/**
 * The SSE gap event (push.sseGapEvent): an SSE client is told it missed items of a channel, on a replay
 * whose Last-Event-ID is older than the history, or when the bus lost items it cannot replay.
 */
export class GapEvent {
  readonly #template: string;
  readonly #counters: HoldCounting;

  constructor(template: string, counters: HoldCounting) {
    this.#template = template;
    this.#counters = counters;
  }

  send(client: StreamHold, channel: string, lastEventId: string): void {
    const event = this.#template.replaceAll('{channel}', jsonEscape(channel)).replaceAll('{lastEventId}', jsonEscape(lastEventId));
    client.write(Buffer.from(event, 'utf8'));
    this.#counters.countDrop('history_gap');
  }
}

function jsonEscape(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
