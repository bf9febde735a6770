/**
 * RFC 8693 token exchange at /auth/token: a service account created with
 * `--allow-token-exchange` trades a user's token (IdP access token or Mimir JWT) for a Mimir
 * JWT that says "this service, acting for this user": `sub` = the user, `act.sub` = the
 * service (§4.1; the previous actors nest inside when the subject token was itself
 * delegated), audience from `audience`/`resource` (§2.1, RFC 8707), and only the roles and
 * permissions both the user and the service hold.
 */
import type { Principal } from '../../authn/principal.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import { delegatedScopes, narrowRoles } from '../../authz/delegation.ts';
import { accountPrincipal } from '../revoke/authenticate-caller.ts';
import type { ServiceAccountRecord } from '../../service-accounts/index.ts';
import type { TokenResponse } from './index.ts';
import type { Params } from './parse-body.ts';
import { grantScope } from './scope.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** §3: the subject token types the hub can validate. */
const SUBJECT_TYPES = new Set([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]);

export async function tokenExchangeGrant(hub: Hub, params: Params, client: ServiceAccountRecord): Promise<TokenResponse> {
  checkClientMayExchange(client);
  checkTokenTypes(params);
  const subject = await verifySubjectToken(hub, params.subject_token!);
  const audience = targetAudience(hub, params, subject);
  checkChain(hub, subject, client);

  const userPermissions = hub.authorizer.permissions(subject);
  // What the service account may do itself: its roles, narrowed by its configured scopes.
  const actorView = hub.authorizer.permissions(accountPrincipal(client));
  const roles = narrowRoles(hub.rbac, userPermissions, actorView, [...subject.roles, ...client.roles]);
  const delegable = delegatedScopes(userPermissions, actorView);
  const scopes = grantScope(params.scope, delegable, hub.authorizer);

  // §4.1: the current actor on the outside, earlier ones nested.
  const act = subject.act ? { sub: client.clientId, act: subject.act } : { sub: client.clientId };
  const nowSeconds = Math.floor(hub.now() / 1000);
  // The exchanged token never outlives the token it was exchanged for.
  const remaining = subject.expires_at !== undefined ? subject.expires_at - nowSeconds : Number.POSITIVE_INFINITY;
  const lifetime = Math.min(hub.config.jwt.accessTokenLifetime, remaining);
  if (lifetime < 1) throw new OAuthError('invalid_request', 'The subject_token has expired.');

  const issued = await hub.signer.issue({
    sub: subject.sub, client_id: client.clientId, act, aud: audience.length === 1 ? audience[0]! : audience,
    scope: scopes.join(' '), roles, auth_method: 'token_exchange',
    ...(subject.email ? { email: subject.email } : {}),
    ...(subject.name ? { name: subject.name } : {}),
    ...(subject.provider ? { provider: subject.provider } : {}),
    ...(subject.tenant ? { tenant: subject.tenant } : {}),
    // The user's sign-in and refresh family: signing out (or a revoked family) reaches this token too.
    ...(subject.sid ? { sid: subject.sid } : {}),
    ...(subject.fid ? { fid: subject.fid } : {}),
  }, lifetime);
  hub.serviceAccounts.touch(client);
  return {
    body: { access_token: issued.token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: issued.expiresIn, scope: scopes.join(' ') },
    audit: { jti: issued.jti, sub: subject.sub, act: client.clientId, subject_credential: subject.credential_id },
  };
}

/** RFC 6749 §5.2 unauthorized_client: this grant is for accounts allowed to delegate. */
function checkClientMayExchange(client: ServiceAccountRecord): void {
  if (!client.allowTokenExchange) {
    throw new OAuthError('unauthorized_client', 'This service account may not exchange tokens (create it with --allow-token-exchange).');
  }
}

