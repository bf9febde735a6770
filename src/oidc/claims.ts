/**
 * Provider claims → Principal, per kind (fixtures/provider-claims/*.json), and the per-kind
 * rules a token must pass beyond signature, iss, aud and exp: Google `hd`, Azure tenants,
 * Cognito `token_use`, Keycloak `typ`.
 */
import type { Principal } from '../authn/principal.ts';
import { OAuthError } from '../errors.ts';
import type { ProviderSettings } from './providers.ts';

export type TokenUse = 'id' | 'access';

export interface MappedIdentity {
  principal: Principal;
  /** Azure sent a groups-overage marker instead of the groups (more than 200). */
  groupsOverage: boolean;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? v.split(' ').filter(Boolean) : []);

/**
 * Issue 15: claim values (role and group names, client ids) are looked up as object keys only as
 * own properties, so a role named `constructor` or `__proto__` is an unknown role, never
 * Object.prototype's member.
 */
function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/**
 * A claim value for a message: String() throws on a JSON object whose `toString` member is not a
 * function (`{"toString": 1}`), which turned a refusal into a 500 (issue 15).
 */
function shown(v: unknown): string {
  return (typeof v === 'string' ? v : JSON.stringify(v) ?? typeof v).slice(0, 100);
}

function at(claims: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = own(cur as Record<string, unknown>, part);
  }
  return cur;
}

/** Rejects tokens that break a kind's rules. `access_denied` (403) for policy, `invalid_token` otherwise. */
export function checkProviderRules(p: ProviderSettings, claims: Record<string, unknown>, use: TokenUse): void {
  if (p.hostedDomain !== undefined && claims.hd !== p.hostedDomain) {
    // Google: restrict by the signed hd claim, never by the request's hd parameter.
    throw new OAuthError('access_denied', `Only accounts of ${p.hostedDomain} may sign in here.`, { detail: `hd ${shown(claims.hd ?? '(none)')} refused` });
  }
  if (p.kind === 'azure') {
    const tid = claims.tid;
    if (typeof tid !== 'string' || !/^[0-9a-f-]{36}$/i.test(tid)) throw new OAuthError('invalid_token', 'The token has no valid tenant id (tid).');
    if (p.allowedTenants.length && !p.allowedTenants.includes(tid)) {
      throw new OAuthError('access_denied', 'Your organisation (tenant) is not allowed to sign in here.', { detail: `tenant ${tid} refused` });
    }
    // Multi-tenant: the issuer is the template with the token's own tid (never another tenant's).
    const ok = p.issuerTemplate ? claims.iss === tenantIssuer(p.issuerTemplate, tid) : typeof claims.iss !== 'string' || claims.iss.includes(tid);
    if (!ok) throw new OAuthError('invalid_token', 'The token issuer does not match its tenant.', { detail: `iss does not name tid ${tid}` });
  }
  if (p.kind === 'cognito' && claims.token_use !== undefined && claims.token_use !== use) {
    // Cognito: an ID token must never pass as an access token or the reverse.
    throw new OAuthError('invalid_token', `The token is a Cognito ${shown(claims.token_use)} token, not an ${use} token.`);
  }
  if (p.kind === 'cognito' && use === 'access' && claims.token_use !== 'access') {
    throw new OAuthError('invalid_token', 'The Cognito token has no token_use "access".');
  }
  if (p.kind === 'keycloak' && use === 'access' && claims.typ !== undefined && claims.typ !== 'Bearer') {
    throw new OAuthError('invalid_token', `A Keycloak ${shown(claims.typ)} token is not an access token.`);
  }
}

const TENANT_ID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';

/** `https://login.microsoftonline.com/{tenantid}/v2.0` with a tenant substituted. */
export function tenantIssuer(template: string, tid: string): string {
  return template.replace('{tenantid}', tid);
}

/** Whether `iss` is the provider's issuer — or, for a multi-tenant template, that template for some tenant. */
/**
 * The `iss` values a provider's tokens may carry. Google documents its issuer as
 * https://accounts.google.com and still issues the legacy scheme-less `accounts.google.com`;
 * its own verifiers accept both (fixtures/provider-claims/google.json).
 */
export function acceptedIssuers(p: ProviderSettings): string[] {
  if (p.kind === 'google' && p.issuer === 'https://accounts.google.com') return [p.issuer, 'accounts.google.com'];
  return [p.issuer];
}

export function issuerMatches(p: ProviderSettings, iss: string): boolean {
  if (!p.issuerTemplate) return acceptedIssuers(p).includes(iss);
  const [head, tail] = p.issuerTemplate.split('{tenantid}') as [string, string];
  return iss.startsWith(head) && iss.endsWith(tail) && new RegExp(`^${TENANT_ID}$`).test(iss.slice(head.length, iss.length - tail.length));
}

