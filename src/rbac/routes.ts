import type { AuthenticationRequirement } from '../authz/authentication.ts';

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
  /** RFC 9470 step-up: the user must have authenticated at most this many seconds ago. */
  maxAge?: number | undefined;
  /** RFC 9470 step-up: the user must have authenticated with this authentication context class (`acr`). */
  acr?: string | undefined;
}

/**
 * The default table: the real Mimir's HTTP surface (orneryd/Mimir; every route it serves, with the
 * permission each needs in Mimir's RBAC vocabulary — its own `requirePermission` where it has one,
 * otherwise reads → the namespace's read permission, mutations → write, runs → execute, chat and
 * models → chat:use, migrations and debugging → admin, which only `*` holds). MCP is authorized per
 * JSON-RPC message (`tools/call` needs `mcp:*` or `mcp:tool:<name>`). Mimir's web UI (its static files
 * and single-page app: GET outside its API prefixes) needs only authentication. Anything else Mimir
 * does not serve needs `upstream:access`, which only `*` (admin) holds unless a role is given it:
 * the proxy fails closed on routes nobody mapped. `mimir-auth routes` prints the effective table.
 *
 * @example
 * routePermission(DEFAULT_ROUTES, 'DELETE', '/api/nodes/42') // 'nodes:delete'
 */
