/**
 * The framework-neutral authenticator: request headers and cookies in, a Principal or an
 * OAuthError out. Which validator runs is decided by the credential's shape and, for JWTs,
 * by the `iss` of the (unverified) payload — never by trying every key.
 */
import { decodeJwt } from 'jose';
import { looksLikeApiKey, matchLegacyKey, type ApiKeys } from '../api-keys/index.ts';
import type { AuthMethod, Config } from '../config/index.ts';
import { hashSecret } from '../crypto/index.ts';
import { OAuthError } from '../errors.ts';
import { verifyAccessToken, type VerifiedAccessToken } from '../jwt/access-token.ts';
import type { KeyRing } from '../jwt/keys.ts';
import type { FreshnessCheck } from '../revocation/contact.ts';
import type { ServiceAccounts } from '../service-accounts/index.ts';
import type { Principal } from './principal.ts';
import type { ApiKeyRecord } from '../api-keys/index.ts';
import { tokenKey, type AuthCaches } from '../cache/index.ts';
import type { Interner } from '../cache/intern.ts';
import { copyPrincipal } from './principal.ts';
import type { ServiceAccountRecord } from '../service-accounts/index.ts';
import { accountsBehind, accountsStand } from './service-account-tokens.ts';

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Credentials longer than this are refused before any parsing. */
export const MAX_CREDENTIAL_BYTES = 8192;

export interface AuthInput {
  headers: Record<string, string | string[] | undefined>;
  cookies?: Record<string, string | undefined>;
  method?: string;
  /** Absolute URL of the request (DPoP `htu`). */
  url?: string;
  /** RFC 9449 §8.2: receives a fresh DPoP nonce to send with the response, when one is due. */
  dpopNonce?(nonce: string): void;
}

/** Validates tokens of upstream IdPs (the sign-in issue plugs in here). */
export interface IdpTokenVerifier {
  /** Whether this issuer belongs to a configured IdP. */
  knowsIssuer(iss: string): boolean;
  verifyJwt(token: string, iss: string): Promise<Principal>;
  /** A JWT this verifier accepted before and would accept now, by its {@link tokenKey}; no I/O. */
  peekJwt?(key: string): Principal | undefined;
  /** Opaque tokens (Google, Okta org AS): introspection or userinfo; null when no IdP can. */
  verifyOpaque(token: string): Promise<Principal | null>;
  /** An opaque token's cached answer without I/O (undefined: not cached); a cached token went to an IdP, so it is no hub credential. */
  peekOpaque?(token: string): Principal | null | undefined;
}

/** Resolves a session cookie to its Principal (the sign-in issue plugs in here). */
export interface SessionResolver {
  readonly cookieName: string;
  resolve(cookieValue: string): Promise<Principal | null>;
  /** The Principal of a session known live without I/O, else undefined (then `resolve`). */
  peek?(cookieValue: string): Principal | undefined;
  /** Ends a session by id, on every instance (an administrator's revocation). */
  end?(sid: string): Promise<void>;
}

/** Extra checks on Mimir JWTs: revocation list, DPoP binding (the lifecycle issue plugs in here). */
export interface AccessTokenPolicy {
  /** Throws (or rejects) to refuse; may answer synchronously when it needs no I/O. */
  check(verified: VerifiedAccessToken, input: AuthInput, token: string): Promise<void> | undefined;
  /**
   * RFC 9449 §7.1 for an identity provider's token: bound (`cnf`), only as `DPoP` with a proof by
   * its key; unbound, never under the DPoP scheme. Throws or rejects to refuse.
   */
  binding(cnf: Principal['cnf'], input: AuthInput, token: string): Promise<void>;
}

export interface AuthenticatorDeps {
  config: Config;
  keys: KeyRing;
  apiKeys: ApiKeys;
  serviceAccounts: ServiceAccounts;
  idp?: IdpTokenVerifier;
  sessions?: SessionResolver;
  policy?: AccessTokenPolicy;
  /** Hot-path caches (src/cache); absent: every request verifies its token and reads storage. */
  caches?: AuthCaches;
  /**
   * The hub's own refresh tokens, looked up by hash: an opaque bearer value that is one is
   * refused here and never sent to an IdP (issue 15, finding 6).
   */
  refreshTokens?: { inspect(token: string): Promise<unknown> };
  /** Audiences a Mimir JWT may carry (default: MIMIR_JWT_AUDIENCE). */
  audiences?: string[];
  /**
   * Whether what this hub knows of revocations may be trusted now (src/revocation/contact.ts):
   * asked once for every credential presented, before any cache or validator answers.
   */
  contact?: FreshnessCheck;
  now?: () => number;
}

