/**
 * Mimir JWTs that passed full verification, so a repeat request skips the signature check.
 * Keyed by SHA-256 of the whole token — never the raw token, which would sit in heap dumps — and
 * of the whole token rather than its signature part, so a token with a swapped payload can never
 * hit the entry of the genuine one. An entry lives until the token's `exp` (RFC 7519 §4.1.4),
 * without the verifier's clock tolerance, so the cache is never more lenient than verification.
 * Revocation and DPoP checks are not cached: the authenticator runs them on every request.
 */
import { hash } from 'node:crypto';
import type { VerifiedAccessToken } from '../jwt/access-token.ts';
import { LruCache, type CacheLookups } from './lru.ts';

export class VerifiedTokenCache {
  readonly #lru: LruCache<VerifiedAccessToken>;

  constructor(maxEntries: number, now: () => number = Date.now) {
    this.#lru = new LruCache(maxEntries, now);
  }

  get size(): number {
    return this.#lru.size;
  }

  get maxEntries(): number {
    return this.#lru.maxEntries;
  }

  /** Lookups so far that hit and missed. */
  get lookups(): CacheLookups {
    return { hits: this.#lru.hits, misses: this.#lru.misses };
  }

  get(token: string): VerifiedAccessToken | undefined {
    return this.getByKey(tokenKey(token));
  }

  /** By {@link tokenKey}, for a caller that hashed the token once for several caches. */
  getByKey(key: string): VerifiedAccessToken | undefined {
    if (this.#lru.maxEntries === 0) return undefined;
    return this.#lru.get(key);
  }

  /** Caches a verified token; the entry is frozen so no caller can alter what later requests see. */
  set(token: string, verified: VerifiedAccessToken): void {
    if (this.#lru.maxEntries === 0 || typeof verified.payload.exp !== 'number') return;
    this.#lru.set(tokenKey(token), deepFreeze(verified), verified.payload.exp * 1000);
  }

  /** Drops the entries of one `jti` (a revocation seen by this instance). */
  forgetJti(jti: string): void {
    this.#lru.deleteWhere((v) => v.payload.jti === jti);
  }

  clear(): void {
    this.#lru.clear();
  }
}

/** The cache key of a bearer token: its SHA-256 (one-shot hash(): about half the cost of createHash()). */
export function tokenKey(token: string): string {
  return hash('sha256', token, 'base64url');
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const value of Object.values(o)) deepFreeze(value);
  }
  return o;
}
