import { createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';

/**
 * Publisher authentication as the GRIP client libraries send it (js-grip's Publisher): `Bearer <key>`,
 * `Bearer <JWT>` signed HS256 with the key (with `iss` checked when configured), or Basic with the key as
 * password. Pushpin ignores Authorization; Holdfast checks it when `publish.key` is set.
 */
export class PublishAuth {
  readonly #key: Buffer;
  readonly #jwtKey: KeyObject;
  readonly #iss: string | undefined;

  constructor(key: string, iss: string | undefined) {
    this.#key = Buffer.from(key, 'utf8');
    this.#jwtKey = createSecretKey(this.#key);
    this.#iss = iss;
  }

  async verify(authorization: string | undefined): Promise<boolean> {
    if (authorization === undefined) return false;
    const space = authorization.indexOf(' ');
    if (space < 0) return false;
    const scheme = authorization.slice(0, space).toLowerCase();
    const credentials = authorization.slice(space + 1).trim();
    if (scheme === 'basic') {
      const decoded = Buffer.from(credentials, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon >= 0 && this.#matchesKey(decoded.slice(colon + 1));
    }
    if (scheme !== 'bearer') return false;
    if (this.#matchesKey(credentials)) return true;
    if (credentials.split('.').length !== 3) return false;
    try {
      await jwtVerify(credentials, this.#jwtKey, {
        algorithms: ['HS256'],
        ...(this.#iss === undefined ? {} : { issuer: this.#iss }),
      });
      return true;
    } catch {
      return false;
    }
  }

  #matchesKey(candidate: string): boolean {
    const bytes = Buffer.from(candidate, 'utf8');
    return bytes.length === this.#key.length && timingSafeEqual(bytes, this.#key);
  }
}