export class Authenticator {
  readonly #d: Readonly<AuthenticatorDeps>;
  readonly #audiences: string[];
  /** Audiences that restrict a token to nothing: the hub's general audience and its origin root. */
  readonly #unrestricted: ReadonlySet<string>;
  /** Principals of cached verifications: held only as long as the cache holds the verification. */
  readonly #principals = new WeakMap<VerifiedAccessToken, Principal>();

  constructor(deps: AuthenticatorDeps) {
    this.#d = deps;
    this.#audiences = deps.audiences ?? [deps.config.jwt.audience];
    this.#unrestricted = new Set([deps.config.jwt.audience, deps.config.publicUrl.replace(/\/+$/, ''), `${deps.config.publicUrl.replace(/\/+$/, '')}/`]);
  }


  /** The Principal for this request, or throws OAuthError (401 family, or 400 for malformed input). */
  async authenticate(input: AuthInput): Promise<Principal> {
    return this.resolve(input);
  }

  /**
   * {@link authenticate} without a promise when every answer it needs is cached (the hot path of
   * issue 7): a Principal now, or a promise of one. Throws or rejects with the same OAuthErrors.
   */
  resolve(input: AuthInput): Principal | Promise<Principal> {
    const methods = this.#d.config.authMethods;
    const apiKey = header(input, 'x-api-key');
    const authorization = header(input, 'authorization');
    const sessions = this.#d.sessions;
    const cookie = sessions ? input.cookies?.[sessions.cookieName] : undefined;
    // Every credential's answer rests on revocation state (the revocation list, caches fed by
    // pub/sub, the key ring): past MIMIR_REVOCATION_MAX_STALENESS without contact, none is given (503).
    if (apiKey !== undefined || authorization !== undefined || cookie) this.#d.contact?.assertFresh();

    if (apiKey !== undefined) {
      if (!methods.has('api-key')) throw this.#challenge('invalid_token', 'API keys are not accepted here.');
      return this.#apiKey(apiKey);
    }
    if (authorization !== undefined) return this.#authorization(authorization, input);

    if (sessions && cookie) {
      if (!methods.has('oauth')) throw this.#challenge('invalid_token', 'The session has ended; sign in again.');
      const known = sessions.peek?.(cookie);
      if (known) return known;
      return sessions.resolve(cookie).then((principal) => {
        if (principal) return principal;
        throw this.#challenge('invalid_token', 'The session has ended; sign in again.');
      });
    }
    throw this.#challenge(undefined, 'No credentials were sent.');
  }

  /** RFC 6750 §3 challenge for the configured default method. */
  challengeFor(error: string | undefined, description?: string): Record<string, string> {
    const params: Record<string, string> = { realm: 'mimir' };
    if (error) params.error = error;
    if (error && description) params.error_description = description;
    return params;
  }