/** §2.1: subject_token and subject_token_type are required; actor tokens are not supported. */
function checkTokenTypes(params: Params): void {
  if (!params.subject_token) throw new OAuthError('invalid_request', 'The subject_token parameter is missing.');
  if (!params.subject_token_type) throw new OAuthError('invalid_request', 'The subject_token_type parameter is missing.');
  if (!SUBJECT_TYPES.has(params.subject_token_type)) {
    throw new OAuthError('invalid_request', `The subject_token_type must be ${[...SUBJECT_TYPES].join(' or ')}.`);
  }
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
    throw new OAuthError('invalid_request', 'actor_token is not supported: the authenticated client is the actor.');
  }
  if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE && params.requested_token_type !== JWT_TOKEN_TYPE) {
    throw new OAuthError('invalid_request', `The requested_token_type must be ${ACCESS_TOKEN_TYPE}.`);
  }
}

/**
 * The delegation chain (§4.1 `act`) stays short and never loops: at most
 * MIMIR_TOKEN_EXCHANGE_MAX_DEPTH actors, and no actor twice.
 */
function checkChain(hub: Hub, subject: Principal, client: ServiceAccountRecord): void {
  let depth = 1;
  for (let a = subject.act; a; a = a.act) {
    if (a.sub === client.clientId) throw new OAuthError('invalid_request', 'This service account already acts in the subject token\'s delegation chain.');
    depth++;
  }
  const max = hub.config.tokenExchange.maxDepth;
  if (depth > max) throw new OAuthError('invalid_request', `The delegation chain would be ${depth} actors long; at most ${max} are allowed (MIMIR_TOKEN_EXCHANGE_MAX_DEPTH).`);
}

/**
 * §2.1 audience / RFC 8707 resource: only the hub's own audiences; otherwise invalid_target.
 * A subject token bound to resources yields a token for those resources only (a delegate never
 * reaches further than the user's token did).
 */
function targetAudience(hub: Hub, params: Params, subject: Principal): string[] {
  const asked = [params.audience, params.resource].filter((v): v is string => v !== undefined);
  if (params.resource !== undefined) {
    let ok = false;
    try { ok = !new URL(params.resource).hash; } catch { /* not absolute */ }
    if (!ok) throw new OAuthError('invalid_target', 'The resource must be an absolute URI without a fragment (RFC 8707 §2).');
  }
  const known = new Set(hub.audiences);
  const unknown = asked.filter((a) => !known.has(a));
  if (unknown.length) throw new OAuthError('invalid_target', `The hub does not issue tokens for ${unknown.map((u) => `"${u.slice(0, 100)}"`).join(', ')}.`);
  const bound = subject.resource;
  if (bound === undefined) return asked.length ? [...new Set(asked)] : [hub.config.jwt.audience];
  const wider = asked.filter((a) => !bound.includes(a));
  if (wider.length) throw new OAuthError('invalid_target', 'The subject_token is bound to another resource; a delegated token cannot reach further.');
  return asked.length ? [...new Set(asked)] : [...bound];
}

/**
 * The subject token is validated exactly as a request carrying it would be (iss-routed: IdP
 * JWKS or the hub's keys, revocation included). §2.2.2: an invalid subject token is
 * invalid_request. API keys and service accounts' own tokens are not users.
 */
async function verifySubjectToken(hub: Hub, token: string): Promise<Principal> {
  let p: Principal;
  try {
    p = await hub.authenticator.authenticate({ headers: { authorization: `Bearer ${token}` } });
  } catch (e) {
    if (e instanceof OAuthError && e.status >= 500) throw e;
    throw new OAuthError('invalid_request', 'The subject_token is invalid or expired.', { detail: e instanceof OAuthError ? e.error : undefined });
  }
  if (p.auth_method === 'api-key') throw new OAuthError('invalid_request', 'An API key cannot be a subject_token; use the user\'s access token.');
  if (p.auth_method === 'jwt' && p.client_id && p.sub === p.client_id && !p.act) {
    throw new OAuthError('invalid_request', 'The subject_token belongs to a service account, not a user.');
  }
  return p;
}