/** Roles and groups the kind puts in its claims, before mapping. */
function sourceRolesAndGroups(p: ProviderSettings, c: Record<string, unknown>): { roles: string[]; groups: string[] } {
  if (p.rolesClaim) return { roles: strings(at(c, p.rolesClaim)), groups: strings(c.groups) };
  switch (p.kind) {
    case 'okta': return { roles: strings(c.groups), groups: strings(c.groups) };
    case 'auth0': {
      // Auth0 role claims must be namespaced: any http(s) claim name ending in /roles.
      const roles = Object.entries(c).filter(([k]) => /^https?:\/\/.+\/roles$/.test(k)).flatMap(([, v]) => strings(v));
      return { roles, groups: strings(Object.entries(c).find(([k]) => /^https?:\/\/.+\/groups$/.test(k))?.[1]) };
    }
    case 'azure': return { roles: strings(c.roles), groups: strings(c.groups) };
    case 'google': return { roles: [], groups: [] };
    case 'keycloak': {
      const resource = (c.resource_access && typeof c.resource_access === 'object' ? c.resource_access : {}) as Record<string, unknown>;
      const clients = [p.clientId, ...(p.audience ? [p.audience] : [])];
      const clientRoles = clients.flatMap((id) => {
        const entry = own(resource, id);
        return entry && typeof entry === 'object' ? strings(own(entry as Record<string, unknown>, 'roles')) : [];
      });
      return { roles: [...strings(at(c, 'realm_access.roles')), ...clientRoles], groups: strings(c.groups) };
    }
    case 'cognito': return { roles: strings(c['cognito:groups']), groups: strings(c['cognito:groups']) };
    case 'generic': return { roles: strings(c.roles), groups: strings(c.groups) };
  }
}

/**
 * Claims a userinfo answer never supplies: they describe the token rather than the user
 * (OIDC Core §2), or they are what the kind's rules check on the signed ID token
 * ({@link checkProviderRules}: `hd`, `tid`, `token_use`, `typ`; Azure's groups-overage marker).
 */
const ID_TOKEN_ONLY = new Set([
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'sid', 'jti',
  'typ', 'token_use', 'tid', 'hd', '_claim_names', '_claim_sources', 'hasgroups', 'client_id', 'cid', 'scope', 'scp',
]);

/**
 * What a sign-in shows of the user that the ID token does not carry: `name`, `email` (a verified
 * one, see {@link verifiedEmail}), `roles` (the kind's role or group claim; Google has none).
 * Empty: the ID token says it all and userinfo need not be asked.
 */
export function missingProfileClaims(p: ProviderSettings, c: Record<string, unknown>): string[] {
  const missing: string[] = [];
  if (typeof (c.name ?? c.preferred_username ?? c['cognito:username'] ?? c.username) !== 'string') missing.push('name');
  if (verifiedEmail(p, c) === undefined) missing.push('email');
  const { roles, groups } = sourceRolesAndGroups(p, c);
  if (p.kind !== 'google' && roles.length === 0 && groups.length === 0) missing.push('roles');
  return missing;
}

/**
 * The ID token's claims completed by a userinfo answer (OIDC Core §5.3): a claim the ID token
 * has is kept as signed; one it lacks is taken from userinfo, except the token's own claims
 * ({@link ID_TOKEN_ONLY}). `email_verified` travels with its `email`: userinfo's verification
 * is used only for the address userinfo gave (or the same address the ID token gave).
 * The caller has checked that userinfo's `sub` is the ID token's (§5.3.2).
 */
export function withUserinfoClaims(idToken: Record<string, unknown>, userinfo: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...idToken };
  for (const [name, value] of Object.entries(userinfo)) {
    if (ID_TOKEN_ONLY.has(name) || name === 'email' || name === 'email_verified' || Object.hasOwn(idToken, name)) continue;
    out[name] = value;
  }
  if (Object.hasOwn(idToken, 'email')) {
    if (!Object.hasOwn(idToken, 'email_verified') && Object.hasOwn(userinfo, 'email_verified') && userinfo.email === idToken.email) {
      out.email_verified = userinfo.email_verified;
    }
  } else if (Object.hasOwn(userinfo, 'email')) {
    out.email = userinfo.email;
    if (Object.hasOwn(userinfo, 'email_verified')) out.email_verified = userinfo.email_verified;
    else delete out.email_verified;
  }
  return out;
}