  get defaultScheme(): string {
    return schemeFor(this.#d.config.defaultAuthMethod);
  }

  #authorization(value: string, input: AuthInput): Principal | Promise<Principal> {
    if (Buffer.byteLength(value) > MAX_CREDENTIAL_BYTES) {
      throw new OAuthError('invalid_request', `The Authorization header is longer than ${MAX_CREDENTIAL_BYTES} bytes.`, { challenge: this.challengeFor('invalid_request') });
    }
    const space = value.indexOf(' ');
    const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase();
    const token = space === -1 ? '' : value.slice(space + 1).trim();
    if (scheme !== 'bearer' && scheme !== 'dpop') {
      throw this.#challenge(undefined, 'Only the Bearer and DPoP authorization schemes are accepted.');
    }
    const methods = this.#d.config.authMethods;
    // A token verified before is the very string that passed every shape check below, so a hit
    // skips them along with decoding and the signature; #accept still runs every other check.
    // One hash of the token serves both caches (Mimir JWTs, IdP JWTs).
    const key = token && this.#d.caches ? tokenKey(token) : undefined;
    if (key !== undefined) {
      const cached = methods.has('jwt') ? this.#d.caches?.tokens.getByKey(key, this.#d.keys) : undefined;
      if (cached) return this.#accept(cached, input, scheme, token);
      const idp = methods.has('oauth') ? this.#d.idp?.peekJwt?.(key) : undefined;
      if (idp) return this.#idpBound(idp, input, scheme, token);
    }
    // RFC 6750 §3.1: a malformed request is invalid_request (400).
    if (!token || !B64TOKEN.test(token)) {
      throw new OAuthError('invalid_request', 'The Authorization header is not of the form "Bearer <token>".', { challenge: this.challengeFor('invalid_request') });
    }
    // Some clients (PCTX "bearer" auth) can only send bearer tokens: accept an API key there too.
    if (looksLikeApiKey(token)) {
      if (!methods.has('api-key')) throw this.#challenge('invalid_token', 'API keys are not accepted here.');
      return this.#apiKey(token);
    }
    if (token.split('.').length === 3) {
      let iss: unknown;
      try {
        iss = decodeJwt(token).iss;
      } catch {
        throw this.#challenge('invalid_token', 'The access token is not a well-formed JWT.');
      }
      if (typeof iss !== 'string') throw this.#challenge('invalid_token', 'The access token has no issuer.');
      if (iss === this.#d.config.jwt.issuer) {
        if (!methods.has('jwt')) throw this.#challenge('invalid_token', 'Mimir JWTs are not accepted here.');
        return this.#mimirJwt(token, input, scheme);
      }
      if (this.#d.idp?.knowsIssuer(iss)) {
        if (!methods.has('oauth')) throw this.#challenge('invalid_token', 'Identity provider tokens are not accepted here.');
        return this.#d.idp.verifyJwt(token, iss).then((p) => this.#idpBound(p, input, scheme, token));
      }
      throw this.#challenge('invalid_token', 'The access token was issued by an unknown issuer.');
    }
    return this.#opaque(token).then((p) => this.#idpBound(p, input, scheme, token));
  }

