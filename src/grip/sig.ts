import { createPrivateKey, createSecretKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';

/** Tokens live an hour (Pushpin's choice); we sign a new one well before that. */
const TOKEN_LIFETIME_SEC = 3600;
const REFRESH_AFTER_MS = 10 * 60 * 1000;

/**
 * The Grip-Sig JWT every backend request carries, so the backend can tell a request came through its GRIP
 * proxy. Signing per request would cost more than proxying it, and jose signs asynchronously, so one token
 * is kept and re-signed in the background every ten minutes; `token()` is a field read on the hot path.
 */
export class GripSigner {
  readonly #iss: string;
  readonly #key: KeyObject;
  readonly #alg: 'HS256' | 'ES256' | 'RS256';
  #token = '';
  #signedAtMs = 0;
  #refreshing: Promise<void> | null = null;

  private constructor(iss: string, key: string) {
    this.#iss = iss;
    if (key.includes('-----BEGIN')) {
      this.#key = createPrivateKey(key);
      this.#alg = this.#key.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
    } else {
      this.#key = createSecretKey(Buffer.from(key, 'utf8'));
      this.#alg = 'HS256';
    }
  }

  static async create(iss: string, key: string): Promise<GripSigner> {
    const signer = new GripSigner(iss, key);
    await signer.#refresh();
    return signer;
  }

  get algorithm(): string {
    return this.#alg;
  }

  token(): string {
    if (Date.now() - this.#signedAtMs > REFRESH_AFTER_MS) {
      // On failure the current token stays valid for most of an hour; the next call tries again.
      this.#refreshing ??= this.#refresh().catch(() => undefined);
    }
    return this.#token;
  }

  async #refresh(): Promise<void> {
    try {
      const now = Math.floor(Date.now() / 1000);
      this.#token = await new SignJWT({})
        .setProtectedHeader({ alg: this.#alg, typ: 'JWT' })
        .setIssuer(this.#iss)
        .setExpirationTime(now + TOKEN_LIFETIME_SEC)
        .sign(this.#key);
      this.#signedAtMs = Date.now();
    } finally {
      this.#refreshing = null;
    }
  }
}
