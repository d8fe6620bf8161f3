import { isGripResponse, parseInstruct, type Instruct } from '../grip/instruct.js';
import type { Logger } from '../observe/log.js';
import type { HeldClient, LinkFollowing } from './held-client.js';
import { checkInstruct } from './hold-limits.js';
import type { LinkFetcher, LinkResponse } from './links.js';
import { ResponseHold } from './response-hold.js';
import { StreamHold } from './stream-hold.js';

/**
 * Follows a held client's links through the proxy (LinkFetcher): the next link when a stream idles, recovers
 * or is hinted, the original request again on a long-poll hint, and the gone link when the client leaves;
 * then applies the backend's answer to the client.
 */
export class LinkFollower implements LinkFollowing {
  readonly #fetcher: LinkFetcher;
  readonly #log: Logger;
  readonly #maxChannelsPerConnection: number;

  constructor(fetcher: LinkFetcher, log: Logger, maxChannelsPerConnection: number) {
    this.#fetcher = fetcher;
    this.#log = log;
    this.#maxChannelsPerConnection = maxChannelsPerConnection;
  }

  fetchNext(client: HeldClient, reason: 'idle' | 'recover' | 'hint'): void {
    if (client.nextLink === null || client.fetching || client.closed) return;
    client.fetching = true;
    const gripLast: string[] = [];
    for (const c of client.channels) {
      if (c.prevId !== undefined) gripLast.push('grip-last', `${c.name}; last-id=${c.prevId}`);
    }
    const link = client.nextLink.url;
    this.#fetcher
      .fetch(link, client.origin, 'GET', gripLast)
      .then((response) => this.#apply(client, response))
      .catch((err: unknown) => {
        this.#log.warn({ link, reason, err: (err as Error).message }, 'next link failed');
        if (client instanceof StreamHold) client.end();
      })
      .finally(() => {
        client.fetching = false;
      });
  }

  refetch(client: HeldClient): void {
    if (client.fetching || client.closed) return;
    client.fetching = true;
    this.#fetcher
      .fetch(client.origin.target, client.origin, 'GET')
      .then((response) => this.#apply(client, response))
      .catch((err: unknown) => {
        this.#log.warn({ target: client.origin.target, err: (err as Error).message }, 'hint refetch failed');
      })
      .finally(() => {
        client.fetching = false;
      });
  }

  /** The client left while held: tell the backend through its gone link, if it gave one. */
  sendGone(client: HeldClient): void {
    if (client.goneLink === null) return;
    const link = client.goneLink;
    this.#fetcher.fetch(link, client.origin, 'POST').catch((err: unknown) => {
      this.#log.warn({ link, err: (err as Error).message }, 'gone link failed');
    });
  }

  #apply(client: HeldClient, response: LinkResponse): void {
    if (client.closed) return;
    const grip = isGripResponse(response.headers);
    let instruct: Instruct | null = null;
    if (grip) {
      try {
        instruct = parseInstruct(response.status, response.reason, response.headers, response.body);
        checkInstruct(instruct, this.#maxChannelsPerConnection);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'invalid instruction from a link');
        if (client instanceof StreamHold) client.end();
        return;
      }
    }
    if (client instanceof StreamHold) {
      if (response.status < 200 || response.status >= 300) return client.end();
      client.write(instruct?.response.body ?? response.body);
      if (instruct === null || (instruct.hold === null && instruct.nextLink === null)) return client.end();
      client.host.resubscribe(client, instruct);
      client.update(instruct);
      client.armTimers(Date.now(), true);
      // Another page without a hold: keep paging at once rather than after an idle timeout.
      if (instruct.hold === null) queueMicrotask(() => this.fetchNext(client, 'idle'));
      return;
    }
    if (client instanceof ResponseHold) {
      if (instruct !== null && instruct.hold === 'response') {
        client.host.resubscribe(client, instruct);
        client.channels = instruct.channels;
        return;
      }
      const r = instruct?.response ?? { code: response.status, reason: response.reason, headers: response.headers, body: response.body };
      client.respond(r.code, r.reason, r.headers, [], r.body);
    }
  }
}
