/**
 * Starting a sign-in (OpenID Connect Core §3.1.2.1): authorization code flow with PKCE S256
 * (RFC 7636), `state` (RFC 6749 §10.12) and `nonce`, each on unless switched off. What the
 * callback needs is kept server-side under the state, single use, for MIMIR_OAUTH_STATE_TIMEOUT,
 * and bound to this browser by a cookie so a login cannot be planted in another browser.
 */
import * as client from 'openid-client';
import { parseAcrValues, type AuthenticationRequirement } from '../authz/authentication.ts';
import { hashSecret, randomToken } from '../crypto/index.ts';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';
import type { ProviderDirectory } from './discovery.ts';
import { signInScope } from './providers.ts';
import { safeReturnTo } from './return-to.ts';

export interface LoginSecurity {
  pkce: boolean;
  state: boolean;
  nonce: boolean;
  stateTimeout: number;
}

export interface LoginDeps {
  store: Store;
  providers: ProviderDirectory;
  security: LoginSecurity;
  now: () => number;
}

/** What the callback needs, stored under hash(state) (or hash(binding) when state is off). */
export interface LoginState {
  provider: string;
  returnTo: string;
  createdAt: number;
  /** Hash of the browser-binding cookie. */
  binding: string;
  verifier?: string;
  nonce?: string;
  state?: string;
  /** RFC 9470 step-up: what the sign-in must achieve; the callback checks the IdP's answer against it. */
  stepUp?: { maxAge?: number; acrValues?: string[] };
}

/**
 * A sign-in asked to authenticate the user again (RFC 9470 step-up; OIDC Core §3.1.2.1
 * `prompt=login`, `max_age`, `acr_values`), as /auth/login reads it from its query.
 */
export interface Reauthentication {
  maxAge?: number;
  acrValues?: string[];
}

/**
 * `max_age` (whole seconds), `acr_values` (space-separated) and `prompt=login` of /auth/login:
 * undefined when none is given (another `prompt` is ignored). Any of them sends the user to the IdP with `prompt=login`.
 * Throws OAuthError invalid_request naming the parameter at fault.
 */
export function readReauthentication(query: Record<string, unknown>): Reauthentication | undefined {
  const one = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw new OAuthError('invalid_request', `The ${name} parameter is repeated.`);
    return v;
  };
  const maxAge = one('max_age');
  const acr = one('acr_values');
  // Only `prompt=login` means anything here; other values were always ignored, and still are.
  const prompt = one('prompt') === 'login' ? 'login' : undefined;
  if (maxAge !== undefined && !/^\d{1,9}$/.test(maxAge)) throw new OAuthError('invalid_request', 'The max_age parameter must be a whole number of seconds.');
  const acrValues = acr === undefined ? undefined : parseAcrValues(acr);
  if (acrValues === null) throw new OAuthError('invalid_request', 'The acr_values parameter must be up to 10 space-separated values of at most 200 characters.');
  if (maxAge === undefined && acrValues === undefined && prompt === undefined) return undefined;
  return { ...(maxAge !== undefined ? { maxAge: Number(maxAge) } : {}), ...(acrValues ? { acrValues } : {}) };
}

/** The query of /auth/login that asks for a {@link Reauthentication} (`prompt=login` with `max_age` / `acr_values`). */
export function reauthenticationQuery(r: AuthenticationRequirement): Record<string, string> {
  return {
    prompt: 'login',
    ...(r.maxAge !== undefined ? { max_age: String(r.maxAge) } : {}),
    ...(r.acrValues?.length ? { acr_values: r.acrValues.join(' ') } : {}),
  };
}

export const LOGIN_STATE_KIND = 'oidc_login_state';

export async function beginLogin(d: LoginDeps, input: { providerId: string; returnTo?: unknown; reauthenticate?: Reauthentication | undefined }): Promise<{ redirectTo: string; binding: string }> {
  const p = d.providers.get(input.providerId);
  if (!p) throw new OAuthError('invalid_request', 'Unknown sign-in provider.');
  // Discovery first: when the IdP is down nothing is stored.
  const config = await d.providers.configuration(p);
  const binding = randomToken(24);
  const record: LoginState = {
    provider: p.id, returnTo: safeReturnTo(input.returnTo), createdAt: Math.floor(d.now() / 1000), binding: hashSecret(binding),
  };
  const scope = signInScope(p, config.serverMetadata().scopes_supported);
  const params: Record<string, string> = { redirect_uri: p.redirectUri, scope, response_type: 'code', ...p.authorizationParams };
  if (p.hostedDomain) params.hd = p.hostedDomain; // a hint for Google's account chooser; the hd claim is what is checked
  if (d.security.pkce) {
    record.verifier = client.randomPKCECodeVerifier();
    params.code_challenge = await client.calculatePKCECodeChallenge(record.verifier);
    params.code_challenge_method = 'S256';
  }
  if (d.security.nonce) params.nonce = record.nonce = client.randomNonce();
  if (d.security.state) params.state = record.state = client.randomState();
  const again = input.reauthenticate;
  if (again) {
    // OIDC Core §3.1.2.1: authenticate the user anew, however recent the IdP's own session.
    params.prompt = 'login';
    if (again.maxAge !== undefined) params.max_age = String(again.maxAge);
    if (again.acrValues?.length) params.acr_values = again.acrValues.join(' ');
    if (again.maxAge !== undefined || again.acrValues?.length) record.stepUp = { ...again };
  }
  const key = hashSecret(record.state ?? binding);
  await d.store.upsert(LOGIN_STATE_KIND, key, record, d.security.stateTimeout);
  return { redirectTo: client.buildAuthorizationUrl(config, params).href, binding };
}
