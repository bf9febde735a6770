import { OAuthError } from '../../errors.ts';
import { allows, type Rbac } from '../../rbac/policy.ts';

/**
 * RFC 6749 §3.3: the requested scope may only narrow what the client may have. No scope
 * requested — no parameter, or one holding no scope token (`scope=` or spaces) — → everything it
 * may have, never an empty scope: an empty scope narrows nothing (src/authz), so it would widen.
 */
export function grantScope(requested: string | undefined, allowed: readonly string[]): string[] {
  const asked = [...new Set((requested ?? '').split(' ').filter(Boolean))];
  if (asked.length === 0) return [...allowed];
  if (asked.some((s) => !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s))) throw new OAuthError('invalid_scope', 'The scope contains characters RFC 6749 §3.3 does not allow.');
  const refused = asked.filter((s) => !allows(allowed, s));
  if (refused.length) throw new OAuthError('invalid_scope', `The scope ${refused.slice(0, 5).join(', ')} is not allowed for this client.`);
  return asked;
}

export function allowedScopes(roles: readonly string[], explicit: readonly string[], rbac: Rbac): string[] {
  return explicit.length ? [...explicit] : rbac.permissionsFor(roles);
}
