/**
 * How the upstream Mimir learns who calls (MIMIR_UPSTREAM_AUTH), as an `Authorization` value:
 * - `none`: nothing (identity goes in the X-User-* headers; every credential channel Mimir reads
 *   is removed by the header policy);
 * - `forward`: nothing either: the caller's own IdP token, when its audience is Mimir's, goes in
 *   MIMIR_TOKEN_FORWARDING_HEADER (the seed's token forwarding; src/proxy/routes.ts);
 * - `mimir-jwt`: a token the hub mints for a Mimir whose own security is on: HS256 with Mimir's
 *   MIMIR_JWT_SECRET, the claims Mimir reads (`sub`, `email`, `roles`, `iat`, `exp`), from the same
 *   upstream identity the X-User-* headers carry; five minutes long, cached per identity until
 *   a minute before it ends.
 */
import { SignJWT } from 'jose';
import type { UpstreamIdentity } from '../authz/identity.ts';
import { LruCache } from '../cache/lru.ts';
import type { Config } from '../config/index.ts';

export const MIMIR_JWT_LIFETIME_SECONDS = 300;
/** A cached token is not handed out in its last minute: the request may take a while upstream. */
const RENEW_BEFORE_SECONDS = 60;

export class UpstreamAuth {
  readonly mode: Config['upstreamAuth']['mode'];
  readonly #secret: Uint8Array | undefined;
  readonly #now: () => number;
  readonly #tokens: LruCache<string>;

  constructor(config: Pick<Config, 'upstreamAuth'>, options: { now?: () => number; cacheSize?: number } = {}) {
    this.mode = config.upstreamAuth.mode;
    this.#secret = config.upstreamAuth.jwtSecret === undefined ? undefined : new TextEncoder().encode(config.upstreamAuth.jwtSecret);
    this.#now = options.now ?? Date.now;
    this.#tokens = new LruCache(options.cacheSize ?? 10_000, this.#now);
  }

  /**
   * The `Authorization` value without I/O: a string, null when none goes upstream, or undefined
   * when a token must be minted first ({@link authorization}).
   */
  peek(identity: UpstreamIdentity): string | null | undefined {
    if (this.mode !== 'mimir-jwt') return null;
    const token = this.#tokens.get(keyOf(identity));
    return token === undefined ? undefined : `Bearer ${token}`;
  }

  /** The `Authorization` value toward the upstream, or null when none goes. */
  async authorization(identity: UpstreamIdentity): Promise<string | null> {
    const known = this.peek(identity);
    if (known !== undefined) return known;
    const iat = Math.floor(this.#now() / 1000);
    const exp = iat + MIMIR_JWT_LIFETIME_SECONDS;
    const token = await new SignJWT({ roles: identity.roles, ...(identity.email ? { email: identity.email } : {}) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(identity.id)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.#secret!);
    this.#tokens.set(keyOf(identity), token, (exp - RENEW_BEFORE_SECONDS) * 1000);
    return `Bearer ${token}`;
  }
}

function keyOf(identity: UpstreamIdentity): string {
  return JSON.stringify([identity.id, identity.email ?? null, identity.roles]);
}
