/**
 * The redirect back from the IdP (OpenID Connect Core §3.1.2.5–3.1.3.7), as a list of named
 * checks: the state is read and used up, not expired and bound to this browser; the code is
 * exchanged (openid-client checks the ID token: signature by JWKS, iss, aud, azp, exp, iat,
 * nonce, and RFC 9207 `iss` when the IdP sends it); then the kind's own rules, the claims the
 * ID token lacks from userinfo (OIDC Core §5.3), and the claims mapping. Azure multi-tenant providers have their ID token verified by multi-tenant.ts instead.
 * Nothing is stored here: the caller creates the session.
 */
import * as client from 'openid-client';
import { unmetAuthentication } from '../authz/authentication.ts';
import { hashSecret, safeEqual } from '../crypto/index.ts';
import { OAuthError } from '../errors.ts';
import { checkProviderRules, issuerMatches, mapClaims, missingProfileClaims, withUserinfoClaims, type MappedIdentity } from './claims.ts';
import { describe } from './discovery.ts';
import { LOGIN_STATE_KIND, type LoginDeps, type LoginState } from './login.ts';
import { verifyTenantIdToken, withoutIdToken } from './multi-tenant.ts';
import type { ProviderSettings } from './providers.ts';

export interface CallbackInput {
  /** The callback's query parameters. */
  query: Record<string, unknown>;
  /** The browser-binding cookie set at /auth/login. */
  binding: string | undefined;
}

/**
 * Whether the sign-in asked the IdP's userinfo endpoint for claims the ID token lacked: `not-needed`
 * (the ID token had them), `unavailable` (no userinfo endpoint or no access token), `used`, or
 * `failed` with a secret-free reason (the sign-in went on with the ID token's claims).
 */
export type UserinfoOutcome =
  | { readonly status: 'not-needed' | 'unavailable' | 'used'; readonly missing: readonly string[] }
  | { readonly status: 'failed'; readonly missing: readonly string[]; readonly reason: string };

export interface CompletedLogin {
  provider: ProviderSettings;
  identity: MappedIdentity;
  userinfo: UserinfoOutcome;
  idToken: string | undefined;
  idpRefreshToken: string | undefined;
  idpAccessToken: string | undefined;
  /** Epoch seconds, from the token response's `expires_in`. */
  idpAccessTokenExpiresAt: number | undefined;
  returnTo: string;
  /** OIDC Core §2: how the IdP says the user authenticated (what its ID token carries of it). */
  authentication: { authTime?: number; acr?: string; amr?: string[] };
}

export async function completeLogin(d: LoginDeps, input: CallbackInput): Promise<CompletedLogin> {
  const query = stringParams(input.query);
  const key = readStateKey(d, query, input.binding);
  const state = await consumeState(d, key);
  checkNotExpired(d, state);
  checkBinding(state, input.binding);
  const provider = d.providers.get(state.provider);
  if (!provider) throw new OAuthError('invalid_request', 'The sign-in was started for a provider that is no longer configured.');
  const { tokens, claims, idToken } = await exchangeCode(d, provider, state, query);
  if (!claims) throw new OAuthError('invalid_grant', 'The identity provider returned no ID token.');
  checkProviderRules(provider, claims, 'id');
  const profile = await completeFromUserinfo(d, provider, tokens.access_token, claims);
  const identity = mapClaims(provider, profile.claims, 'session');
  const authentication = authenticationOf(claims);
  checkStepUp(d, provider, state, authentication);
  const expiresIn = tokens.expiresIn();
  return {
    provider, identity, idToken, userinfo: profile.outcome, idpRefreshToken: tokens.refresh_token, idpAccessToken: tokens.access_token,
    idpAccessTokenExpiresAt: expiresIn === undefined ? undefined : Math.floor(d.now() / 1000) + expiresIn,
    returnTo: state.returnTo,
    authentication,
  };
}

/**
 * RFC 9470 step-up: the sign-in was asked for an authentication at most `max_age` old or of one
 * of `acr_values`; the ID token must say it got one (OIDC Core §3.1.2.1: with `max_age` its
 * `auth_time` is REQUIRED). Checked as the authorization endpoint and the route rules check it
 * (src/authz/authentication.ts), so a sign-in accepted here is never sent back to the IdP again.
 */
