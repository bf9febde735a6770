/**
 * RFC 6749 §6 refresh, as an ordered list of small checks, shared by `grant_type=refresh_token`
 * at the token endpoint and the seed's `POST /auth/refresh`.
 */
import { OAuthError, toOAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import type { ServiceAccountRecord } from '../../service-accounts/index.ts';
import type { TokenResponse } from '../token/index.ts';
import { grantScope, IDENTITY_SCOPES } from '../token/scope.ts';
import { accessTokenAudience } from '../openid/provider.ts';
import { requestedResource } from '../token/resource.ts';
import { renewIdpTokens } from '../../oidc/renew.ts';
import { RefreshReuseError, type RefreshGrant } from './refresh-tokens.ts';

export interface RefreshInput {
  refreshToken: string | undefined;
  /** RFC 6749 §6: an optional narrower scope. */
  scope?: string | undefined;
  /** RFC 8707 §2.2: the resource asked for, if any (it must be the grant's). */
  resource?: string | undefined;
  /** The authenticated confidential client, if one authenticated. */
  client?: ServiceAccountRecord | undefined;
  /** An OAuth client (authorization server) that authenticated or, if public, named itself. */
  oauthClientId?: string | undefined;
  /** Thumbprint of a verified DPoP proof sent with the request. */
  dpopJkt?: string | undefined;
  /** For the audit log. */
  ip?: string | undefined;
  requestId?: string | undefined;
}

/** A refresh token is 43 base64url characters; anything else is refused without a lookup. */
const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,512}$/;

export async function refreshGrant(hub: Hub, input: RefreshInput): Promise<TokenResponse & { refreshFamily: string }> {
  const meta = { ip: input.ip, request_id: input.requestId };
  try {
    checkRefreshEnabled(hub);
    const token = requireToken(input.refreshToken);
    const inspected = await hub.refreshTokens.inspect(token);
    if (!inspected) throw new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.');
    await checkClient(hub, inspected.grant, input.client, input.oauthClientId);
    checkBinding(inspected.grant, input.dpopJkt);
    const scope = narrowScope(hub, inspected.grant.scope, input.scope);
    const resource = resourceOf(hub, inspected.grant, input.resource);

    const used = await hub.refreshTokens.use(token, { rotate: hub.config.refresh.rotation });
    await renewSignIn(hub, used.grant, used.familyId);

    const jkt = used.grant.jkt ?? input.dpopJkt;
    const g = used.grant;
    const issued = await hub.signer.issue({
      sub: g.sub, client_id: g.clientId, scope, roles: g.roles, auth_method: 'refresh_token',
      // RFC 7009 §2.1: tokens of the same grant. `fid` ties the token to its family (revoking the
      // family reaches it), `sid` to the sign-in session it came from (signing out reaches it).
      fid: used.familyId, ...(g.sid ? { sid: g.sid } : {}),
      ...(g.email ? { email: g.email } : {}), ...(g.name ? { name: g.name } : {}), ...(g.groups ? { groups: g.groups } : {}),
      ...(g.provider ? { provider: g.provider } : {}), ...(g.tenant ? { tenant: g.tenant } : {}),
      ...(g.act ? { act: g.act } : {}), ...(resource ? { aud: accessTokenAudience(hub.config, resource, scope.split(' ')) } : {}),
      ...(jkt ? { cnf: { jkt } } : {}),
      ...(g.authTime !== undefined ? { auth_time: g.authTime } : {}), ...(g.acr !== undefined ? { acr: g.acr } : {}),
    }, hub.config.jwt.accessTokenLifetime);

    hub.audit.record({ type: 'refresh', outcome: 'success', principal: { sub: g.sub, auth_method: 'jwt', client_id: g.clientId }, client: g.clientId, jti: issued.jti, family: used.familyId, rotated: Boolean(used.next), ...(used.reused ? { reuse_interval: true } : {}), ...meta });
    return {
      body: {
        access_token: issued.token, token_type: jkt ? 'DPoP' : 'Bearer', expires_in: issued.expiresIn, scope,
        ...(used.next ? { refresh_token: used.next.token, refresh_token_expires_in: Math.max(0, used.next.expiresAt - Math.floor(hub.now() / 1000)) } : {}),
      },
      audit: { jti: issued.jti, sub: g.sub, family: used.familyId },
      refreshFamily: used.familyId,
    };
  } catch (e) {
    if (e instanceof RefreshReuseError) {
      // RFC 9700 §4.14.2: the family is already revoked; say so loudly.
      hub.audit.record({ type: 'refresh_reuse_detected', outcome: 'failure', reason: 'reuse_detected', family: e.familyId, principal: { sub: e.grant.sub, auth_method: 'jwt', client_id: e.grant.clientId }, client: e.grant.clientId, ...meta });
    }
    hub.audit.record({ type: 'refresh', outcome: 'failure', reason: toOAuthError(e).error, ...meta });
    throw e;
  }
}

