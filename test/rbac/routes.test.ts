import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Authorizer, intersectPermissions } from '../../src/authz/index.ts';
import { narrowRoles } from '../../src/authz/delegation.ts';
import { parseRbac, Rbac } from '../../src/rbac/policy.ts';
import { DEFAULT_ROUTES, routePermission } from '../../src/rbac/routes.ts';
import { startFront, RBAC_FIXTURE } from '../proxy/setup.ts';

const rbac = new Rbac(parseRbac(RBAC_FIXTURE));
const authz = new Authorizer(rbac);
const may = (p: { roles: string[]; scopes: string[]; auth_method?: 'jwt' | 'oauth' | 'session' | 'api-key' }, needed: string) => authz.holds({ auth_method: 'jwt', ...p }, needed);

describe('RBAC route table and effective permissions', () => {
  it('the default table maps node routes by method', () => {
    assert.equal(routePermission(DEFAULT_ROUTES, 'GET', '/api/nodes/1').permission, 'nodes:read');
    assert.equal(routePermission(DEFAULT_ROUTES, 'PATCH', '/api/nodes/1').permission, 'nodes:write');
    assert.equal(routePermission(DEFAULT_ROUTES, 'DELETE', '/api/nodes/1').permission, 'nodes:delete');
    assert.equal(routePermission(DEFAULT_ROUTES, 'POST', '/v1/chat/completions').permission, 'chat:use');
    assert.equal(routePermission(DEFAULT_ROUTES, 'POST', '/mcp').permission, null);
    assert.equal(routePermission(DEFAULT_ROUTES, 'GET', '/somewhere/else').permission, null, 'Mimir\'s web UI needs authentication only');
    assert.equal(routePermission(DEFAULT_ROUTES, 'POST', '/somewhere/else').permission, 'upstream:access');
    assert.equal(routePermission(DEFAULT_ROUTES, 'GET', '/api/not-a-mimir-route').permission, 'upstream:access');
    assert.equal(routePermission(DEFAULT_ROUTES, 'GET', '/api/orchestration/1').permission, 'upstream:access', 'no rule for a route Mimir does not have');
  });

  it('the default table is Mimir\'s: every route of its HTTP surface, with the permission the facts give it', () => {
    const facts = JSON.parse(readFileSync(new URL('../fixtures/mimir-http-surface.json', import.meta.url), 'utf8')) as { routes: Array<{ method: string; path: string; permission: string | null }> };
    let checked = 0;
    for (const r of facts.routes) {
      if (r.path.startsWith('/auth') || r.path.startsWith('/<')) continue; // the hub's own namespace, and Mimir's SPA (below)
      const path = (r.path === '/health' ? '/upstream/health' : r.path).replace(/:[A-Za-z]+/g, 'x1');
      // MCP is authorized per JSON-RPC message; the route itself needs authentication only.
      const expected = r.path === '/mcp' ? null : r.permission;
      assert.equal(routePermission(DEFAULT_ROUTES, r.method, path).permission, expected, `${r.method} ${r.path}`);
      if (r.method === 'GET') assert.equal(routePermission(DEFAULT_ROUTES, 'HEAD', path).permission, expected, `HEAD ${r.path}`);
      checked++;
    }
    assert.equal(checked, 62);
    // And nothing for paths Mimir does not serve under its API prefixes: each rule matches a route of the facts or is a fallback.
    const fallbacks = new Set(['/api/**', '/v1/**', '/mcp/**', '/models/**', '/**']);
    for (const rule of DEFAULT_ROUTES) {
      if (fallbacks.has(rule.path) || (rule.method === 'DELETE' && rule.path === '/mcp')) continue; // the hub ends its own MCP sessions
      const known = facts.routes.some((r) => (r.path === '/health' ? '/upstream/health' : r.path).replace(/:[A-Za-z]+/g, '*') === rule.path && rule.method.split('|').includes(r.method));
      assert.ok(known, `${rule.method} ${rule.path} is not a route of Mimir`);
    }
  });

  it('mcp:* and mcp:tool:<name> both grant a tool; a scope narrows but never widens', () => {
    assert.ok(may({ roles: ['developer'], scopes: [] }, 'mcp:tool:memory_node'));
    assert.ok(!may({ roles: ['viewer'], scopes: [] }, 'mcp:tool:memory_node'));
    assert.ok(!may({ roles: ['developer'], scopes: ['mcp:tool:memory_search'] }, 'mcp:tool:memory_node'));
    assert.ok(!may({ roles: ['viewer'], scopes: ['mcp:*'] }, 'mcp:tool:memory_node'), 'a scope the roles lack grants nothing');
    assert.ok(may({ roles: ['developer'], scopes: ['openid', 'profile'], auth_method: 'oauth' }, 'nodes:write'), 'an IdP token\'s OIDC scopes do not narrow');
    assert.ok(!may({ roles: ['developer'], scopes: ['openid', 'profile'] }, 'nodes:write'), 'a hub token\'s scope narrows entry by entry: OIDC scopes grant nothing');
  });

  it('intersections respect wildcards', () => {
    assert.deepEqual(intersectPermissions(['*'], ['nodes:read']), ['nodes:read']);
    assert.deepEqual(intersectPermissions(['mcp:*'], ['mcp:tool:a', 'nodes:read']), ['mcp:tool:a']);
    assert.deepEqual(authz.permissions({ roles: ['admin'], scopes: ['nodes:read'], auth_method: 'jwt' }), ['nodes:read']);
    assert.deepEqual(narrowRoles(rbac, ['*'], rbac.permissionsFor(['developer']), ['admin', 'developer']), ['developer']);
  });

  it('the route table is configurable in MIMIR_RBAC_CONFIG (Mimir\'s format plus "routes")', async () => {
    const custom = JSON.parse(readFileSync(RBAC_FIXTURE, 'utf8')) as Record<string, unknown>;
    custom.routes = [{ method: 'GET', path: '/api/nodes/**', permission: 'chat:use' }, { method: '*', path: '/**', permission: null }];
    const f = await startFront({ env: { MIMIR_RBAC_CONFIG: JSON.stringify(custom) } });
    try {
      const viewer = (await f.t.hub.apiKeys.create({ name: 'v', roles: ['viewer'] })).key;
      const nodes = await fetch(`${f.t.url}/api/nodes/1`, { headers: { 'x-api-key': viewer } });
      assert.equal(nodes.status, 403);
      assert.equal((await nodes.json() as { missing_permission: string }).missing_permission, 'chat:use');
      const other = await fetch(`${f.t.url}/internal/x`, { headers: { 'x-api-key': viewer } });
      await other.text();
      assert.notEqual(other.status, 403);
      assert.equal(f.upstream.find('/internal/x').length, 1, 'the custom table let it through to the upstream');
    } finally {
      await f.close();
    }
  });
});
