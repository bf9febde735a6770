/**
 * grant_type=authorization_code (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3): code single use, client,
 * redirect URI and PKCE verifier checked, RFC 8707 resource becoming the token's `aud`; with the
 * `openid` scope, an ID token for the client (OIDC Core §3.1.3.3).
 */
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import type { OAuthClient } from '../clients/metadata.ts';
import type { GrantHandler, TokenResponse } from '../token/index.ts';
import { authenticateOAuthClient, readClientCredentials } from '../token/authenticate-client.ts';
import type { Params } from '../token/parse-body.ts';
import { issueIdToken } from '../openid/id-token.ts';
import { accessTokenAudience } from '../openid/provider.ts';
import { redeemCode, rememberIssued, verifyPkce } from './codes.ts';

/** The token endpoint's handler: the OAuth client authenticates itself (confidential) or names itself (public). */
export const authorizationCodeHandler: GrantHandler = async ({ hub, params, request, dpopJkt }) => {
  const authorization = request.headers.authorization;
  const creds = readClientCredentials(params, Array.isArray(authorization) ? authorization[0] : authorization);
  const clientId = creds?.clientId ?? params.client_id;
  if (!clientId) throw new OAuthError('invalid_client', 'client_id is required.');
  const client = await authenticateOAuthClient(hub, clientId, creds);
  return authorizationCodeGrant(hub, params, client, dpopJkt);
};

export async function authorizationCodeGrant(hub: Hub, params: Params, client: OAuthClient, dpopJkt: string | undefined): Promise<TokenResponse> {
  const code = params.code;
  if (!code) throw new OAuthError('invalid_request', 'The code parameter is missing.');
  const redeemed = await redeemCode(hub.store, code);
  if (!('grant' in redeemed)) {
    // RFC 6749 §4.1.2: a reused code revokes what it produced.
    if (redeemed.replayedFamily) await hub.refreshTokens.revokeFamily(redeemed.replayedFamily, 'code_reuse');
    hub.audit.record({ type: 'token_issued', outcome: 'failure', reason: 'code_replayed', client: client.client_id });
    throw new OAuthError('invalid_grant', 'The authorization code was already used.');
  }
  const g = redeemed.grant;
  if (g.clientId !== client.client_id) throw new OAuthError('invalid_grant', 'The authorization code was issued to another client.');
  // §4.1.3: required, and the same, if the authorization request included it; else, if sent, the one used.
  if (params.redirect_uri === undefined ? g.redirectUriSent !== false : params.redirect_uri !== g.redirectUri) {
    throw new OAuthError('invalid_grant', params.redirect_uri === undefined ? 'The redirect_uri is missing; the authorization request included one.' : 'The redirect_uri differs from the one in the authorization request.');
  }
  verifyPkce(params.code_verifier, g.codeChallenge);
  if (params.resource !== undefined && params.resource.replace(/\/$/, '') !== g.resource) {
    throw new OAuthError('invalid_target', 'The resource differs from the one the user authorized.');
  }

  const u = g.user;
  const scopes = g.scope.split(' ').filter(Boolean);
  const publicClient = client.token_endpoint_auth_method === 'none';
  const refresh = hub.config.refresh.enabled && client.grant_types.includes('refresh_token')
    ? await hub.refreshTokens.issue({
      sub: u.sub, clientId: client.client_id, scope: g.scope, roles: u.roles, resource: g.resource, publicClient,
      ...(u.email ? { email: u.email } : {}), ...(u.name ? { name: u.name } : {}), groups: u.groups,
      ...(u.provider ? { provider: u.provider } : {}), ...(u.tenant ? { tenant: u.tenant } : {}), ...(u.sid ? { sid: u.sid } : {}),
      ...(dpopJkt ? { jkt: dpopJkt } : {}),
      ...(u.authTime !== undefined ? { authTime: u.authTime } : {}), ...(u.acr !== undefined ? { acr: u.acr } : {}),
    })
    : undefined;
  if (refresh) await rememberIssued(hub.store, code, refresh.familyId, 600);
  const issued = await hub.signer.issue({
    sub: u.sub, client_id: client.client_id, scope: g.scope, roles: u.roles, groups: u.groups, aud: accessTokenAudience(hub.config, g.resource, scopes),
    auth_method: 'authorization_code', ...(u.sid ? { sid: u.sid } : {}), ...(refresh ? { fid: refresh.familyId } : {}),
    ...(u.email ? { email: u.email } : {}), ...(u.name ? { name: u.name } : {}),
    ...(u.provider ? { provider: u.provider } : {}), ...(u.tenant ? { tenant: u.tenant } : {}),
    ...(dpopJkt ? { cnf: { jkt: dpopJkt } } : {}),
    // RFC 9068 §2.2.1 / RFC 9470: when and how the user authenticated, for step-up at the resources.
    ...(u.authTime !== undefined ? { auth_time: u.authTime } : {}), ...(u.acr !== undefined ? { acr: u.acr } : {}),
  }, hub.config.jwt.accessTokenLifetime);
  // OIDC Core §3.1.3.3: an ID token only when the user granted `openid`.
  const idToken = scopes.includes('openid')
    ? await issueIdToken(hub, {
      sub: hub.identities.userId({ sub: u.sub, provider: u.provider }), clientId: client.client_id, scopes, user: u, accessToken: issued.token,
      nonce: g.nonce, authTime: u.authTime, acr: u.acr, amr: u.amr,
    })
    : undefined;
  return {
    body: {
      access_token: issued.token, token_type: dpopJkt ? 'DPoP' : 'Bearer', expires_in: issued.expiresIn, scope: g.scope,
      ...(refresh ? { refresh_token: refresh.token } : {}),
      ...(idToken ? { id_token: idToken } : {}),
    },
    audit: { jti: issued.jti, sub: u.sub, client_id: client.client_id, resource: g.resource },
  };
}