function checkRefreshEnabled(hub: Hub): void {
  if (!hub.config.refresh.enabled) throw new OAuthError('unsupported_grant_type', 'Token refresh is disabled (MIMIR_ENABLE_TOKEN_REFRESH=false).');
}

function requireToken(token: string | undefined): string {
  if (!token) throw new OAuthError('invalid_request', 'The refresh_token parameter is missing.');
  if (!REFRESH_TOKEN_SHAPE.test(token)) throw new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.');
  return token;
}

/**
 * RFC 6749 §6: a confidential client must authenticate, and only for its own tokens. Checked before
 * the token is used, so a failed attempt cannot burn (or rotate) someone else's token.
 */
async function checkClient(hub: Hub, grant: RefreshGrant, client: ServiceAccountRecord | undefined, oauthClientId: string | undefined): Promise<void> {
  // OAuth 2.1 §4.3.1: a refresh token is bound to the client it was issued to.
  if (oauthClientId !== undefined && oauthClientId !== grant.clientId) throw new OAuthError('invalid_grant', 'The refresh token was issued to another client.');
  if (client) {
    if (client.clientId !== grant.clientId) throw new OAuthError('invalid_grant', 'The refresh token was issued to another client.');
    return;
  }
  // RFC 6749 §6: a confidential client authenticates — a service account, or an OAuth client
  // registered with a secret (or one no longer known: fail closed). A public client's token is
  // its own proof of possession.
  if (!grant.publicClient && oauthClientId === undefined && await isConfidential(hub, grant.clientId)) {
    throw new OAuthError('invalid_client', 'This refresh token belongs to a confidential client, which must authenticate.', { status: 401 });
  }
}

async function isConfidential(hub: Hub, clientId: string): Promise<boolean> {
  if (await hub.serviceAccounts.get(clientId)) return true;
  const client = await hub.clients.get(clientId).catch(() => null);
  return client === null || client.token_endpoint_auth_method !== 'none';
}

/** RFC 9449 §5: a refresh token bound to a DPoP key is usable only with a proof by that key. */
function checkBinding(grant: RefreshGrant, dpopJkt: string | undefined): void {
  if (grant.jkt && grant.jkt !== dpopJkt) throw new OAuthError('invalid_dpop_proof', 'This refresh token is bound to a DPoP key; send a DPoP proof made with it.');
}

/**
 * RFC 8707 §2.2: the resource the refreshed token is for. A grant for one resource: that one, and
 * a `resource` asked for must name it (a trailing slash aside). A grant for none (a sign-in's, for
 * the whole hub): the one asked for, if the hub serves it (as client_credentials reads it,
 * src/oauth/token/resource.ts), so the token is for it alone. Any other is invalid_target, never a
 * token for another audience than the one asked for.
 */
function resourceOf(hub: Hub, grant: RefreshGrant, requested: string | undefined): string | undefined {
  if (requested === undefined) return grant.resource;
  if (grant.resource !== undefined) {
    if (requested.replace(/\/$/, '') !== grant.resource.replace(/\/$/, '')) throw new OAuthError('invalid_target', 'The resource is not the one this refresh token was granted for.');
    return grant.resource;
  }
  return requestedResource(hub.audiences, requested);
}

/**
 * RFC 6749 §6: the scope of a refresh is the original one, or a part of it when asked. OIDC Core
 * §12.2 allows an ID token here; the hub sends none (the one from the code exchange stays the
 * client's record of the sign-in), so `openid` only keeps the token's UserInfo audience.
 */
function narrowScope(hub: Hub, original: string, requested: string | undefined): string {
  const granted = original.split(' ').filter(Boolean);
  const identity = granted.filter((s) => IDENTITY_SCOPES.includes(s));
  return grantScope(requested, granted.filter((s) => !IDENTITY_SCOPES.includes(s)), hub.authorizer, identity).join(' ');
}

/**
 * Runs after the refresh token was used (so only the one winner of a race gets here) and before
 * the access token is minted: a family that belongs to a sign-in session renews the session's IdP
 * tokens when due (src/oidc/renew.ts). An `invalid_grant` there (signed out, or the IdP session
 * is over) ends the login: the family is revoked and the client gets a 401.
 */
async function renewSignIn(hub: Hub, grant: RefreshGrant, familyId: string): Promise<void> {
  if (!grant.sid) return;
  try {
    await renewIdpTokens(hub, grant.sid, grant.provider);
  } catch (e) {
    if (e instanceof OAuthError && e.error === 'invalid_grant') {
      await hub.refreshTokens.revokeFamily(familyId, 'idp_session_ended');
      // A 401 tells the client to sign in again rather than retry the refresh.
      throw new OAuthError('invalid_grant', 'The sign-in session has ended; sign in again.', { status: 401, ...(e.detail ? { detail: e.detail } : {}), extra: { session_ended: true } });
    }
    throw e;
  }
}
