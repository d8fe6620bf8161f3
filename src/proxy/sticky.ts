import { createHmac } from 'node:crypto';
import { cookieValue } from './cookies.js';
import type { Backend } from './upstream.js';

/**
 * Cookie stickiness as HAProxy's `cookie NAME insert indirect nocache`: Holdfast inserts the cookie, the
 * backend never sees it, and a response that sets it is marked `Cache-Control: private` so no shared cache
 * hands one client's pin to another. The value is an opaque id per server (an HMAC of group and origin), so
 * a client can only name a server that is configured, and learns nothing about its address. Ids depend only
 * on the key, group and origin: they survive reloads and agree across processes that share the key.
 */
export class StickyCookies {
  readonly cookie: string;
  readonly #byId = new Map<string, Backend>();
  readonly #idOf = new Map<Backend, string>();

  constructor(group: string, cookie: string, servers: readonly Backend[], key: string | Buffer) {
    this.cookie = cookie;
    for (const server of servers) {
      const id = createHmac('sha256', key).update(`${group}\0${server.name}`).digest('base64url').slice(0, 16);
      this.#byId.set(id, server);
      this.#idOf.set(server, id);
    }
  }

  /** The server the request's cookie pins it to; undefined for no cookie or an id that is not ours. */
  pinned(rawHeaders: readonly string[]): Backend | undefined {
    const id = cookieValue(rawHeaders, this.cookie);
    return id === undefined ? undefined : this.#byId.get(id);
  }

  /** `Set-Cookie` value pinning to `server`: a session cookie, not readable by scripts. */
  setCookie(server: Backend): string {
    return `${this.cookie}=${this.#idOf.get(server) ?? ''}; Path=/; HttpOnly; SameSite=Lax`;
  }
}
