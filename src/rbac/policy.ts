/**
 * RBAC in Mimir's own rbac.json format: `{version, claimPath, defaultRole, roleMappings: {role:
 * {description, permissions[]}}}`. Permissions are `ns:action`; `*` grants all, `ns:*` a namespace.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describeJsonError } from '../config/json-error.ts';

export const rbacSchema = z.object({
  version: z.string().optional(),
  claimPath: z.string().default('roles'),
  defaultRole: z.string().optional(),
  roleMappings: z.record(z.string(), z.object({
    description: z.string().optional(),
    permissions: z.array(z.string()),
  })),
  /** Hub addition (optional; Mimir ignores it): method+path → permission, first match wins. See routes.ts. */
  routes: z.array(z.object({
    method: z.string().regex(/^(\*|[A-Z]+(\|[A-Z]+)*)$/, { error: 'is not "*" or METHOD|METHOD' }),
    path: z.string().regex(/^\//, { error: 'does not start with /' }),
    permission: z.string().min(1).nullable(),
    /** RFC 9470 step-up: seconds since the user authenticated, at most. */
    maxAge: z.number({ error: 'must be a number of seconds' }).int({ error: 'must be a whole number of seconds' }).positive({ error: 'must be a positive number of seconds' }).optional(),
    /** RFC 9470 step-up: the authentication context class (`acr`) the user must have authenticated with. */
    acr: z.string({ error: 'must be a string (an acr value)' }).trim().min(1, { error: 'must be a non-empty acr value' }).max(200, { error: 'must be at most 200 characters' }).optional(),
  })).optional(),
});

export type RbacConfig = z.infer<typeof rbacSchema>;

/** Mimir's shipped default (the same as its rbac.json), used when MIMIR_RBAC_CONFIG is unset. */
export const DEFAULT_RBAC: RbacConfig = {
  version: '1.0',
  claimPath: 'roles',
  defaultRole: 'viewer',
  roleMappings: {
    admin: { description: 'Full system access - can manage all resources', permissions: ['*'] },
    developer: {
      description: 'Read/write access for development work',
      permissions: ['nodes:read', 'nodes:write', 'nodes:delete', 'search:execute', 'orchestration:read', 'orchestration:write',
        'orchestration:execute', 'orchestration:cancel', 'files:index', 'files:read', 'chat:use', 'mcp:*'],
    },
    analyst: {
      description: 'Read and query access for data analysis',
      permissions: ['nodes:read', 'search:execute', 'orchestration:read', 'files:read', 'chat:use'],
    },
    viewer: {
      description: 'Read-only access to public resources',
      permissions: ['nodes:read', 'search:execute', 'orchestration:read', 'files:read'],
    },
  },
};

/**
 * Roles of the hub's own, for its own permissions, present in every RBAC configuration that does
 * not define the same name (Mimir's rbac.json has no word for them): a resource server that
 * introspects tokens, a Prometheus scraper. A scope can only narrow a role, so these are how a
 * service account comes to hold `introspect` or `metrics:read` without holding `*`.
 */
export const HUB_ROLES: RbacConfig['roleMappings'] = {
  introspector: { description: 'Resource servers: may introspect tokens (RFC 7662)', permissions: ['introspect'] },
  'metrics-reader': { description: 'May read the hub\'s Prometheus metrics', permissions: ['metrics:read'] },
};

export class Rbac {
  readonly config: RbacConfig;
  readonly #memo = new Map<string, readonly string[]>();
  constructor(config: RbacConfig = DEFAULT_RBAC) {
    this.config = { ...config, roleMappings: { ...HUB_ROLES, ...config.roleMappings } };
  }

  /** Roles as given, or the default role when none is known. Unknown roles grant nothing. */
  effectiveRoles(roles: readonly string[]): string[] {
    const known = roles.filter((r) => this.isKnownRole(r));
    if (known.length === 0 && this.config.defaultRole) return [this.config.defaultRole];
    return [...new Set(roles)];
  }

