/**
 * The one authorization rule. Every surface (the proxy and its MCP tool checks, the admin API,
 * revocation and introspection callers, `/auth/me`, the Fastify and Express adapters, the fast
 * path) asks {@link Authorizer.decide}; nothing else grants or refuses a permission.
 *
 * Effective permissions = the permissions of the principal's roles (Mimir's rbac.json)
 *   ∩ the credential's scope (RFC 6749 §3.3: a scope only narrows)
 *   ∩ the delegating actor's (baked into a delegated token's scope when it is issued: token
 *     exchange, user context).
 * Per credential kind:
 *   - a hub access token (`jwt`) is narrowed by its `scope` claim, entry by entry: an entry that
 *     is no permission grants nothing; an empty scope narrows nothing (a sign-in's own tokens);
 *   - an API key or a service account authenticating as a client, by the scopes set when it
 *     was created (none set: its roles' permissions);
 *   - an IdP access token (`oauth`), by the scopes in Mimir's permission vocabulary it carries,
 *     if any (its other scopes are the IdP's own, such as `openid profile`);
 *   - a session, by nothing beyond its roles.
 * Resource binding (RFC 8707): a credential restricted to resources (`Principal.resource`) is
 * good only for paths within one of them; one bound to the origin root, for every path.
 * Step-up (RFC 9470): an action may also ask how recently and how strongly the user
 * authenticated (a route rule's `maxAge` / `acr`); a credential that holds the permission but
 * not that authentication is refused with `insufficient_user_authentication`.
 */
import type { Principal } from '../authn/principal.ts';
import { allows, covers, type Rbac } from '../rbac/policy.ts';
import { DEFAULT_ROUTES } from '../rbac/routes.ts';
import { requiresAuthentication, unmetAuthentication, type AuthenticationRequirement } from './authentication.ts';

/** What a principal wants to do. */
export interface Action {
  /** The permission needed; `null`: any authenticated principal. */
  permission: string | null;
  /** The request path (query aside), for resource binding. */
  path: string;
  /** RFC 9470: how recently / strongly the user must have authenticated (a route rule's `maxAge`, `acr`). */
  authentication?: AuthenticationRequirement | undefined;
}

export type Decision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: 'insufficient_scope'; readonly permission: string }
  | { readonly allowed: false; readonly reason: 'wrong_resource'; readonly resource: readonly string[] }
  | { readonly allowed: false; readonly reason: 'insufficient_user_authentication'; readonly unmet: 'max_age' | 'acr'; readonly required: AuthenticationRequirement };

const ALLOWED: Decision = Object.freeze({ allowed: true });

/** `ns:action` or `*`: the shape of a permission in Mimir's vocabulary. */
const PERMISSION_SHAPED = /^(\*|[A-Za-z][\w-]*:[\w*:./@-]+)$/;

export function isPermission(scope: string): boolean {
  return PERMISSION_SHAPED.test(scope);
}

/** Flags of a service account that let it speak for others: a caller must hold them to hand them out. */
export interface CredentialRights {
  roles?: readonly string[];
  scopes?: readonly string[];
  allowUserContext?: boolean;
  allowTokenExchange?: boolean;
}

/** The hub's own permissions, known whatever the RBAC configuration says (src/admin, introspection, metrics, the proxy, MCP tools). */
const HUB_PERMISSIONS = ['admin:manage', 'introspect', 'metrics:read', 'upstream:access', 'mcp:*'];

/** The effective permissions and upstream roles of one (kind of credential, roles, scope). */
interface Held { permissions: readonly string[]; upstreamRoles?: readonly string[] }
interface HeldNode { next?: Map<string, HeldNode>; end?: HeldNode; held?: Held }
/** Nodes {@link Authorizer}'s memo holds at most (a few per combination of roles and scope). */
const MEMO_NODES = 10_000;

export class Authorizer {
  readonly rbac: Rbac;
  /** Every permission this hub's configuration names (roles, route table, the hub's own). */
  readonly #vocabulary: ReadonlySet<string>;
  readonly #now: () => number;
  /** {@link #held}'s answers, by kind of credential, then role after role, then scope after scope. */
  #memo = new Map<string, HeldNode>();
  #memoNodes = 0;

