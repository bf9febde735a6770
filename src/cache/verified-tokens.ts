/**
 * Mimir JWTs that passed full verification, so a repeat request skips the signature check.
 * Keyed by SHA-256 of the whole token — never the raw token, which would sit in heap dumps — and
 * of the whole token rather than its signature part, so a token with a swapped payload can never
 * hit the entry of the genuine one. An entry lives until the token's `exp` (RFC 7519 §4.1.4),
 * without the verifier's clock tolerance, so the cache is never more lenient than verification.
 * Revocation and DPoP checks are not cached: the authenticator runs them on every request.
 */
import { hashSecret } from '../crypto/index.ts';
import type { VerifiedAccessToken } from '../jwt/access-token.ts';
import { Interner } from './intern.ts';
import { LruCache, type CacheLookups } from './lru.ts';

/** Claims that tokens hold alike (not `jti`, `sub`, `email`, …): cached once, see {@link Interner}. */
const SHARED_CLAIMS = ['iss', 'aud', 'scope', 'client_id', 'roles', 'groups', 'amr', 'acr', 'auth_method', 'provider', 'tenant', 'aid', 'azp'] as const;

/** The part of the KeyRing the cache asks: is this `kid` still one that verifies? */
export interface KeyIds {
  verificationKey(kid: string): unknown;
}

export class VerifiedTokenCache {
  readonly #lru: LruCache<VerifiedAccessToken>;
  /** What cached entries share; the authenticator's cached principals share it too. */
  readonly shared = new Interner();

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
    return this.#lru.lookups;
  }

  /** A cached verification, unless the key that signed the token has left the key ring since. */
  get(token: string, keys: KeyIds): VerifiedAccessToken | undefined {
    return this.getByKey(tokenKey(token), keys);
  }

  /** By {@link tokenKey}, for a caller that hashed the token once for several caches. */
  getByKey(key: string, keys: KeyIds): VerifiedAccessToken | undefined {
    if (this.#lru.maxEntries === 0) return undefined;
    const hit = this.#lru.get(key);
    const kid = hit?.header.kid;
    return kid !== undefined && keys.verificationKey(kid) ? hit : undefined;
  }

  /** Caches a verified token; the entry is frozen so no caller can alter what later requests see. */
  set(token: string, verified: VerifiedAccessToken): void {
    if (this.#lru.maxEntries === 0 || typeof verified.payload.exp !== 'number') return;
    if (!Object.isFrozen(verified)) this.#share(verified);
    this.#lru.set(tokenKey(token), deepFreeze(verified), verified.payload.exp * 1000);
  }

  /** In place (the verification is the caller's, just made): the values other tokens hold alike become shared ones. */
  #share(verified: VerifiedAccessToken): void {
    const payload = verified.payload as Record<string, unknown>;
    for (const name of SHARED_CLAIMS) {
      const value = payload[name];
      if (typeof value === 'string') payload[name] = this.shared.string(value);
      else if (Array.isArray(value)) payload[name] = this.shared.list(value);
    }
    verified.header = this.shared.record(verified.header);
  }

  /** Drops the entries of one `jti` (a revocation seen by this instance). */
  forgetJti(jti: string): void {
    this.#lru.deleteWhere((v) => v.payload.jti === jti);
  }

  clear(): void {
    this.#lru.clear();
  }
}

/** The cache key of a bearer token: its SHA-256, as every stored secret is hashed. */
export const tokenKey: (token: string) => string = hashSecret;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const value of Object.values(o)) deepFreeze(value);
  }
  return o;
}
