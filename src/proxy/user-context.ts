/**
 * PCTX flow 3 with a trusted header: a service account created with `--allow-user-context`
 * may say which user it acts for (`X-User-ID`, and optionally email and roles). The request
 * then runs as that user, `act.sub` = the service account (RFC 8693 §4.1 semantics), with only
 * what both may do. From anyone else the headers are ignored — and the caller is told so in
 * the audit log, since a spoofing attempt is worth seeing.
 */
import { isServiceAccount, type Principal } from '../authn/principal.ts';
import { delegatedScopes, narrowRoles } from '../authz/delegation.ts';
import type { Identities } from '../authz/identity.ts';
import type { Authorizer } from '../authz/index.ts';
import { OAuthError } from '../errors.ts';
import type { ServiceAccounts } from '../service-accounts/index.ts';

export interface UserContextNames {
  idHeader: string;
  emailHeader: string;
  rolesHeader: string;
}

export interface UserContextDeps {
  authorizer: Authorizer;
  identities: Identities;
  serviceAccounts: Pick<ServiceAccounts, 'get'>;
  names: UserContextNames;
}

export type UserContextResult =
  | { outcome: 'none'; principal: Principal }
  | { outcome: 'asserted'; principal: Principal }
  | { outcome: 'ignored'; principal: Principal; reason: 'not_a_service_account' | 'not_allowed' | 'no_user_id' };

const USER_ID = /^[\x21-\x7e](?:[\x20-\x7e]{0,254}[\x21-\x7e])?$/;
const EMAIL = /^[^\s@]{1,128}@[^\s@]{1,253}$/;
const ROLE = /^[A-Za-z0-9._:-]{1,64}$/;

/** Is this the token a service account got for itself (client_credentials)? */
export function isServiceAccountToken(p: Principal): boolean {
  return p.auth_method === 'jwt' && isServiceAccount(p);
}

/**
 * @example
 * const r = await applyUserContext(deps, principal, req.headers);
 * if (r.outcome === 'ignored') audit.record({ type: 'user_context_ignored', ... });
 */
export async function applyUserContext(deps: UserContextDeps, principal: Principal, headers: Record<string, string | string[] | undefined>): Promise<UserContextResult> {
  const id = single(headers, deps.names.idHeader);
  const email = single(headers, deps.names.emailHeader);
  const roles = single(headers, deps.names.rolesHeader);
  if (id === undefined && email === undefined && roles === undefined) return { outcome: 'none', principal };
  if (!isServiceAccountToken(principal)) return { outcome: 'ignored', principal, reason: 'not_a_service_account' };
  const account = await deps.serviceAccounts.get(principal.client_id!);
  if (!account || account.disabled || !account.allowUserContext) return { outcome: 'ignored', principal, reason: 'not_allowed' };
  if (id === undefined) return { outcome: 'ignored', principal, reason: 'no_user_id' };

  if (!USER_ID.test(id)) throw new OAuthError('invalid_request', `The ${deps.names.idHeader} header is not a valid user id.`);
  // The user is named by the id the hub gave them (src/authz/identity.ts), never a service's or a key's.
  const user = deps.identities.parse(id);
  if (!user) throw new OAuthError('invalid_request', `The ${deps.names.idHeader} header names no user (service accounts and API keys cannot be acted for; other providers' users are "<provider>:<sub>").`);
  if (email !== undefined && !EMAIL.test(email)) throw new OAuthError('invalid_request', `The ${deps.names.emailHeader} header is not an email address.`);
  const rbac = deps.authorizer.rbac;
  const userRoles = roles === undefined
    ? (rbac.config.defaultRole ? [rbac.config.defaultRole] : [])
    : roles.split(',').map((r) => r.trim()).filter(Boolean);
  if (userRoles.some((r) => !ROLE.test(r))) throw new OAuthError('invalid_request', `The ${deps.names.rolesHeader} header is not a comma-separated list of roles.`);

  const userPermissions = rbac.permissionsFor(userRoles);
  const actorPermissions = deps.authorizer.permissions(principal);
  const acting: Principal = {
    sub: user.sub,
    ...(user.provider !== undefined ? { provider: user.provider } : {}),
    roles: narrowRoles(rbac, userPermissions, actorPermissions, [...userRoles, ...principal.roles]),
    groups: [],
    scopes: delegatedScopes(userPermissions, actorPermissions),
    auth_method: principal.auth_method,
    client_id: principal.client_id!,
    act: { sub: principal.sub },
  };
  if (email !== undefined) acting.email = email;
  if (principal.credential_id !== undefined) acting.credential_id = principal.credential_id;
  if (principal.expires_at !== undefined) acting.expires_at = principal.expires_at;
  if (principal.resource !== undefined) acting.resource = [...principal.resource];
  return { outcome: 'asserted', principal: acting };
}

function single(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  if (Array.isArray(v)) {
    // Repeated identity headers are ambiguous: refuse rather than pick one.
    throw new OAuthError('invalid_request', `The ${name} header is repeated.`);
  }
  return v === undefined ? undefined : v.trim();
}