  constructor(rbac: Rbac, options: { now?: () => number } = {}) {
    this.rbac = rbac;
    this.#now = options.now ?? Date.now;
    const named = new Set(HUB_PERMISSIONS);
    for (const role of Object.values(rbac.config.roleMappings)) for (const p of role.permissions) named.add(p);
    for (const rule of rbac.config.routes ?? DEFAULT_ROUTES) if (rule.permission) named.add(rule.permission);
    named.delete('*');
    this.#vocabulary = named;
  }

  /**
   * Whether `scope` names a permission of this hub (RFC 6749 §3.3: the authorization server
   * defines its scopes): `*`, a permission the configuration names, one a named `ns:*` covers
   * (`mcp:tool:search` under `mcp:*`), or `ns:*` for a namespace it names. A scope the hub does
   * not know is refused where it is asked for (src/oauth/token/scope.ts), never granted: `*` in
   * a role covers any string, so asking an admin's token for `bogus:unknown` must not succeed.
   *
   * @example
   * hub.authorizer.knows('nodes:read') // true
   * hub.authorizer.knows('bogus:unknown') // false
   */
  knows(scope: string): boolean {
    if (scope === '*' || this.#vocabulary.has(scope)) return true;
    for (const p of this.#vocabulary) {
      if (p.endsWith(':*') && covers(p, scope)) return true;
      if (scope.endsWith(':*') && p.startsWith(scope.slice(0, -1))) return true;
    }
    return false;
  }

  /**
   * The principal's effective permissions (a fresh array).
   *
   * @example
   * hub.authorizer.permissions(principal) // ['nodes:read', 'search:execute']
   */
  permissions(p: Pick<Principal, 'roles' | 'scopes' | 'auth_method'>): string[] {
    return [...this.#held(p).permissions];
  }

  /**
   * The effective permissions and upstream roles of one (roles, scope, kind of credential), worked
   * out once: the RBAC table is fixed for the Authorizer's life and the same few combinations come
   * back on every request (`/auth/me` and the proxy ask for both on each). Bounded, in case
   * combinations are many.
   */
  #held(p: Pick<Principal, 'roles' | 'scopes' | 'auth_method'>): Held {
    const kind = p.auth_method === 'session' || p.auth_method === 'oauth' ? p.auth_method : 'other';
    // A walk down maps of the very strings (no key is built, nothing is serialized: the roles and
    // scopes are the principal's own, one lookup each); the end of the roles is its own edge, so
    // no list of roles can pass for another list's roles followed by scopes.
    let node = this.#memo.get(kind);
    if (node === undefined) this.#memo.set(kind, node = this.#node());
    for (const role of p.roles) node = this.#edge(node, role);
    node = node.end ??= this.#node();
    if (kind !== 'session') for (const scope of p.scopes) node = this.#edge(node, scope);
    let found = node.held;
    if (found === undefined) {
      const fromRoles = this.rbac.permissionsFor(p.roles);
      const limit = scopeLimit(p);
      found = node.held = { permissions: limit === undefined ? fromRoles : intersectPermissions(fromRoles, limit) };
    }
    return found;
  }

  #edge(node: HeldNode, name: string): HeldNode {
    let next = node.next?.get(name);
    if (next === undefined) (node.next ??= new Map()).set(name, next = this.#node());
    return next;
  }

  /** A node of {@link #memo}; bounded, in case combinations are many (then it starts over). */
  #node(): HeldNode {
    if (++this.#memoNodes > MEMO_NODES) {
      this.#memoNodes = 1;
      this.#memo = new Map();
    }
    return {};
  }

  /** Whether the principal holds `permission` (resource binding aside: see {@link decide}). */
  holds(p: Pick<Principal, 'roles' | 'scopes' | 'auth_method'>, permission: string): boolean {
    if (!allows(this.rbac.permissionsFor(p.roles), permission)) return false;
    const limit = scopeLimit(p);
    return limit === undefined || allows(limit, permission);
  }