function checkStepUp(d: LoginDeps, p: ProviderSettings, state: LoginState, authentication: CompletedLogin['authentication']): void {
  if (!state.stepUp) return;
  const unmet = unmetAuthentication({ auth_time: authentication.authTime, acr: authentication.acr }, state.stepUp, Math.floor(d.now() / 1000));
  if (unmet === 'max_age') {
    throw new OAuthError('access_denied', `${p.name} did not sign you in again as asked (no recent authentication time in its answer).`, { detail: `step-up max_age ${state.stepUp.maxAge} unmet` });
  }
  if (unmet === 'acr') {
    throw new OAuthError('access_denied', `${p.name} did not sign you in at the level asked for (${(state.stepUp.acrValues ?? []).join(' or ').slice(0, 200)}).`, { detail: `step-up acr unmet: ${authentication.acr ?? 'none'}` });
  }
}

/** `auth_time`, `acr` and `amr` of a verified ID token, those of the right types. */
function authenticationOf(claims: Record<string, unknown>): CompletedLogin['authentication'] {
  const { auth_time: authTime, acr, amr } = claims;
  return {
    ...(typeof authTime === 'number' && Number.isFinite(authTime) ? { authTime: Math.floor(authTime) } : {}),
    ...(typeof acr === 'string' && acr.length <= 200 ? { acr } : {}),
    ...(Array.isArray(amr) && amr.length <= 10 && amr.every((m) => typeof m === 'string' && m.length <= 64) ? { amr: amr as string[] } : {}),
  };
}

