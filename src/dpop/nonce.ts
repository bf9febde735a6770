/**
 * RFC 9449 §8, §9: server-provided DPoP nonces, stateless. A nonce is the HMAC of a time window
 * under a key every hub derives from the material that seals its signing keys, so a nonce issued by
 * one hub is accepted by every hub that shares MIMIR_JWT_SECRET, with nothing stored. A proof
 * carrying the nonce of the current or the previous window is accepted: a nonce stays usable for
 * one to two windows, and a client that got one just before a window turned is not refused.
 */
import { createHmac } from 'node:crypto';
import { deriveKey, digestEqual } from '../crypto/index.ts';

/** Length of one nonce window. */
export const DPOP_NONCE_WINDOW_SECONDS = 300;

/** How a proof's nonce stands: of this window, of the one before (accepted; a fresh one is due), or neither. */
export type NonceStanding = 'current' | 'previous' | 'invalid';

export class DpopNonces {
  readonly #key: Buffer;
  readonly #now: () => number;
  readonly #window: number;

  /**
   * `material`: the hubs' shared secret material (src/jwt/keys.ts `signingSealKey`); the nonce key
   * is derived from it for this purpose only.
   * @example new DpopNonces(signingSealKey(config.jwt.secret, config.dataDir), { now: Date.now }).current()
   */
  constructor(material: Buffer, options: { now: () => number; windowSeconds?: number }) {
    this.#key = deriveKey(material, 'dpop-nonce');
    this.#now = options.now;
    this.#window = options.windowSeconds ?? DPOP_NONCE_WINDOW_SECONDS;
  }

  /** The nonce to hand out now (the `DPoP-Nonce` header). */
  current(): string {
    return this.#nonceOf(this.#windowIndex());
  }

  /** Checks a proof's `nonce` claim in constant time. */
  check(nonce: unknown): NonceStanding {
    // A nonce is 43 base64url characters; anything else is no nonce of ours (and is not hashed).
    if (typeof nonce !== 'string' || nonce.length !== 43) return 'invalid';
    const index = this.#windowIndex();
    if (digestEqual(nonce, this.#nonceOf(index))) return 'current';
    if (digestEqual(nonce, this.#nonceOf(index - 1))) return 'previous';
    return 'invalid';
  }

  #windowIndex(): number {
    return Math.floor(this.#now() / 1000 / this.#window);
  }

  #nonceOf(index: number): string {
    return createHmac('sha256', this.#key).update(`dpop-nonce:${this.#window}:${index}`).digest('base64url');
  }
}
