/**
 * IdP access tokens presented as `Authorization: Bearer` (the seed's "Token Validation Flow").
 * JWTs: the provider is chosen by the exact `iss`, and only that provider's JWKS can verify it
 * (so a token from provider A never validates as B's); `aud` must be MIMIR_OAUTH_AUDIENCE (or
 * the provider's `audience`), Cognito's `client_id` where `aud` is absent. Unknown `kid`s refetch
 * the JWKS at most once per cooldown (jose `cooldownDuration`). Opaque tokens go only to
 * providers configured for them, introspection (RFC 7662) before Google's tokeninfo; the first
 * provider that recognises the token decides — its `iss` and `aud`/`client_id` (tokeninfo:
 * `aud`/`azp`) must be ours, and the token is sent nowhere else. A userinfo answer alone never
 * accepts a token: userinfo serves a token of any client of the IdP (issue 15). Results are
 * cached until expiry. A multi-tenant Azure provider matches `iss` by its `{tenantid}` template.
 */
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import * as client from 'openid-client';
import type { IdpTokenVerifier } from '../authn/authenticate.ts';
import { copyPrincipal, type Principal } from '../authn/principal.ts';
import { LruCache, type CacheLookups } from '../cache/lru.ts';
import { tokenKey } from '../cache/verified-tokens.ts';
import { hashSecret } from '../crypto/index.ts';
import { OAuthError } from '../errors.ts';
import { acceptedIssuers, checkProviderRules, issuerMatches, mapClaims } from './claims.ts';
import { describe, type ProviderDirectory } from './discovery.ts';
import { isLoopback, type ProviderSettings } from './providers.ts';

/** Asymmetric only: a shared-secret (HS*) or `none` token is never an IdP token. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const OPAQUE_CACHE_MAX = 10_000;
const OPAQUE_NEGATIVE_SECONDS = 30;
const OPAQUE_USERINFO_SECONDS = 300;
/** Google's documented tokeninfo endpoint, for providers whose issuer is Google's own. */
export const GOOGLE_TOKENINFO = 'https://oauth2.googleapis.com/tokeninfo';
const GOOGLE_ISSUER = 'https://accounts.google.com';

interface CachedOpaque {
  principal: Principal | null;
  until: number;
}

/** An introspection answered "active" but the token is not for us: stop asking anyone else. */
const REFUSED = Symbol('refused');

export interface IdpBearerOptions {
  now?: () => number;
  /** Called once per JWKS download, with its outcome (the jwks-fetches metric). */
  onJwksFetch?: (result: 'success' | 'failure') => void;
  /** Verified JWTs kept (default 10,000; 0 = verify every time). */
  cacheSize?: number;
}

/** How stale the key ids that cached IdP verifications are checked against may be (see #keyIds). */
const KEY_IDS_MAX_AGE_MS = 1000;
/** Not longer than jose's default JWKS cacheMaxAge (10 min): see verifyJwt. */
const VERIFIED_MAX_AGE_MS = 5 * 60_000;

export class IdpBearerVerifier implements IdpTokenVerifier {
  readonly #providers: ProviderDirectory;
  readonly #now: () => number;
  readonly #jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  readonly #opaque = new Map<string, CachedOpaque>();
  readonly #verified: LruCache<{ principal: Principal; providerId: string; kid: string }>;
  readonly #onJwksFetch: (result: 'success' | 'failure') => void;
  readonly #kids = new Map<string, { at: number; kids: ReadonlySet<string> }>();

  constructor(providers: ProviderDirectory, options: IdpBearerOptions = {}) {
    this.#providers = providers;
    this.#now = options.now ?? Date.now;
    this.#onJwksFetch = options.onJwksFetch ?? (() => {});
    this.#verified = new LruCache(options.cacheSize ?? 10_000, this.#now);
  }

  /** Lookups of verified IdP JWTs so far that hit and missed. */
  get lookups(): CacheLookups {
    return this.#verified.lookups;
  }

  knowsIssuer(iss: string): boolean {
    return this.#providers.all.some((p) => issuerMatches(p, iss));
  }