  /**
   * The decision for one action.
   *
   * @example
   * const d = hub.authorizer.decide(principal, { permission: 'admin:manage', path: '/auth/admin/api-keys' });
   * if (!d.allowed) throw refusal(d);
   */
  decide(p: Principal, action: Action): Decision {
    if (p.resource !== undefined && !withinResource(p.resource, action.path)) {
      return { allowed: false, reason: 'wrong_resource', resource: p.resource };
    }
    if (action.permission !== null && !this.holds(p, action.permission)) {
      return { allowed: false, reason: 'insufficient_scope', permission: action.permission };
    }
    // After the permission: signing in again cannot give a permission the user does not hold.
    if (requiresAuthentication(action.authentication)) {
      const unmet = unmetAuthentication(p, action.authentication, Math.floor(this.#now() / 1000));
      if (unmet) return { allowed: false, reason: 'insufficient_user_authentication', unmet, required: action.authentication };
    }
    return ALLOWED;
  }

  /**
   * What `caller` would hand out or take control of beyond what it holds itself, or undefined:
   * the first permission (of `rights.roles` or `rights.scopes`) or flag it lacks. The privilege
   * ceiling of the admin API: nobody creates or controls a credential stronger than their own.
   */
  exceeds(caller: Principal, rights: CredentialRights): string | undefined {
    const held = this.permissions(caller);
    for (const p of rights.roles ? this.rbac.permissionsFor(rights.roles) : []) if (!allows(held, p)) return p;
    for (const s of rights.scopes ?? []) if (!allows(held, s)) return s;
    // A flag that lets a service speak for any user is held by whoever holds everything, or by
    // a service account that has the flag itself.
    const all = allows(held, '*');
    if (rights.allowUserContext && !all && !caller.allow_user_context) return 'allow_user_context';
    if (rights.allowTokenExchange && !all && !caller.allow_token_exchange) return 'allow_token_exchange';
    return undefined;
  }

  /**
   * The roles told to the upstream (X-User-Roles, Mimir JWT `roles`): the principal's RBAC roles
   * whose every permission it effectively holds. An unknown role or one its scope cuts down is
   * not said: Mimir reads roles, not scopes, and would grant the whole role.
   */
  upstreamRoles(p: Pick<Principal, 'roles' | 'scopes' | 'auth_method'>): string[] {
    const found = this.#held(p);
    if (found.upstreamRoles === undefined) {
      const held = found.permissions;
      const out: string[] = [];
      // The default role stands in when none is known, as it does for the permissions.
      for (const role of this.rbac.effectiveRoles(p.roles)) {
        const perms = this.rbac.rolePermissions(role);
        if (perms !== undefined && perms.every((perm) => allows(held, perm))) out.push(role);
      }
      found.upstreamRoles = out;
    }
    return [...found.upstreamRoles];
  }
}

/** The scope that narrows this principal's roles, or undefined when nothing narrows them. */
function scopeLimit(p: Pick<Principal, 'scopes' | 'auth_method'>): readonly string[] | undefined {
  switch (p.auth_method) {
    case 'session':
      return undefined;
    case 'oauth': {
      const shaped = p.scopes.filter(isPermission);
      return shaped.length ? shaped : undefined;
    }
    default:
      return p.scopes.length ? p.scopes : undefined;
  }
}

/** Permissions both lists grant, wildcards respected (`['*']` ∩ `['nodes:read']` = `['nodes:read']`). */
export function intersectPermissions(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a.filter((p) => allows(b, p)), ...b.filter((p) => allows(a, p))])];
}

/**
 * Whether `path` lies within one of the resources (absolute URLs). Compared as Express routes
 * the upstream: case-insensitive, one trailing slash ignored, by whole segments.
 */
export function withinResource(resources: readonly string[], path: string): boolean {
  const p = path.toLowerCase().replace(/\/+$/, '');
  for (const r of resources) {
    let base: string;
    try { base = new URL(r).pathname.toLowerCase().replace(/\/+$/, ''); } catch { continue; }
    if (base === '' || p === base || p.startsWith(`${base}/`)) return true;
  }
  return false;
}
