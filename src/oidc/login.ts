/**
 * Starting a sign-in (OpenID Connect Core §3.1.2.1): authorization code flow with PKCE S256
 * (RFC 7636), `state` (RFC 6749 §10.12) and `nonce`, each on unless switched off. What the
 * callback needs is kept server-side under the state, single use, for MIMIR_OAUTH_STATE_TIMEOUT,
 * and bound to this browser by a cookie so a login cannot be planted in another browser.
 */
import * as client from 'openid-client';
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
}

export const LOGIN_STATE_KIND = 'oidc_login_state';

export async function beginLogin(d: LoginDeps, input: { providerId: string; returnTo?: unknown }): Promise<{ redirectTo: string; binding: string }> {
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
  const key = hashSecret(record.state ?? binding);
  await d.store.upsert(LOGIN_STATE_KIND, key, record, d.security.stateTimeout);
  return { redirectTo: client.buildAuthorizationUrl(config, params).href, binding };
}