function stringParams(query: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) {
    // RFC 6749 §3.1: parameters must not be repeated.
    if (Array.isArray(v)) throw new OAuthError('invalid_request', `The ${k.slice(0, 40)} parameter is repeated.`);
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

function readStateKey(d: LoginDeps, query: Record<string, string>, binding: string | undefined): string {
  if (d.security.state) {
    const state = query.state;
    if (!state) throw new OAuthError('invalid_request', 'The sign-in response has no state; start the sign-in again.', { detail: 'state missing' });
    if (state.length > 512) throw new OAuthError('invalid_request', 'The state parameter is malformed.');
    return hashSecret(state);
  }
  if (!binding) throw new OAuthError('invalid_request', 'The sign-in cookie is missing; start the sign-in again.');
  return hashSecret(binding);
}

/** RFC 6749 §10.12: state is single use. Unknown, used or expired all read the same. */
async function consumeState(d: LoginDeps, key: string): Promise<LoginState> {
  const found = await d.store.find<LoginState>(LOGIN_STATE_KIND, key);
  if (!found || found.consumedAt !== undefined || !(await d.store.consume(LOGIN_STATE_KIND, key))) {
    throw new OAuthError('invalid_request', 'This sign-in link is unknown, expired or was already used; start the sign-in again.', {
      detail: found ? 'state replayed' : 'state unknown',
      extra: { reason: found ? 'state_used' : 'state_unknown' },
    });
  }
  return found.payload;
}

function checkNotExpired(d: LoginDeps, state: LoginState): void {
  if (Math.floor(d.now() / 1000) - state.createdAt > d.security.stateTimeout) {
    throw new OAuthError('invalid_request', 'The sign-in took too long and expired; start it again.', { detail: 'state expired', extra: { reason: 'state_expired' } });
  }
}

function checkBinding(state: LoginState, binding: string | undefined): void {
  if (!binding || !safeEqual(hashSecret(binding), state.binding)) {
    throw new OAuthError('invalid_request', 'The sign-in was started in another browser; start it again here.', { detail: 'binding cookie mismatch' });
  }
}

async function exchangeCode(d: LoginDeps, p: ProviderSettings, state: LoginState, query: Record<string, string>) {
  const config = await d.providers.configuration(p);
  const url = new URL(p.redirectUri);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const checks: client.AuthorizationCodeGrantChecks = { expectedState: state.state ?? client.skipStateCheck };
  if (state.verifier) checks.pkceCodeVerifier = state.verifier;
  try {
    if (p.issuerTemplate) {
      // RFC 9207: a tenant's `iss` response parameter must fit the template and name the same
      // tenant as the ID token; openid-client compares it with the template itself.
      const iss = query.iss;
      if (iss !== undefined) {
        if (!issuerMatches(p, iss)) throw new OAuthError('invalid_grant', `The answer from ${p.name} names another issuer; start the sign-in again.`, { detail: 'iss response parameter' });
        url.searchParams.set('iss', p.issuerTemplate);
      }
      const split = withoutIdToken(p, config);
      const tokens = await client.authorizationCodeGrant(split.config, url, { ...checks, idTokenExpected: false });
      const idToken = split.idToken();
      const claims = await verifyTenantIdToken(p, config, idToken, { nonce: state.nonce, providers: d.providers, now: d.now }) as Record<string, unknown>;
      if (iss !== undefined && claims.iss !== iss) throw new OAuthError('invalid_grant', `The answer from ${p.name} names two issuers; start the sign-in again.`, { detail: 'iss parameter differs from id_token iss' });
      return { tokens, claims, idToken };
    }
    const tokens = await client.authorizationCodeGrant(config, url, { ...checks, ...(state.nonce ? { expectedNonce: state.nonce } : {}), idTokenExpected: true });
    return { tokens, claims: tokens.claims() as Record<string, unknown> | undefined, idToken: tokens.id_token };
  } catch (e) {
    throw idpError(p, e);
  }
}

/**
 * OIDC Core §5.3: claims the ID token lacks (name, email, the role claim) are asked of the
 * userinfo endpoint with the access token of this sign-in, when the IdP has one. openid-client
 * checks that the answer's `sub` is the ID token's (§5.3.2); an answer for anyone else, or no
 * answer, leaves the ID token's claims as they are: a sign-in the ID token alone allows is never
 * refused because userinfo failed.
 */
async function completeFromUserinfo(d: LoginDeps, p: ProviderSettings, accessToken: string | undefined, claims: Record<string, unknown>): Promise<{ claims: Record<string, unknown>; outcome: UserinfoOutcome }> {
  const missing = missingProfileClaims(p, claims);
  if (missing.length === 0) return { claims, outcome: { status: 'not-needed', missing } };
  const config = await d.providers.configuration(p);
  if (!accessToken || !config.serverMetadata().userinfo_endpoint || typeof claims.sub !== 'string') {
    return { claims, outcome: { status: 'unavailable', missing } };
  }
  try {
    const answer = await client.fetchUserInfo(config, accessToken, claims.sub) as Record<string, unknown>;
    return { claims: withUserinfoClaims(claims, answer), outcome: { status: 'used', missing } };
  } catch (e) {
    return { claims, outcome: { status: 'failed', missing, reason: describe(e) } };
  }
}

/** openid-client failures as OAuth errors: the IdP's own error, a failed check, or an unreachable IdP. */
export function idpError(p: ProviderSettings, e: unknown): OAuthError {
  if (e instanceof OAuthError) return e;
  if (e instanceof client.AuthorizationResponseError) {
    const code = e.error === 'access_denied' ? 'access_denied' : 'invalid_request';
    return new OAuthError(code, e.error === 'access_denied' ? `Sign-in at ${p.name} was cancelled or refused.` : `${p.name} refused the sign-in (${e.error.slice(0, 60)}).`, { detail: describe(e) });
  }
  if (e instanceof client.ResponseBodyError) {
    return new OAuthError('invalid_grant', `${p.name} refused the authorization code (${e.error.slice(0, 60)}); start the sign-in again.`, { detail: describe(e) });
  }
  const name = (e as { name?: string }).name ?? '';
  if (name === 'TimeoutError' || name === 'AbortError' || (e instanceof TypeError && /fetch failed/.test(e.message))) {
    return new OAuthError('bad_gateway', `${p.name} could not be reached.`, { detail: describe(e) });
  }
  // ID token checks (iss, aud, azp, nonce, signature, exp) and other protocol violations.
  return new OAuthError('invalid_grant', `The answer from ${p.name} failed validation; start the sign-in again.`, { detail: describe(e) });
}