/** Applies `roleMappings` (IdP role → RBAC roles, identity by default) and `groupsToRoles`. */
export function mapRoles(p: ProviderSettings, roles: readonly string[], groups: readonly string[]): string[] {
  const out = new Set<string>();
  for (const r of roles) for (const m of own(p.roleMappings, r) ?? [r]) out.add(m);
  for (const g of groups) for (const m of own(p.groupsToRoles, g) ?? []) out.add(m);
  return [...out];
}

/** The email the Principal may carry, by the rule documented at {@link mapClaims}; else none. */
export function verifiedEmail(p: ProviderSettings, c: Record<string, unknown>): string | undefined {
  const email = c.email ?? (p.kind === 'azure' ? c.preferred_username : undefined);
  if (typeof email !== 'string' || email === '') return undefined;
  if (p.trustEmail || p.kind === 'azure') return email;
  return c.email_verified === true || c.email_verified === 'true' ? email : undefined;
}

/**
 * A provider's claims (ID token, access token, introspection or userinfo answer) as a Principal:
 * roles and groups per kind, mapped by `roleMappings`/`groupsToRoles` (own properties only).
 *
 * Email (issue 15): it goes upstream as X-User-Email and into the hub's tokens, where it is taken
 * as the user's identity, so an address the IdP has not verified is left off the Principal and
 * the sign-in goes on without it. Per kind (fixtures/provider-claims/*.json):
 * - okta, auth0, google, keycloak, cognito, generic: only with `email_verified` true (boolean, or
 *   the string "true" as Cognito's userinfo and Google's tokeninfo send it); false or absent is
 *   unverified. Okta and Keycloak access tokens usually carry no `email_verified`: no email.
 * - azure: never sends `email_verified`; `email` (or `preferred_username`) is used as Microsoft
 *   documents it, the tenant vouching for its own accounts.
 * - any kind with `trustEmail: true` (MIMIR_OAUTH_TRUST_EMAIL): the email is used as sent.
 *
 * @example
 * mapClaims(provider, { sub: 'u1', email: 'a@example.com', email_verified: true }, 'session').principal.email // 'a@example.com'
 */
export function mapClaims(p: ProviderSettings, c: Record<string, unknown>, authMethod: Principal['auth_method']): MappedIdentity {
  if (typeof c.sub !== 'string' || c.sub === '') throw new OAuthError('invalid_token', 'The token has no subject.');
  const { roles, groups } = sourceRolesAndGroups(p, c);
  const names = c._claim_names && typeof c._claim_names === 'object' ? c._claim_names as Record<string, unknown> : {};
  const groupsOverage = p.kind === 'azure' && (Object.hasOwn(names, 'groups') || c.hasgroups === true);
  const principal: Principal = {
    sub: c.sub,
    roles: mapRoles(p, roles, groups),
    groups,
    scopes: strings(c.scp ?? c.scope),
    provider: p.id,
    auth_method: authMethod,
  };
  const email = verifiedEmail(p, c);
  if (email !== undefined) principal.email = email;
  const name = c.name ?? c.preferred_username ?? c['cognito:username'] ?? c.username;
  if (typeof name === 'string') principal.name = name;
  const tenant = p.kind === 'azure' ? c.tid : p.kind === 'google' ? c.hd : undefined;
  if (typeof tenant === 'string') principal.tenant = tenant;
  const clientId = c.client_id ?? c.azp ?? c.cid;
  if (typeof clientId === 'string') principal.client_id = clientId;
  if (typeof c.exp === 'number') principal.expires_at = c.exp;
  if (typeof c.jti === 'string') principal.credential_id = c.jti;
  // An IdP access token that says when and how its user authenticated (RFC 9068 §2.2.1, OIDC
  // Core §2) meets a step-up (RFC 9470) by it; one that does not, never.
  if (authMethod === 'oauth') {
    if (typeof c.auth_time === 'number' && Number.isFinite(c.auth_time)) principal.auth_time = Math.floor(c.auth_time);
    if (typeof c.acr === 'string' && c.acr.length <= 200) principal.acr = c.acr;
    // RFC 7800 §3.1: a sender-constrained token. Bound to a DPoP key (RFC 9449 §6), the hub checks
    // the proof where the token is used (src/authn); bound any other way (mTLS, RFC 8705 §3), it
    // cannot check the binding, and a token it cannot hold to its key is refused, not taken as bearer.
    if (c.cnf !== undefined) {
      const jkt = c.cnf !== null && typeof c.cnf === 'object' ? (c.cnf as { jkt?: unknown }).jkt : undefined;
      if (typeof jkt !== 'string' || jkt === '' || Object.keys(c.cnf as object).length !== 1) {
        throw new OAuthError('invalid_token', 'The access token is bound to a key this server cannot check (only DPoP-bound tokens, RFC 9449).');
      }
      principal.cnf = { jkt };
    }
  }
  return { principal, groupsOverage };
}