  /**
   * Issue 7: a token verified before skips the signature check (keyed by its SHA-256, never the
   * token itself). Every check is a function of the token's claims except time and the key:
   * the entry ends at `exp` (no clock tolerance) or after VERIFIED_MAX_AGE_MS, and is used only
   * while its key is still in the provider's JWKS as jose last fetched it. Callers get a copy.
   */
  peekJwt(key: string): Principal | undefined {
    const hit = this.#verified.get(key);
    if (hit && this.#keyIds(hit.providerId)?.has(hit.kid)) return copyPrincipal(hit.principal);
    return undefined;
  }

  /**
   * The `kid`s of a provider's JWKS as jose last fetched it, read again at most every
   * KEY_IDS_MAX_AGE_MS: jose's `jwks()` hands out a structuredClone of the whole set on every
   * call, which cost more than the rest of a cache hit.
   */
  #keyIds(providerId: string): ReadonlySet<string> | undefined {
    const now = this.#now();
    const known = this.#kids.get(providerId);
    if (known && now - known.at < KEY_IDS_MAX_AGE_MS) return known.kids;
    const jwks = this.#jwks.get(providerId)?.jwks();
    if (!jwks) return undefined;
    const kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
    this.#kids.set(providerId, { at: now, kids });
    return kids;
  }

  async verifyJwt(token: string, iss: string): Promise<Principal> {
    const key = tokenKey(token);
    const hit = this.peekJwt(key);
    if (hit) return hit;
    const candidates = this.#providers.all.filter((p) => issuerMatches(p, iss));
    let last: OAuthError | undefined;
    for (const p of candidates) {
      try {
        const principal = await this.#verifyWith(p, token, iss);
        const kid = decodeProtectedHeader(token).kid;
        if (principal.expires_at !== undefined && kid !== undefined) {
          this.#verified.set(key, { principal: copyPrincipal(principal), providerId: p.id, kid }, Math.min(principal.expires_at * 1000, this.#now() + VERIFIED_MAX_AGE_MS));
        }
        return principal;
      } catch (e) {
        last = e instanceof OAuthError ? e : new OAuthError('invalid_token', 'The access token is invalid.');
      }
    }
    throw challenged(last ?? new OAuthError('invalid_token', 'The access token was issued by an unknown issuer.'));
  }

  /**
   * An opaque token's cached answer without I/O: its Principal, null (refused before), or
   * undefined (never asked, or expired from the cache). Only tokens that went to an IdP are ever
   * cached, so a hit is never a hub credential.
   */
  peekOpaque(token: string): Principal | null | undefined {
    const hit = this.#opaque.get(hashSecret(token));
    if (!hit || hit.until <= Math.floor(this.#now() / 1000)) return undefined;
    return hit.principal ? copyPrincipal(hit.principal) : null;
  }

  async verifyOpaque(token: string): Promise<Principal | null> {
    const key = hashSecret(token);
    const now = Math.floor(this.#now() / 1000);
    const hit = this.#opaque.get(key);
    if (hit && hit.until > now) return hit.principal ? copyPrincipal(hit.principal) : null;
    let result: CachedOpaque = { principal: null, until: now + OPAQUE_NEGATIVE_SECONDS };
    // Introspection first: it is authenticated and tells whose token it is, so a token it
    // recognises never travels on to another provider's tokeninfo or userinfo endpoint.
    const order = (x: ProviderSettings) => (x.opaqueTokens === 'introspection' ? 0 : 1);
    const askable = this.#providers.all.filter((x) => x.opaqueTokens !== 'off').sort((a, b) => order(a) - order(b));
    for (const p of askable) {
      const found = await this.#opaqueWith(p, token, now).catch((e: unknown) => {
        if (e instanceof OAuthError && e.status === 403) throw challenged(e);
        return null;
      });
      if (found === REFUSED) break;
      if (found) { result = found; break; }
    }
    if (this.#opaque.size >= OPAQUE_CACHE_MAX) this.#opaque.delete(this.#opaque.keys().next().value!);
    this.#opaque.set(key, result);
    return result.principal ? { ...result.principal } : null;
  }

  async #verifyWith(p: ProviderSettings, token: string, iss: string): Promise<Principal> {
    const jwks = await this.#keySet(p);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        // Multi-tenant: `iss` matched the template; checkProviderRules ties it to the token's tid.
        issuer: p.issuerTemplate ? iss : acceptedIssuers(p),
        algorithms: ALGORITHMS,
        ...(p.kind === 'cognito' ? {} : { audience: this.#audience(p) }),
        requiredClaims: ['exp', 'sub'],
        clockTolerance: 5,
        currentDate: new Date(this.#now()),
      }));
    } catch (e) {
      if (e instanceof errors.JWTExpired) throw new OAuthError('token_expired', 'The access token expired.', { challenge: { error: 'invalid_token' } });
      if (e instanceof errors.JWKSTimeout || (e instanceof TypeError && /fetch failed/.test(e.message))) {
        throw new OAuthError('temporarily_unavailable', `The keys of ${p.name} cannot be fetched right now; try again shortly.`, { detail: describe(e) });
      }
      throw new OAuthError('invalid_token', 'The access token is invalid.', { detail: `${p.id}: ${(e as { code?: string }).code ?? describe(e)}` });
    }
    if (p.kind === 'cognito') {
      // Cognito access tokens carry the app client in client_id, not aud.
      const aud = payload.aud ?? payload.client_id;
      const want = this.#audience(p);
      if (!(Array.isArray(aud) ? aud.includes(want) : aud === want)) throw new OAuthError('invalid_token', 'The access token is for another client.');
    }
    checkProviderRules(p, payload, 'access');
    return mapClaims(p, payload, 'oauth').principal;
  }