  /**
   * An identity provider's token holds to its key as the hub's own do (RFC 9449 §7.1): a bound one
   * only under the DPoP scheme with a proof by that key, an unbound one never under DPoP. The common
   * case (unbound, Bearer) answers at once.
   */
  #idpBound(principal: Principal, input: AuthInput, scheme: string, token: string): Principal | Promise<Principal> {
    if (principal.cnf === undefined && scheme !== 'dpop') return principal;
    const policy = this.#d.policy;
    if (!policy) throw this.#challenge('invalid_token', principal.cnf ? 'This token is bound to a DPoP key.' : 'This access token is not DPoP-bound; send it as a Bearer token.');
    return policy.binding(principal.cnf, input, token).then(() => principal);
  }

  /**
   * An opaque bearer value. The hub's own credentials are recognised first, so that none of them
   * ever leaves the hub (issue 15): a legacy API key, then a hub refresh token (RFC 6749 §1.5:
   * never a bearer credential at a resource, so refused). Only what remains may be an IdP's.
   */
  async #opaque(token: string): Promise<Principal> {
    const methods = this.#d.config.authMethods;
    const legacy = this.#legacy(token);
    if (legacy) {
      if (!methods.has('api-key')) throw this.#challenge('invalid_token', 'API keys are not accepted here.');
      return legacy;
    }
    if (!this.#d.idp || !methods.has('oauth')) throw this.#challenge('invalid_token', 'The access token is invalid.');
    const cached = this.#d.idp.peekOpaque?.(token);
    if (cached) return cached;
    if (cached === null) throw this.#challenge('invalid_token', 'The access token is invalid.');
    // Never asked before: it may be a hub refresh token, which must not leave the hub.
    if (this.#d.refreshTokens && (await this.#d.refreshTokens.inspect(token)) !== null) {
      throw this.#challenge('invalid_token', 'A refresh token is not an access token.');
    }
    const principal = await this.#d.idp.verifyOpaque(token);
    if (principal) return principal;
    throw this.#challenge('invalid_token', 'The access token is invalid.');
  }

  async #mimirJwt(token: string, input: AuthInput, scheme: string): Promise<Principal> {
    const verified = await verifyAccessToken(token, this.#d.keys, {
      issuer: this.#d.config.jwt.issuer,
      audiences: this.#audiences,
      ...(this.#d.now ? { now: this.#d.now } : {}),
    }).catch((e: unknown) => {
      if (e instanceof OAuthError) throw withChallenge(e, this.challengeFor(e.error === 'token_expired' ? 'invalid_token' : e.error, e.description));
      throw e;
    });
    this.#d.caches?.tokens.set(token, verified);
    return this.#accept(verified, input, scheme, token);
  }

  /** What a verified (or cached) Mimir JWT must still pass on every request: revocation, DPoP, its service account. */
  #accept(verified: VerifiedAccessToken, input: AuthInput, scheme: string, token: string): Principal | Promise<Principal> {
    const p = verified.payload;
    // RFC 9449 §7.1: a DPoP-bound token must not be usable as a plain bearer token.
    if (p.cnf?.jkt && scheme !== 'dpop' && !this.#d.policy) {
      throw this.#challenge('invalid_token', 'This token is bound to a DPoP key.');
    }
    const pending = this.#d.policy?.check(verified, input, token);
    if (pending) return pending.then(() => this.#ofAccount(verified));
    return this.#ofAccount(verified);
  }

  /**
   * A token a service account stands behind (its own, or one it obtained for a user) holds only
   * while the accounts still do (src/authn/service-account-tokens.ts, the rule introspection
   * applies too). A service account's own token holds the account's roles as they are now, not
   * as they were.
   */
  #ofAccount(verified: VerifiedAccessToken): Principal | Promise<Principal> {
    const { own, ids } = accountsBehind(verified.payload);
    if (ids.length === 0) return this.#principalOf(verified);
    const found: Array<ServiceAccountRecord | null> = [];
    for (const id of ids) {
      const cached = this.#d.caches?.serviceAccounts.peek(id);
      if (cached === undefined) return Promise.all(ids.map((a) => this.#serviceAccount(a))).then((all) => this.#withAccounts(all, verified, own));
      found.push(cached);
    }
    return this.#withAccounts(found, verified, own);
  }

  #withAccounts(accounts: Array<ServiceAccountRecord | null>, verified: VerifiedAccessToken, own: boolean): Principal {
    if (!accountsStand(accounts, verified.payload, own)) throw this.#challenge('invalid_token', 'The service account is disabled.');
    const principal = this.#principalOf(verified);
    if (own) {
      void this.#d.serviceAccounts.touch(accounts[0]!);
      principal.roles = [...accounts[0]!.roles];
    }
    return principal;
  }

  /** The token's Principal, built once per cached (frozen) verification; each caller gets its own copy. */
  #principalOf(verified: VerifiedAccessToken): Principal {
    let principal = this.#principals.get(verified);
    if (principal === undefined) {
      const cached = Object.isFrozen(verified);
      principal = principalOfToken(verified, this.#unrestricted, cached ? this.#d.caches?.tokens.shared : undefined);
      if (cached) this.#principals.set(verified, principal);
    }
    return copyPrincipal(principal);
  }

  #apiKey(value: string): Principal | Promise<Principal> {
    if (Buffer.byteLength(value) > MAX_CREDENTIAL_BYTES) {
      throw new OAuthError('invalid_request', `The X-API-Key header is longer than ${MAX_CREDENTIAL_BYTES} bytes.`);
    }
    const presented = value.trim();
    const caches = this.#d.caches;
    const key = caches ? hashSecret(presented) : '';
    const hit = caches?.apiKeys.peek(key);
    if (hit !== undefined) return this.#withApiKey(this.#usable(hit), presented);
    const load = () => this.#d.apiKeys.verify(presented);
    return (caches ? caches.apiKeys.fill(key, load) : load()).then((record) => this.#withApiKey(record && this.#usable(record), presented));
  }

  #withApiKey(record: ApiKeyRecord | null, presented: string): Principal {
    if (record) {
      void this.#d.apiKeys.touch(record);
      const principal: Principal = {
        sub: `api-key:${record.id}`, name: record.name, roles: [...record.roles], groups: [], scopes: [...(record.scopes ?? [])],
        auth_method: 'api-key', client_id: record.id, credential_id: record.id,
      };
      // A personal key speaks for the user who made it (src/authz/identity.ts: their X-User-ID).
      const owner = record.owner;
      if (owner) {
        principal.sub = owner.sub;
        if (owner.provider) principal.provider = owner.provider;
        if (owner.email) principal.email = owner.email;
        if (owner.name) principal.name = owner.name;
      }
      if (record.expiresAt !== undefined) principal.expires_at = record.expiresAt;
      return principal;
    }
    const legacy = this.#legacy(presented);
    if (legacy) return legacy;
    throw this.#challenge('invalid_token', 'The API key is invalid, expired or revoked.', 'api-key');
  }

  /** A cached record is re-checked: revoked or expired since it was read is refused. */
  #usable(record: ApiKeyRecord): ApiKeyRecord | null {
    const nowSeconds = Math.floor((this.#d.now ?? Date.now)() / 1000);
    if (record.revokedAt !== undefined || (record.expiresAt !== undefined && record.expiresAt <= nowSeconds)) return null;
    return record;
  }

  /** For a caller whose cache `peek` just missed: loads, and caches the answer. */
  #serviceAccount(clientId: string): Promise<ServiceAccountRecord | null> {
    const load = () => this.#d.serviceAccounts.get(clientId);
    return this.#d.caches ? this.#d.caches.serviceAccounts.fill(clientId, load) : load();
  }

  #legacy(value: string): Principal | null {
    const hit = matchLegacyKey(value, this.#d.config.legacyApiKeys);
    if (!hit) return null;
    // Identified by a hash prefix, never by the key itself.
    const id = `legacy-${hashSecret(value).slice(0, 12)}`;
    return { sub: `api-key:${id}`, name: 'legacy API key', roles: [...hit.roles], groups: [], scopes: [], auth_method: 'api-key', client_id: id, credential_id: id };
  }

  #challenge(error: 'invalid_token' | undefined, description: string, method?: AuthMethod): OAuthError {
    const params = this.challengeFor(error, description);
    const scheme = schemeFor(method ?? this.#d.config.defaultAuthMethod);
    return new OAuthError(error ?? 'invalid_token', description, { status: 401, challenge: { ...params, scheme } });
  }
}