  /** The permissions these roles grant (a fresh array: callers may change it). */
  permissionsFor(roles: readonly string[]): string[] {
    // Once per distinct list of roles: the table is fixed for the Rbac's life and the same few
    // role sets come back on every request. Bounded, in case roles are many.
    const key = JSON.stringify(roles);
    let found = this.#memo.get(key);
    if (found === undefined) {
      const out = new Set<string>();
      for (const role of this.effectiveRoles(roles)) {
        for (const p of this.rolePermissions(role) ?? []) out.add(p);
      }
      found = [...out];
      if (this.#memo.size >= 1000) this.#memo.clear();
      this.#memo.set(key, found);
    }
    return [...found];
  }

  /**
   * Own roles only: a role named like an Object.prototype member (`constructor`, `__proto__`,
   * `toString`) is as unknown as any other name the file does not define.
   */
  isKnownRole(role: string): boolean {
    return Object.hasOwn(this.config.roleMappings, role);
  }

  /** The permissions one role grants, or undefined for a role the configuration does not define. */
  rolePermissions(role: string): readonly string[] | undefined {
    return this.isKnownRole(role) ? this.config.roleMappings[role]!.permissions : undefined;
  }
}

/** Does a granted permission (possibly a wildcard) cover the one needed? */
export function covers(granted: string, needed: string): boolean {
  if (granted === '*' || granted === needed) return true;
  if (granted.endsWith(':*')) return needed.startsWith(granted.slice(0, -1));
  return false;
}

export function allows(granted: readonly string[], needed: string): boolean {
  return granted.some((g) => covers(g, needed));
}

const RBAC_FORMAT = 'expected Mimir\'s rbac.json format: {claimPath, defaultRole, roleMappings: {role: {permissions: []}}}';

/**
 * Loads MIMIR_RBAC_CONFIG given as a path or inline JSON (https URLs: see loadRbacFromUrl). Every
 * refusal names the variable and what is wrong: a file that cannot be read (and why), JSON that
 * does not parse (and where), a document of another shape (the member and the expected format).
 */
export function parseRbac(source: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): RbacConfig {
  const inline = source.trim().startsWith('{');
  let text: string;
  if (inline) {
    text = source;
  } else {
    try {
      text = read(source);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : code ?? (e as Error).message;
      throw new Error(`MIMIR_RBAC_CONFIG: ${source} cannot be read (${why}); set it to the path of a readable rbac.json, an https URL, or inline JSON`, { cause: e });
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`MIMIR_RBAC_CONFIG: ${inline ? 'the inline value' : source} is not valid JSON: ${describeJsonError(text, e)} (${RBAC_FORMAT})`, { cause: e });
  }
  const parsed = rbacSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`MIMIR_RBAC_CONFIG: ${issue.path.join('.') || 'document'}${ruleName(json, issue.path)}: ${issue.message} (expected Mimir's rbac.json format: {claimPath, defaultRole, roleMappings: {role: {permissions: []}}}; a route rule: {method, path, permission, maxAge?, acr?})`);
  }
  return parsed.data;
}

/** ` (rule "GET /api/x")` when the issue lies in a route rule that has a method and path to name it by. */
function ruleName(json: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== 'routes' || typeof path[1] !== 'number') return '';
  const rule = (json as { routes?: unknown[] }).routes?.[path[1]] as { method?: unknown; path?: unknown } | undefined;
  return rule && typeof rule.method === 'string' && typeof rule.path === 'string' ? ` (rule "${rule.method.slice(0, 40)} ${rule.path.slice(0, 200)}")` : '';
}

export async function loadRbac(source: string | undefined, fetchImpl: typeof fetch = fetch): Promise<Rbac> {
  if (!source) return new Rbac();
  if (/^https?:\/\//.test(source.trim())) {
    const url = new URL(source.trim());
    if (url.protocol !== 'https:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
      throw new Error(`MIMIR_RBAC_CONFIG: ${url.origin} must be https (http only on a loopback host)`);
    }
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`MIMIR_RBAC_CONFIG: fetching ${url} answered ${res.status}`);
    return new Rbac(parseRbac(await res.text(), () => ''));
  }
  return new Rbac(parseRbac(source));
}
