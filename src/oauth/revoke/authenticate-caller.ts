/**
 * Who is calling the revocation or introspection endpoint: a confidential client by its secret
 * (RFC 7009 §2.1, RFC 7662 §2.1), a bearer of a hub credential (Bearer/DPoP token or API key), or
 * nobody. Wrong credentials fail (401); no credentials is "anonymous", which each endpoint judges.
 */
import type { Principal } from '../../authn/principal.ts';
import { serviceAccountFinder } from '../../cache/index.ts';
import type { Hub } from '../../hub.ts';
import { allows } from '../../rbac/policy.ts';
import type { ServiceAccountRecord } from '../../service-accounts/index.ts';
import { authenticateClient, readClientCredentials } from '../token/authenticate-client.ts';
import type { Params } from '../token/parse-body.ts';

export type Caller =
  | { kind: 'client'; clientId: string; account: ServiceAccountRecord; permissions: string[] }
  | { kind: 'principal'; principal: Principal; permissions: string[] }
  | { kind: 'anonymous'; permissions: [] };

export interface CallerRequest {
  params: Params;
  headers: Record<string, string | string[] | undefined>;
  cookies?: Record<string, string | undefined>;
  method: string;
  url: string;
}

export async function authenticateCaller(hub: Hub, req: CallerRequest): Promise<Caller> {
  const authorization = first(req.headers.authorization);
  const creds = readClientCredentials(req.params, authorization);
  if (creds) {
    const account = await authenticateClient(creds, hub.serviceAccounts, hub.config.serviceAccounts.enabled, serviceAccountFinder(hub.caches, hub.serviceAccounts));
    const permissions = account.scopes.length ? [...account.scopes] : hub.rbac.permissionsFor(account.roles);
    return { kind: 'client', clientId: account.clientId, account, permissions };
  }
  if (authorization !== undefined || req.headers['x-api-key'] !== undefined) {
    const principal = await hub.authenticator.authenticate({ headers: req.headers, ...(req.cookies ? { cookies: req.cookies } : {}), method: req.method, url: req.url });
    // A token narrowed by scope grants only that scope, whatever its roles allow.
    const fromRoles = hub.rbac.permissionsFor(principal.roles);
    const permissions = principal.scopes.length ? principal.scopes.filter((s) => allows(fromRoles, s)) : fromRoles;
    return { kind: 'principal', principal, permissions };
  }
  return { kind: 'anonymous', permissions: [] };
}

export function isAdminCaller(caller: Caller): boolean {
  return allows(caller.permissions, 'admin:manage');
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