/**
 * `shared`: for a principal kept beside a cached verification, its lists are the shared frozen
 * copies (callers get copies of it, {@link copyPrincipal}, and never change it).
 */
function principalOfToken(verified: VerifiedAccessToken, unrestricted: ReadonlySet<string>, shared?: Interner): Principal {
  const p = verified.payload;
  const list = (values: string[]): string[] => (shared ? shared.list(values) as string[] : values);
  const principal: Principal = {
    sub: p.sub,
    // Strings only: String() throws on some JSON objects ({"toString": 1}), a 500 (issue 15).
    roles: list(Array.isArray(p.roles) ? p.roles.filter((r): r is string => typeof r === 'string') : []),
    groups: list(Array.isArray(p.groups) ? p.groups.filter((g): g is string => typeof g === 'string') : []),
    scopes: list(typeof p.scope === 'string' ? p.scope.split(' ').filter(Boolean) : []),
    auth_method: 'jwt',
    expires_at: p.exp,
    credential_id: p.jti,
  };
  if (typeof p.client_id === 'string') principal.client_id = p.client_id;
  if (typeof p.email === 'string') principal.email = p.email;
  if (typeof p.name === 'string') principal.name = p.name;
  if (typeof p.provider === 'string') principal.provider = p.provider;
  if (typeof p.tenant === 'string') principal.tenant = p.tenant;
  if (typeof p.sid === 'string') principal.sid = p.sid;
  if (typeof p.fid === 'string') principal.fid = p.fid;
  if (p.act && typeof p.act === 'object' && typeof (p.act as { sub?: unknown }).sub === 'string') principal.act = p.act as Principal['act'] & object;
  if (p.cnf?.jkt) principal.cnf = { jkt: p.cnf.jkt };
  // OIDC Core §2, as the authorization code grant carried them over from the sign-in: step-up (RFC 9470) reads them.
  if (typeof p.auth_time === 'number' && Number.isFinite(p.auth_time)) principal.auth_time = p.auth_time;
  if (typeof p.acr === 'string') principal.acr = p.acr;
  // RFC 8707: a token issued for a resource of the hub is good only there (src/authz).
  const aud = (Array.isArray(p.aud) ? p.aud : [p.aud]).filter((a): a is string => typeof a === 'string');
  if (aud.length && !aud.some((a) => unrestricted.has(a))) principal.resource = aud;
  return principal;
}

function schemeFor(method: AuthMethod): string {
  return method === 'api-key' ? 'ApiKey' : 'Bearer';
}

function header(input: AuthInput, name: string): string | undefined {
  const v = input.headers[name];
  if (Array.isArray(v)) return v.join(', ');
  return v;
}

function withChallenge(e: OAuthError, challenge: Record<string, string>): OAuthError {
  const options: ConstructorParameters<typeof OAuthError>[2] = { status: e.status, challenge: { ...e.challenge, ...challenge } };
  if (e.detail !== undefined) options.detail = e.detail;
  if (e.extra !== undefined) options.extra = e.extra;
  return new OAuthError(e.error, e.description, options);
}
