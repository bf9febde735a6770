/**
 * Scopes, one rule for every grant (RFC 6749 §3.3): a requested scope is a list of the hub's
 * permissions (src/authz `Authorizer.knows`) and, where a user signs in, the OpenID Connect
 * scopes that ask for claims or refresh (OIDC Core §5.4, §11). A scope the hub does not know is
 * refused with `invalid_scope` (RFC 6749 §4.1.2.1, §5.2), never ignored: ignoring it turned
 * `scope=bogus:unknown` into "nothing asked", which granted everything.
 */
import { OAuthError } from '../../errors.ts';
import { allows, covers } from '../../rbac/policy.ts';

/** OIDC Core §5.4 (claims) and §11 (offline access): scopes of a user's grant that are no permission. */
export const IDENTITY_SCOPES: readonly string[] = ['openid', 'profile', 'email', 'groups', 'roles', 'offline_access'];

/** What the scope rule needs to know of the hub: which permissions exist (src/authz). */
export interface ScopeVocabulary {
  knows(scope: string): boolean;
}

/** RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * The scope tokens of a `scope` parameter, each once. No parameter, or one holding no token
 * (`scope=` or spaces), is no scope asked.
 */
export function parseScope(requested: string | undefined): string[] {
  const asked = [...new Set((requested ?? '').split(' ').filter(Boolean))];
  if (asked.some((s) => !SCOPE_TOKEN.test(s))) throw new OAuthError('invalid_scope', 'The scope contains characters RFC 6749 §3.3 does not allow.');
  return asked;
}

/**
 * Splits a requested scope into permissions and identity scopes; anything else is unknown:
 * `invalid_scope`. `identity`: whether this grant speaks for a signed-in user (the identity
 * scopes mean nothing to a service account's own token).
 */
export function classifyScope(asked: readonly string[], vocabulary: ScopeVocabulary, identity: boolean): { permissions: string[]; identity: string[] } {
  const permissions: string[] = [];
  const claims: string[] = [];
  const unknown: string[] = [];
  for (const s of asked) {
    if (IDENTITY_SCOPES.includes(s)) (identity ? claims : unknown).push(s);
    else if (vocabulary.knows(s)) permissions.push(s);
    else unknown.push(s);
  }
  if (unknown.length) {
    throw new OAuthError('invalid_scope', `The scope ${unknown.slice(0, 5).map((s) => `"${s.slice(0, 64)}"`).join(', ')} is unknown here${identity ? '' : ' (a client acting for itself asks for permissions only)'}.`);
  }
  return { permissions, identity: claims };
}

/**
 * A client's own grant (client_credentials, token exchange, refresh): the requested scope may
 * only narrow what the client may have — each asked permission must be covered by `allowed`,
 * else `invalid_scope`. No permission asked → everything it may have, never an empty scope: an
 * empty scope narrows nothing (src/authz), so it would widen. Identity scopes are accepted only
 * where `allowedIdentity` lists them (a refresh keeps those first granted, RFC 6749 §6).
 */
export function grantScope(requested: string | undefined, allowed: readonly string[], vocabulary: ScopeVocabulary, allowedIdentity?: readonly string[]): string[] {
  const { permissions, identity } = classifyScope(parseScope(requested), vocabulary, allowedIdentity !== undefined);
  const refused = [...permissions.filter((s) => !allows(allowed, s)), ...identity.filter((s) => !allowedIdentity!.includes(s))];
  if (refused.length) throw new OAuthError('invalid_scope', `The scope ${refused.slice(0, 5).join(', ')} is not allowed for this client.`);
  const granted = permissions.length ? permissions : [...allowed];
  return [...granted, ...(permissions.length || identity.length ? identity : allowedIdentity ?? [])];
}

/**
 * The permissions a user grants a client (the authorization code flow): of each requested
 * permission, what the user holds — the permission itself, or the narrower ones of the user's
 * it covers (`mcp:*` asked, `mcp:tool:search` held → `mcp:tool:search`). Never more than was
 * asked, never more than the user holds (RFC 6749 §3.3: the server may grant less).
 */
export function narrowToHeld(requested: readonly string[], held: readonly string[]): string[] {
  const out = new Set<string>();
  for (const r of requested) {
    if (allows(held, r)) out.add(r);
    else for (const h of held) if (covers(r, h)) out.add(h);
  }
  return [...out];
}

export function allowedScopes(roles: readonly string[], explicit: readonly string[], rbac: { permissionsFor(roles: readonly string[]): string[] }): string[] {
  return explicit.length ? [...explicit] : rbac.permissionsFor(roles);
}
