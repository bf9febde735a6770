/**
 * The route table: which permission a proxied request needs, by method and path. First match
 * wins. Configurable as the optional `routes` array of MIMIR_RBAC_CONFIG (Mimir's rbac.json with
 * one extra key, which Mimir itself ignores); without it, {@link DEFAULT_ROUTES} applies.
 *
 * Paths: `*` is one segment, `**` any rest (also none). Matching is case-insensitive and
 * ignores one trailing slash, as Express routes the upstream by default — so `/API/Nodes/`
 * cannot slip past a rule written for `/api/nodes`.
 */
export interface RouteRule {
  /** `*`, or methods joined by `|` (`POST|PUT|PATCH`). */
  method: string;
  path: string;
  /** Needed permission; `null` = any authenticated caller (e.g. `/mcp`, checked per JSON-RPC method). */
  permission: string | null;
}

/**
 * The documented default. Unlisted paths need `upstream:access`, which only `*` (admin) holds
 * unless a role is given it: the proxy fails closed on routes nobody mapped.
 *
 * @example
 * routePermission(DEFAULT_ROUTES, 'DELETE', '/api/nodes/42') // 'nodes:delete'
 */
export const DEFAULT_ROUTES: readonly RouteRule[] = [
  { method: '*', path: '/mcp', permission: null },
  { method: 'GET|HEAD', path: '/upstream/health', permission: null },
  { method: 'GET|HEAD', path: '/api/nodes/**', permission: 'nodes:read' },
  { method: 'POST', path: '/api/nodes/query', permission: 'nodes:read' },
  { method: 'POST', path: '/api/nodes/vector-search', permission: 'search:execute' },
  { method: 'POST|PUT|PATCH', path: '/api/nodes/**', permission: 'nodes:write' },
  { method: 'DELETE', path: '/api/nodes/**', permission: 'nodes:delete' },
  { method: '*', path: '/api/search/**', permission: 'search:execute' },
  { method: 'GET|HEAD', path: '/api/orchestration/**', permission: 'orchestration:read' },
  { method: 'DELETE', path: '/api/orchestration/**', permission: 'orchestration:cancel' },
  { method: 'POST', path: '/api/orchestration/*/cancel', permission: 'orchestration:cancel' },
  { method: 'POST', path: '/api/orchestration/*/execute', permission: 'orchestration:execute' },
  { method: 'POST|PUT|PATCH', path: '/api/orchestration/**', permission: 'orchestration:write' },
  { method: 'GET|HEAD', path: '/api/files/**', permission: 'files:read' },
  { method: 'POST|PUT|PATCH|DELETE', path: '/api/files/**', permission: 'files:index' },
  { method: '*', path: '/api/chat/**', permission: 'chat:use' },
  { method: '*', path: '/v1/**', permission: 'chat:use' },
  { method: '*', path: '/**', permission: 'upstream:access' },
];

export interface RouteDecision {
  rule: RouteRule | undefined;
  /** `undefined` when no rule matched (treated as denied by the caller). */
  permission: string | null | undefined;
}

export function routePermission(rules: readonly RouteRule[], method: string, path: string): RouteDecision {
  const m = method.toUpperCase();
  const segments = split(path);
  for (const rule of rules) {
    const c = compiled(rule);
    if (c.methods !== null && !c.methods.includes(m)) continue;
    if (matchSegments(c.segments, segments)) return { rule, permission: rule.permission };
  }
  return { rule: undefined, permission: undefined };
}

/** Rules are parsed once, not on every proxied request. */
const compiledRules = new WeakMap<RouteRule, { methods: string[] | null; segments: string[] }>();

function compiled(rule: RouteRule): { methods: string[] | null; segments: string[] } {
  let c = compiledRules.get(rule);
  if (!c) {
    c = { methods: rule.method === '*' ? null : rule.method.toUpperCase().split('|'), segments: split(rule.path) };
    compiledRules.set(rule, c);
  }
  return c;
}

function split(path: string): string[] {
  return path.toLowerCase().replace(/\/+$/, '').split('/').filter(Boolean);
}

function matchSegments(pattern: string[], segments: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '**') return true;
    const s = segments[i];
    if (s === undefined) return false;
    if (p !== '*' && p !== s) return false;
  }
  return pattern.length === segments.length;
}
