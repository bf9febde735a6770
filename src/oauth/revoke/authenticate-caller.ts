/**
 * Who is calling the revocation or introspection endpoint: a confidential client by its secret
 * or its key (RFC 7009 §2.1, RFC 7662 §2.1; private_key_jwt, RFC 7523 §2.2) — a service account,
 * or an OAuth client registered with a secret or keys (RFC 7591), with the method it registered —
 * a bearer of a hub credential (Bearer/DPoP
 * token or API key), or nobody. Wrong credentials fail (401); no credentials is "anonymous",
 * which each endpoint judges. What a caller may do is decided by the one rule (src/authz).
 */
import type { Principal } from '../../authn/principal.ts';
import { serviceAccountFinder } from '../../cache/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import type { ServiceAccountRecord } from '../../service-accounts/index.ts';
import { authenticateClient, authenticateOAuthClient, readClientCredentials, type ClientCredentials } from '../token/authenticate-client.ts';
import type { Params } from '../token/parse-body.ts';

export type Caller =
  | { kind: 'client'; clientId: string; account: ServiceAccountRecord; principal: Principal }
  | { kind: 'oauth_client'; clientId: string }
  | { kind: 'principal'; principal: Principal }
  /** No credentials; `clientId`: the public client it names (RFC 7009 §2.1: it may revoke only tokens issued to it). */
  | { kind: 'anonymous'; clientId?: string };

export interface CallerRequest {
  params: Params;
  headers: Record<string, string | string[] | undefined>;
  cookies?: Record<string, string | undefined>;
  method: string;
  url: string;
}

/** A service account authenticating as itself, as the one rule sees it. */
export function accountPrincipal(account: ServiceAccountRecord): Principal {
  return {
    sub: account.clientId, client_id: account.clientId, roles: [...account.roles], groups: [], scopes: [...account.scopes],
    auth_method: 'client', credential_id: account.clientId,
    allow_user_context: account.allowUserContext, allow_token_exchange: account.allowTokenExchange,
  };
}

export async function authenticateCaller(hub: Hub, req: CallerRequest): Promise<Caller> {
  const authorization = first(req.headers.authorization);
  const creds = readClientCredentials(req.params, authorization);
  if (creds) return authenticateConfidentialClient(hub, creds);
  if (authorization !== undefined || req.headers['x-api-key'] !== undefined) {
    const principal = await hub.authenticator.authenticate({ headers: req.headers, ...(req.cookies ? { cookies: req.cookies } : {}), method: req.method, url: req.url });
    return { kind: 'principal', principal };
  }
  return typeof req.params.client_id === 'string' ? { kind: 'anonymous', clientId: req.params.client_id } : { kind: 'anonymous' };
}

/** A service account by its secret or key, else an OAuth client registered with a secret or key, by the method it registered. */
async function authenticateConfidentialClient(hub: Hub, creds: ClientCredentials): Promise<Caller> {
  const find = serviceAccountFinder(hub.caches, hub.serviceAccounts);
  if (await find(creds.clientId)) {
    const account = await authenticateClient(hub, creds, find);
    return { kind: 'client', clientId: account.clientId, account, principal: accountPrincipal(account) };
  }
  // By the method it registered (a secret sent another way, or an assertion for a secret client, fails).
  const client = await authenticateOAuthClient(hub, creds.clientId, creds).catch(() => null);
  if (!client || client.token_endpoint_auth_method !== creds.method) throw new OAuthError('invalid_client', 'Client authentication failed.');
  return { kind: 'oauth_client', clientId: client.client_id };
}

/** The principal a caller acts as, for the one rule; none for anonymous callers and OAuth clients (they hold no permissions). */
export function callerPrincipal(caller: Caller): Principal | undefined {
  return caller.kind === 'client' || caller.kind === 'principal' ? caller.principal : undefined;
}

/** Whether the caller may act on any credential (the admin:manage permission, for this endpoint's path). */
export function isAdminCaller(hub: Hub, caller: Caller, path: string): boolean {
  const p = callerPrincipal(caller);
  return p !== undefined && hub.authorizer.decide(p, { permission: 'admin:manage', path }).allowed;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
