/**
 * Azure multi-tenant apps (tenant `organizations` or `common`). Microsoft publishes the issuer as
 * `https://login.microsoftonline.com/{tenantid}/v2.0`; each token's `iss` is that template with
 * the token's own `tid` ("Validate the issuer", Microsoft identity platform docs for multi-tenant
 * apps). openid-client compares an ID token's `iss` with one fixed issuer, so for these providers
 * the ID token is taken out of the token response before openid-client sees it and verified here
 * with jose: signature by the provider's JWKS (asymmetric algorithms only), `aud` = our client,
 * `azp`, `exp`, `iat`, `nonce`, and `iss` = template(tid). The tenant allow-list is applied by
 * checkProviderRules, as for every other token of the provider.
 */
import { jwtVerify, type JWTPayload } from 'jose';
import type * as client from 'openid-client';
import { OAuthError } from '../errors.ts';
import { tenantIssuer } from './claims.ts';
import { configurationWithFetch, type ProviderDirectory } from './discovery.ts';
import type { ProviderSettings } from './providers.ts';

/** OpenID Connect Core §3.1.3.7 step 6: RS256 by default; never `none` or a shared secret. */
const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
/** openid-client's default clock tolerance for ID tokens. */
const CLOCK_TOLERANCE = 30;

/**
 * A configuration for one exchange whose token response reaches openid-client without the ID
 * token; `idToken()` returns what was taken out.
 */
export function withoutIdToken(p: ProviderSettings, base: client.Configuration): { config: client.Configuration; idToken: () => string | undefined } {
  let taken: string | undefined;
  const tokenEndpoint = base.serverMetadata().token_endpoint;
  const config = configurationWithFetch(p, base, async (url, options) => {
    const res = await fetch(url, options as RequestInit);
    if (url !== tokenEndpoint || !res.ok) return res;
    const body = await res.json() as Record<string, unknown>;
    if (typeof body.id_token === 'string') taken = body.id_token;
    delete body.id_token;
    return Response.json(body, { status: res.status, headers: { 'cache-control': 'no-store' } });
  });
  return { config, idToken: () => taken };
}

export interface IdTokenExpectations {
  nonce: string | undefined;
  /** Where the provider's key set is kept (one per hub). */
  providers: ProviderDirectory;
  now: () => number;
}

/** Verifies a multi-tenant provider's ID token; returns its claims. OAuthError `invalid_grant` otherwise. */
export async function verifyTenantIdToken(p: ProviderSettings, config: client.Configuration, idToken: string | undefined, expect: IdTokenExpectations): Promise<JWTPayload> {
  const template = p.issuerTemplate;
  if (!template) throw new Error('verifyTenantIdToken needs a multi-tenant provider');
  if (!idToken) throw new OAuthError('invalid_grant', `${p.name} returned no ID token.`);
  const jwksUri = config.serverMetadata().jwks_uri;
  if (!jwksUri) throw new OAuthError('invalid_grant', `${p.name} publishes no JWKS.`);
  const keys = expect.providers.keySet(jwksUri);
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(idToken, keys, {
      algorithms: ID_TOKEN_ALGORITHMS,
      audience: p.clientId,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'tid'],
      clockTolerance: CLOCK_TOLERANCE,
      currentDate: new Date(expect.now()),
    }));
  } catch (e) {
    throw new OAuthError('invalid_grant', `The ID token from ${p.name} failed validation; start the sign-in again.`, { detail: `id_token: ${(e as { code?: string }).code ?? String(e)}` });
  }
  const refuse = (why: string) => new OAuthError('invalid_grant', `The ID token from ${p.name} failed validation; start the sign-in again.`, { detail: `id_token: ${why}` });
  const tid = claims.tid;
  if (typeof tid !== 'string' || claims.iss !== tenantIssuer(template, tid)) throw refuse('iss does not match the issuer template for its tid');
  // §3.1.3.7 steps 4–5: several audiences need azp; a present azp must be us.
  if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp === undefined) throw refuse('azp missing with several audiences');
  if (claims.azp !== undefined && claims.azp !== p.clientId) throw refuse('azp is another client');
  // §3.1.3.7 step 11: the nonce sent in the authentication request.
  if (expect.nonce !== undefined && claims.nonce !== expect.nonce) throw refuse('nonce mismatch');
  return claims;
}