  #audience(p: ProviderSettings): string {
    const aud = p.kind === 'cognito' ? p.audience ?? p.clientId : p.audience;
    // Fail closed: without a configured audience no IdP access token is for us.
    if (!aud) throw new OAuthError('invalid_token', `Access tokens of ${p.name} are not accepted: no audience (MIMIR_OAUTH_AUDIENCE) is configured.`);
    return aud;
  }

  async #keySet(p: ProviderSettings) {
    let set = this.#jwks.get(p.id);
    if (!set) {
      const jwksUri = p.endpoints.jwks ?? (await this.#providers.configuration(p).catch((e: unknown) => {
        throw new OAuthError('temporarily_unavailable', `${p.name} cannot be reached to verify the token; try again shortly.`, { detail: describe(e) });
      })).serverMetadata().jwks_uri;
      if (!jwksUri) throw new OAuthError('invalid_token', `${p.name} publishes no JWKS.`);
      const counted: typeof fetch = async (url, init) => {
        try {
          const res = await fetch(url, init);
          this.#onJwksFetch(res.ok ? 'success' : 'failure');
          return res;
        } catch (e) {
          this.#onJwksFetch('failure');
          throw e;
        }
      };
      set = createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: p.jwksCooldownSeconds * 1000, timeoutDuration: 5000, [customFetch]: counted });
      this.#jwks.set(p.id, set);
    }
    return set;
  }

  async #opaqueWith(p: ProviderSettings, token: string, now: number): Promise<CachedOpaque | null | typeof REFUSED> {
    const config = await this.#providers.configuration(p);
    let claims: Record<string, unknown>;
    let until: number;
    if (p.opaqueTokens === 'introspection') {
      if (!config.serverMetadata().introspection_endpoint) return null;
      const r = await client.tokenIntrospection(config, token);
      if (!r.active) return null;
      // RFC 7662 §2.2: the provider recognised the token. From here its answer decides.
      if (typeof r.iss === 'string' && !issuerMatches(p, r.iss)) return REFUSED; // another issuer's token (or a misrouted endpoint)
      if (typeof r.exp !== 'number' || r.exp <= now) return REFUSED;
      if (!meantForUs(p, r.aud, r.client_id)) return REFUSED;
      claims = r as Record<string, unknown>;
      until = r.exp;
    } else {
      if (p.kind !== 'google') return null; // refused at start-up too (providers.ts): userinfo names no client
      const endpoint = tokeninfoEndpoint(p, config.serverMetadata());
      if (!endpoint) return null; // fail closed: nothing can tell whose token this is (warned at start)
      const info = await this.#tokeninfo(endpoint, token, config.timeout ?? 30);
      if (!info) return null;
      const checked = checkTokeninfo(p, info, now);
      if (!checked) return REFUSED;
      // The token is ours: the profile (name, hd, a verified email) comes from userinfo, which
      // must describe the same subject (OpenID Connect Core §5.3.2).
      const profile = await client.fetchUserInfo(config, token, checked.sub) as Record<string, unknown>;
      // Only the email from tokeninfo (its `scope` lists Google API URLs, which are no Mimir scopes).
      claims = { ...pick(info, ['email', 'email_verified']), ...profile, sub: checked.sub };
      until = Math.min(checked.exp, now + OPAQUE_USERINFO_SECONDS);
    }
    if (typeof claims.sub !== 'string') return null;
    checkProviderRules(p, claims, 'id');
    const { principal } = mapClaims(p, claims, 'oauth');
    principal.expires_at = until;
    return { principal, until };
  }

  /**
   * Google's tokeninfo: the token in a form body (POST, so it stays out of URLs and access logs).
   * An answer other than 200 with a JSON object (Google: 400 `invalid_token`) means the endpoint
   * does not know the token; a network failure throws.
   */
  async #tokeninfo(endpoint: string, token: string, timeoutSeconds: number): Promise<Record<string, unknown> | null> {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ access_token: token }),
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutSeconds * 1000),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      return null;
    }
    const body: unknown = await res.json().catch(() => null);
    return body && typeof body === 'object' && !Array.isArray(body) ? body as Record<string, unknown> : null;
  }
}

