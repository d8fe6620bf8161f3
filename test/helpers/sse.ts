import type { TestContext } from 'node:test';
import { EventSource } from 'eventsource';
import { eventually } from './until.js';

/** Every event of the given types an EventSource got (`message` unless told), in order. */
export class Inbox {
  readonly events: { type: string; id: string; data: string }[] = [];

  constructor(es: EventSource, types: string[] = ['message']) {
    for (const type of types) {
      es.addEventListener(type, (e: MessageEvent) => this.events.push({ type, id: e.lastEventId, data: String(e.data) }));
    }
  }

  /** Bounded: fails naming how many arrived rather than hanging the test. */
  waitCount(n: number, timeoutMs = 10_000): Promise<void> {
    return eventually(() => this.events.length >= n, timeoutMs, `${n} SSE events (have ${this.events.length})`);
  }
}

/** The `eventsource` client (what browsers do, in Node), closed after the test; optionally resuming from an id. */
export function openEventSource(t: TestContext, url: string, lastEventId?: string): EventSource {
  const es =
    lastEventId === undefined
      ? new EventSource(url)
      : new EventSource(url, {
          fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'last-event-id': lastEventId } }),
        });
  t.after(() => es.close());
  return es;
}
