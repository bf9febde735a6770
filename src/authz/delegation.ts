/**
 * Delegation (user context, token exchange): what a service acting for a user may do is what
 * both may do. The result is baked into the delegated principal's roles and scope when it is
 * made, so the one rule (src/authz/index.ts) needs to know nothing more about the actor.
 */
import { allows, type Rbac } from '../rbac/policy.ts';
import { intersectPermissions } from './index.ts';

/**
 * The known roles whose every permission both parties hold. A developer service account acting
 * for an admin gets `developer`; acting for a viewer, `viewer` — never more than either side.
 */
export function narrowRoles(rbac: Rbac, userPermissions: readonly string[], actorPermissions: readonly string[], candidates: readonly string[]): string[] {
  return [...new Set(candidates)].filter((role) => {
    const perms = rbac.rolePermissions(role);
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
