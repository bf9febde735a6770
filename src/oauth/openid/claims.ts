/**
 * OIDC Core §5.4: the claims each scope releases about the user, for the UserInfo endpoint and
 * the ID token. Only what the hub knows of the user: `name` (profile), a verified `email`
 * (the hub keeps an address only when the IdP verified it, or it is configured to trust it:
 * src/oidc/claims.ts), and the hub's `groups` and `roles` (scopes of the same names).
 */

/** What the hub knows of a user, as its tokens and sign-in sessions carry it. */
export interface UserFacts {
  name?: string | undefined;
  email?: string | undefined;
  groups?: readonly string[] | undefined;
  roles?: readonly string[] | undefined;
}

/** The claims `scopes` release, besides `sub` (always there). */
export function scopedClaims(scopes: readonly string[], user: UserFacts): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (scopes.includes('profile') && user.name) out.name = user.name;
  if (scopes.includes('email') && user.email) {
    out.email = user.email;
    out.email_verified = true;
  }
  if (scopes.includes('groups')) out.groups = [...user.groups ?? []];
  if (scopes.includes('roles')) out.roles = [...user.roles ?? []];
  return out;
}

/** Claims the UserInfo endpoint and ID tokens may carry (OIDC Discovery §3 `claims_supported`). */
export const CLAIMS_SUPPORTED = ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'at_hash', 'acr', 'amr', 'name', 'email', 'email_verified', 'groups', 'roles'];
