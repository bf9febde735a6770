/**
 * What a Principal may do: the permissions of its roles, narrowed by the scopes its token
 * carries (RFC 6749 §3.3: a scope can only narrow, never widen).
 */
import type { Principal } from '../authn/principal.ts';
import { allows, type Rbac } from './policy.ts';

/**
 * Only permission-shaped scopes (`ns:action`, `*`) narrow; OIDC scopes such as `openid profile`
 * say nothing about Mimir permissions, and a token carrying only those is not narrowed.
 */
const PERMISSION_SHAPED = /^(\*|[A-Za-z][\w-]*:[\w*:./@-]+)$/;

export function permissionScopes(scopes: readonly string[]): string[] {
  return scopes.filter((s) => PERMISSION_SHAPED.test(s));
}

/**
 * Whether the principal holds `needed`: its roles grant it and, when the token carries
 * permission scopes, one of them covers it too.
 *
 * @example
 * may(hub.rbac, principal, 'nodes:write')
 */
export function may(rbac: Rbac, principal: Pick<Principal, 'roles' | 'scopes'>, needed: string): boolean {
  if (!allows(rbac.permissionsFor(principal.roles), needed)) return false;
  const scoped = permissionScopes(principal.scopes);
  return scoped.length === 0 || allows(scoped, needed);
}

/** Permissions both lists grant, wildcards respected (`['*']` ∩ `['nodes:read']` = `['nodes:read']`). */
export function intersectPermissions(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a.filter((p) => allows(b, p)), ...b.filter((p) => allows(a, p))])];
}

/** The effective permission list of a principal (roles ∩ permission scopes). */
export function effectivePermissions(rbac: Rbac, principal: Pick<Principal, 'roles' | 'scopes'>): string[] {
  const fromRoles = rbac.permissionsFor(principal.roles);
  const scoped = permissionScopes(principal.scopes);
  return scoped.length ? intersectPermissions(fromRoles, scoped) : fromRoles;
}

/**
 * Delegation (user context, token exchange): the known roles whose every permission both
 * parties hold. A developer service account acting for an admin gets `developer`; acting for
 * a viewer, `viewer` — never more than either side.
 */
export function narrowRoles(rbac: Rbac, userPermissions: readonly string[], actorPermissions: readonly string[], candidates: readonly string[]): string[] {
  return [...new Set(candidates)].filter((role) => {
    const perms = rbac.config.roleMappings[role]?.permissions;
    return perms !== undefined && perms.every((p) => allows(userPermissions, p) && allows(actorPermissions, p));
  });
}

/**
 * The scope list of a delegated principal. An empty intersection must still narrow (an empty
 * scope list means "not narrowed"), so it becomes a permission no role grants.
 */
export const NO_PERMISSION = 'mimir:none';

export function delegatedScopes(userPermissions: readonly string[], actorPermissions: readonly string[]): string[] {
  const both = intersectPermissions(userPermissions, actorPermissions);
  return both.length ? both : [NO_PERMISSION];
}