export const DEFAULT_ROUTES: readonly RouteRule[] = [
  { method: 'POST', path: '/mcp', permission: null },
  { method: 'GET|HEAD', path: '/mcp', permission: null },
  // Ends the caller's MCP session at the hub (Mimir itself does not route it): src/proxy/mcp-sessions.ts.
  { method: 'DELETE', path: '/mcp', permission: null },
  { method: 'GET|HEAD', path: '/upstream/health', permission: null },
  { method: 'GET|HEAD', path: '/api/nodes/types', permission: 'nodes:read' },
  { method: 'GET|HEAD', path: '/api/nodes/vector-search', permission: 'search:execute' },
  { method: 'GET|HEAD', path: '/api/nodes/types/*', permission: 'nodes:read' },
  { method: 'GET|HEAD', path: '/api/nodes/types/*/*/details', permission: 'nodes:read' },
  { method: 'DELETE', path: '/api/nodes/*', permission: 'nodes:delete' },
  { method: 'POST', path: '/api/nodes/*/embeddings', permission: 'nodes:write' },
  { method: 'POST', path: '/api/nodes', permission: 'nodes:write' },
  { method: 'PUT', path: '/api/nodes/*', permission: 'nodes:write' },
  { method: 'PATCH', path: '/api/nodes/*', permission: 'nodes:write' },
  { method: 'GET|HEAD', path: '/api/nodes/*', permission: 'nodes:read' },
  { method: 'POST', path: '/api/keys/generate', permission: 'keys:write' },
  { method: 'GET|HEAD', path: '/api/keys', permission: 'keys:read' },
  { method: 'DELETE', path: '/api/keys/*', permission: 'keys:delete' },
  { method: 'GET|HEAD', path: '/api/rbac', permission: 'admin' },
  { method: 'PUT', path: '/api/rbac', permission: 'admin' },
  { method: 'GET|HEAD', path: '/api/rbac/permissions', permission: 'admin' },
  { method: 'GET|HEAD', path: '/api/agents', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/agents/*', permission: 'orchestration:read' },
  { method: 'POST', path: '/api/agents', permission: 'orchestration:write' },
  { method: 'DELETE', path: '/api/agents/*', permission: 'orchestration:write' },
  { method: 'POST', path: '/api/generate-plan', permission: 'orchestration:execute' },
  { method: 'POST', path: '/api/save-plan', permission: 'orchestration:write' },
  { method: 'GET|HEAD', path: '/api/plans', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/execution-stream/*', permission: 'orchestration:read' },
  { method: 'POST', path: '/api/cancel-execution/*', permission: 'orchestration:cancel' },
  { method: 'GET|HEAD', path: '/api/execution-state/*', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/execution-deliverable/*/*', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/execution-deliverables/*', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/executions/*', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/deliverables/*/download', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/deliverables/*', permission: 'orchestration:read' },
  { method: 'GET|HEAD', path: '/api/executions', permission: 'orchestration:read' },
  { method: 'POST', path: '/api/execute-workflow', permission: 'orchestration:execute' },
  { method: 'POST', path: '/api/validate-lambda', permission: 'orchestration:write' },
  { method: 'POST', path: '/api/mcp/index-folder', permission: 'files:index' },
  { method: 'POST', path: '/api/mcp/remove-folder', permission: 'files:index' },
  { method: 'POST', path: '/api/mcp/save-conversation', permission: 'nodes:write' },
  { method: 'GET|HEAD', path: '/api/mcp/list-folders', permission: 'files:read' },
  { method: 'GET|HEAD', path: '/api/indexed-folders', permission: 'files:read' },
  { method: 'POST', path: '/api/index-folder', permission: 'files:index' },
  { method: 'DELETE', path: '/api/indexed-folders', permission: 'files:index' },
  { method: 'PATCH', path: '/api/indexed-folders/reactivate', permission: 'files:index' },
  { method: 'GET|HEAD', path: '/api/index-config', permission: 'files:read' },
  { method: 'GET|HEAD', path: '/api/indexing-status', permission: 'files:read' },
  { method: 'GET|HEAD', path: '/api/indexing-progress', permission: 'files:read' },
  { method: 'GET|HEAD', path: '/api/index-stats', permission: 'files:read' },
  { method: 'POST', path: '/api/migrate-indexed-folders', permission: 'admin' },
  { method: 'POST', path: '/api/api/migrate-file-paths', permission: 'admin' },
  { method: 'GET|HEAD', path: '/api/debug-file-paths', permission: 'admin' },
  { method: 'POST', path: '/api/cleanup-invalid-watchconfigs', permission: 'admin' },
  { method: 'POST', path: '/api/migrate-watchconfig-paths', permission: 'admin' },
  { method: 'GET|HEAD', path: '/api/preambles', permission: 'chat:use' },
  { method: 'GET|HEAD', path: '/api/preambles/*', permission: 'chat:use' },
  { method: 'GET|HEAD', path: '/api/tools', permission: 'chat:use' },
  { method: 'GET|HEAD', path: '/api/models', permission: 'chat:use' },
  { method: 'POST', path: '/v1/chat/completions', permission: 'chat:use' },
  { method: 'POST', path: '/v1/embeddings', permission: 'chat:use' },
  { method: 'GET|HEAD', path: '/v1/models', permission: 'chat:use' },
  { method: 'GET|HEAD', path: '/models', permission: 'chat:use' },
  // Under Mimir's API prefixes, a route it does not have.
  { method: '*', path: '/api/**', permission: 'upstream:access' },
  { method: '*', path: '/v1/**', permission: 'upstream:access' },
  { method: '*', path: '/mcp/**', permission: 'upstream:access' },
  { method: '*', path: '/models/**', permission: 'upstream:access' },
  // Mimir's web UI: static files and its single-page app answer every other GET.
  { method: 'GET|HEAD', path: '/**', permission: null },
  { method: '*', path: '/**', permission: 'upstream:access' },
];

export interface RouteDecision {
  rule: RouteRule | undefined;
  /** `undefined` when no rule matched (treated as denied by the caller). */
  permission: string | null | undefined;
}

/**
 * What the rule asks of the user's authentication (RFC 9470), for the one authorization rule
 * (src/authz), or undefined when it asks nothing.
 */
export function ruleAuthentication(rule: RouteRule | undefined): AuthenticationRequirement | undefined {
  if (!rule || (rule.maxAge === undefined && rule.acr === undefined)) return undefined;
  return { ...(rule.maxAge !== undefined ? { maxAge: rule.maxAge } : {}), ...(rule.acr !== undefined ? { acrValues: [rule.acr] } : {}) };
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
    const methods = rule.method === '*' ? null : rule.method.toUpperCase().split('|');
    // Express routes HEAD to a GET route: a rule guarding GET guards HEAD too.
    if (methods?.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD');
    c = { methods, segments: split(rule.path) };
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