/**
 * Where a Google provider's opaque access tokens are checked: the configured endpoint
 * (`endpoints.tokeninfo`, MIMIR_OAUTH_TOKENINFO_ENDPOINT), Google's own for Google's issuer, or
 * a `tokeninfo_endpoint` the provider's discovery document publishes. None: opaque tokens are
 * refused. A discovered URL must be https (http only on loopback), as configured ones are.
 */
export function tokeninfoEndpoint(p: ProviderSettings, metadata?: Readonly<Record<string, unknown>>): string | undefined {
  if (p.kind !== 'google') return undefined;
  if (p.endpoints.tokeninfo) return p.endpoints.tokeninfo;
  if (p.issuer === GOOGLE_ISSUER) return GOOGLE_TOKENINFO;
  const published = metadata?.tokeninfo_endpoint;
  if (typeof published !== 'string') return undefined;
  try {
    const u = new URL(published);
    return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopback(published)) ? published : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A tokeninfo answer accepts the token only when it is active (not expired), was issued to this
 * hub (`aud` or `azp` is our client id or one of the provider's `audiences`; Google: "verify that
 * the aud field matches your client ID") and names a subject. Google sends `exp` and
 * `expires_in` as strings. Returns what is needed from it, or null: the token is not for us.
 */
function checkTokeninfo(p: ProviderSettings, info: Record<string, unknown>, now: number): { sub: string; exp: number } | null {
  const expiresIn = seconds(info.expires_in);
  const exp = seconds(info.exp) ?? (expiresIn === undefined ? undefined : now + expiresIn);
  if (exp === undefined || exp <= now || (expiresIn !== undefined && expiresIn <= 0)) return null;
  const ours = [p.clientId, ...p.audiences].filter((x) => x !== '');
  const parties = [info.aud, info.azp].filter((x): x is string => typeof x === 'string');
  if (!parties.some((x) => ours.includes(x))) return null;
  if (typeof info.sub !== 'string' || info.sub === '') return null;
  return { sub: info.sub, exp };
}

function pick(from: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => Object.hasOwn(from, k)).map((k) => [k, from[k]]));
}

/** A whole number of seconds, as a JSON number or a numeric string. */
function seconds(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,12}$/.test(v) ? Number(v) : Number.NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * An opaque token is for us when its `aud` names our audience, our client or one of the
 * provider's `audiences`, or, without `aud`, when it was issued to one of them (`client_id`).
 * Neither stated: refused (fail closed).
 */
function meantForUs(p: ProviderSettings, aud: unknown, clientId: unknown): boolean {
  const ours = [p.audience, p.clientId, ...p.audiences].filter((x): x is string => typeof x === 'string' && x !== '');
  if (aud !== undefined) return (Array.isArray(aud) ? aud : [aud]).some((a) => ours.includes(a as string));
  return typeof clientId === 'string' && ours.includes(clientId);
}

function challenged(e: OAuthError): OAuthError {
  const error = e.error === 'token_expired' ? 'invalid_token' : e.error;
  const options: ConstructorParameters<typeof OAuthError>[2] = {
    status: e.status === 403 ? 403 : e.status >= 500 ? e.status : 401,
    challenge: { realm: 'mimir', error, error_description: e.description, scheme: 'Bearer' },
  };
  if (e.detail !== undefined) options.detail = e.detail;
  return new OAuthError(e.error, e.description, options);
}
