/**
 * RFC 7662 token introspection of Mimir access tokens, refresh tokens and API keys.
 * §2.2: `{active: false}` for anything not currently valid — unknown, malformed, expired,
 * revoked, consumed, or resting on a service account that no longer stands behind it (the
 * authenticator's rule, src/authn/service-account-tokens.ts) — and nothing else about it.
 */
import { looksLikeApiKey } from '../../api-keys/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import { verifyAccessToken } from '../../jwt/access-token.ts';
import { serviceAccountFinder } from '../../cache/index.ts';
import { accountsBehind, accountsStand } from '../../authn/service-account-tokens.ts';
import { refusal } from '../../authz/refusal.ts';
import type { Caller } from '../revoke/authenticate-caller.ts';

export type Introspection = { active: false } | ({ active: true; token_type: string } & Record<string, unknown>);

const INACTIVE = { active: false } as const;
const MAX_TOKEN_BYTES = 8192;
/** The permission a caller needs (Mimir's `admin` role holds `*`). */
export const INTROSPECT_PERMISSION = 'introspect';

/**
 * RFC 7662 §2.1: only callers allowed to introspect may learn about tokens: a holder of the
 * `introspect` permission (by the one rule), or an OAuth client of the hub about its own tokens
 * (see {@link forCaller}).
 */
export function checkMayIntrospect(hub: Hub, caller: Caller, path: string): void {
  if (caller.kind === 'anonymous') {
    throw new OAuthError('invalid_client', 'Introspection needs client authentication or a bearer credential.', { status: 401, challenge: { realm: 'mimir' } });
  }
  if (caller.kind === 'oauth_client') return;
  const decision = hub.authorizer.decide(caller.principal, { permission: INTROSPECT_PERMISSION, path });
  if (!decision.allowed) throw refusal(decision, `Introspection needs the ${INTROSPECT_PERMISSION} permission.`);
}

/** What this caller may learn: an OAuth client (no introspect permission) only about tokens issued to it. */
export function forCaller(caller: Caller, result: Introspection): Introspection {
  if (caller.kind !== 'oauth_client' || !result.active || result.client_id === caller.clientId) return result;
  return INACTIVE;
}

export async function introspectToken(hub: Hub, token: string | undefined): Promise<Introspection> {
  if (!token) throw new OAuthError('invalid_request', 'The token parameter is missing.');
  // `active` rests on revocation state, whoever asks (an OAuth client's secret is no hub credential the authenticator saw).
  hub.contact.assertFresh();
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return INACTIVE;
  if (looksLikeApiKey(token)) return apiKey(hub, token);
  if (token.split('.').length === 3) return accessToken(hub, token);
  return refreshToken(hub, token);
}

async function accessToken(hub: Hub, token: string): Promise<Introspection> {
  const verified = hub.caches.tokens.get(token, hub.keys)
    ?? await verifyAccessToken(token, hub.keys, { issuer: hub.config.jwt.issuer, audiences: hub.audiences, now: hub.now }).then((v) => {
      hub.caches.tokens.set(token, v);
      return v;
    }, () => null);
  if (!verified) return INACTIVE;
  const p = verified.payload;
  if (hub.revocations.isRevoked({ jti: p.jti, sid: p.sid, fid: p.fid, kid: verified.header.kid })) return INACTIVE;
  // The accounts behind it, by the authenticator's rule: its own (then its roles are the account's
  // now, as toward the upstream), or each actor of a token obtained by token exchange.
  const { own, ids } = accountsBehind(p);
  let roles = p.roles;
  if (ids.length > 0) {
    const find = serviceAccountFinder(hub.caches, hub.serviceAccounts);
    // One account (a service account's own token, the common case) without Promise.all's cost.
    const accounts = ids.length === 1 ? [await find(ids[0]!)] : await Promise.all(ids.map((id) => find(id)));
    if (!accountsStand(accounts, p, own)) return INACTIVE;
    if (own) roles = accounts[0]!.roles;
  }
  return compact({
    active: true, token_type: p.cnf?.jkt ? 'DPoP' : 'Bearer',
    scope: p.scope, client_id: p.client_id, sub: p.sub, username: p.email ?? p.name,
    exp: p.exp, iat: p.iat, nbf: p.nbf, iss: p.iss, aud: p.aud, jti: p.jti,
    email: p.email, name: p.name, roles, groups: p.groups, act: p.act, sid: p.sid,
    provider: p.provider, tenant: p.tenant, auth_method: p.auth_method, cnf: p.cnf,
    // RFC 9470 §6.2: a resource server doing step-up reads them here too.
    auth_time: typeof p.auth_time === 'number' ? p.auth_time : undefined, acr: typeof p.acr === 'string' ? p.acr : undefined,
  });
}

async function refreshToken(hub: Hub, token: string): Promise<Introspection> {
  if (!/^[A-Za-z0-9_-]{20,512}$/.test(token)) return INACTIVE;
  const found = await hub.refreshTokens.inspect(token);
  const now = Math.floor(hub.now() / 1000);
  if (!found || found.consumed || found.family.revokedAt !== undefined || found.expiresAt <= now || found.family.expiresAt <= now) return INACTIVE;
  const g = found.grant;
  return compact({
    active: true, token_type: 'refresh_token', scope: g.scope, client_id: g.clientId, sub: g.sub, username: g.email ?? g.name,
    exp: found.expiresAt, iat: found.family.createdAt, iss: hub.config.jwt.issuer, sid: g.sid ?? found.family.familyId,
    ...(g.jkt ? { cnf: { jkt: g.jkt } } : {}),
  });
}

async function apiKey(hub: Hub, token: string): Promise<Introspection> {
  const record = await hub.apiKeys.verify(token);
  if (!record) return INACTIVE;
  return compact({
    // A personal key (src/api-keys: `owner`) is its user, as toward the upstream.
    active: true, token_type: 'api_key', sub: record.owner?.sub ?? `api-key:${record.id}`, client_id: record.id,
    username: record.owner?.email ?? record.owner?.name ?? record.name,
    roles: record.roles, iat: record.createdAt, exp: record.expiresAt, iss: hub.config.jwt.issuer,
  });
}

/** Without the members that are undefined (a loop: entries/filter/fromEntries cost 4 % of an introspection). */
function compact<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const k in o) if (o[k] !== undefined) out[k] = o[k];
  return out as T;
}
