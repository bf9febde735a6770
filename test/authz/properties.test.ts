/**
 * Issue 15, "properties of the one authorization rule": no token, key or delegation ever yields
 * a permission outside roles ∩ scope ∩ actor; what /auth/me lists is exactly what is decided;
 * nobody hands out more than they hold; the upstream is told only roles the principal holds;
 * and no request the proxy forwards was denied by the same decision function.
 * AUTHZ_RUNS (default 2000) per property; set it higher for a long run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AuthMethodUsed, Principal } from '../../src/authn/principal.ts';
import { delegatedScopes, narrowRoles } from '../../src/authz/delegation.ts';
import { Authorizer, isPermission } from '../../src/authz/index.ts';
import { allows, Rbac } from '../../src/rbac/policy.ts';
import { DEFAULT_ROUTES, routePermission } from '../../src/rbac/routes.ts';
import { startFront, type Front } from '../proxy/setup.ts';
import { TOOLS } from '../proxy/upstream.ts';

const RUNS = Number(process.env.AUTHZ_RUNS ?? 2000);

const NAMESPACES = ['nodes', 'mcp', 'search', 'admin', 'orchestration'];
const ACTIONS = ['read', 'write', 'execute', 'manage', 'tool:memory_search', 'tool:memory_node', 'tool:*', '*'];
/** Permissions as a role, a scope or a request may name them, wildcards and junk included. */
const permission = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...ACTIONS)).map(([n, a]) => `${n}:${a}`) },
  { weight: 1, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: fc.constantFrom('openid', 'profile', 'bogus:unknown', 'mimir:none', 'introspect') },
);
/** A needed permission is concrete: what a route or a tool asks for. */
const needed = fc.tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom('read', 'write', 'execute', 'manage', 'tool:memory_search', 'tool:memory_node')).map(([n, a]) => `${n}:${a}`);
const ROLE_NAMES = ['r1', 'r2', 'r3', 'r4', 'constructor', '__proto__'];
const rbacArb = fc.record({
  r1: fc.array(permission, { maxLength: 5 }), r2: fc.array(permission, { maxLength: 5 }),
  r3: fc.array(permission, { maxLength: 5 }), r4: fc.array(permission, { maxLength: 5 }),
}).map((m) => new Rbac({ claimPath: 'roles', defaultRole: 'r4', roleMappings: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, { permissions: v }])) }));
const methods: AuthMethodUsed[] = ['jwt', 'api-key', 'oauth', 'session', 'client'];
const principalArb = fc.record({
  roles: fc.subarray(ROLE_NAMES), scopes: fc.array(permission, { maxLength: 4 }), auth_method: fc.constantFrom(...methods),
  allow_user_context: fc.boolean(), allow_token_exchange: fc.boolean(),
}).map((p): Principal => ({ sub: 'x', groups: [], ...p }));

/** What the roles grant and the scope lets through, read straight from the rule's definition. */
function bound(rbac: Rbac, p: Principal, perm: string): boolean {
  if (!allows(rbac.permissionsFor(p.roles), perm)) return false;
  if (p.auth_method === 'session') return true;
  const scope = p.auth_method === 'oauth' ? p.scopes.filter(isPermission) : p.scopes;
  return scope.length === 0 || allows(scope, perm);
}

describe('the one authorization rule, as properties', () => {
  it('no principal holds a permission outside roles ∩ scope, and /auth/me lists exactly what is decided', () => {
    fc.assert(fc.property(rbacArb, principalArb, needed, (rbac, p, perm) => {
      const a = new Authorizer(rbac);
      const decided = a.decide(p, { permission: perm, path: '/api/x' }).allowed;
      assert.equal(decided, bound(rbac, p, perm), 'decide = roles ∩ scope');
      assert.equal(allows(a.permissions(p), perm), decided, 'the permission list agrees with the decision');
    }), { numRuns: RUNS });
  });

  it('a credential created within the ceiling never holds what its creator does not', () => {
    fc.assert(fc.property(rbacArb, principalArb, fc.subarray(ROLE_NAMES), fc.array(permission, { maxLength: 4 }), needed, (rbac, caller, roles, scopes, perm) => {
      const a = new Authorizer(rbac);
      if (a.exceeds(caller, { roles, scopes }) !== undefined) return;
      for (const method of ['api-key', 'client'] as const) {
        const created: Principal = { sub: 'y', groups: [], roles, scopes, auth_method: method };
        if (a.holds(created, perm)) assert.ok(a.holds(caller, perm), `${method} with ${JSON.stringify({ roles, scopes })} holds ${perm}, its creator does not`);
      }
    }), { numRuns: RUNS });
  });

  it('a delegated principal holds only what both the user and the actor hold', () => {
    fc.assert(fc.property(rbacArb, principalArb, principalArb, needed, (rbac, user, actor, perm) => {
      const a = new Authorizer(rbac);
      const userPerms = a.permissions(user);
      const actorPerms = a.permissions(actor);
      const delegated: Principal = {
        sub: 'u', groups: [], auth_method: 'jwt', act: { sub: 'svc' },
        roles: narrowRoles(rbac, userPerms, actorPerms, [...user.roles, ...actor.roles]), scopes: delegatedScopes(userPerms, actorPerms),
      };
      if (a.holds(delegated, perm)) {
        assert.ok(a.holds(user, perm), 'the user holds it');
        assert.ok(a.holds(actor, perm), 'the actor holds it');
      }
    }), { numRuns: RUNS });
  });

  it('the roles told upstream are RBAC roles whose every permission the principal holds', () => {
    fc.assert(fc.property(rbacArb, principalArb, (rbac, p) => {
      const a = new Authorizer(rbac);
      for (const role of a.upstreamRoles(p)) {
        assert.ok(rbac.isKnownRole(role), role);
        for (const perm of rbac.rolePermissions(role)!) assert.ok(allows(a.permissions(p), perm), `${role}: ${perm}`);
      }
    }), { numRuns: RUNS });
  });

  it('one Authorizer asked about many principals in turn answers each as a fresh one would (its memo confuses none)', () => {
    // Roles and scopes drawn from one small pool, so that one principal's roles followed by its
    // scopes are often another's roles alone (['r1', 'r2'] + [] against ['r1'] + ['r2']).
    const pool = ['r1', 'r2', 'r3', 'nodes:read', 'mcp:*', '*'];
    const mixed = fc.record({ roles: fc.array(fc.constantFrom(...pool), { maxLength: 3 }), scopes: fc.array(fc.constantFrom(...pool), { maxLength: 3 }), auth_method: fc.constantFrom(...methods) })
      .map((p): Principal => ({ sub: 'x', groups: [], ...p }));
    fc.assert(fc.property(rbacArb, fc.array(mixed, { minLength: 2, maxLength: 40 }), (rbac, ps) => {
      const shared = new Authorizer(rbac);
      for (const p of [...ps, ...ps]) {
        const fresh = new Authorizer(rbac);
        assert.deepEqual(shared.permissions(p), fresh.permissions(p), JSON.stringify(p));
        assert.deepEqual(shared.upstreamRoles(p), fresh.upstreamRoles(p), JSON.stringify(p));
      }
    }), { numRuns: Math.ceil(RUNS / 4) });
  });
});

describe('the proxy forwards nothing the rule denies', () => {
  let f: Front;
  const keys: Array<{ key: string; principal: Principal }> = [];
  before(async () => {
    f = await startFront({ storage: 'memory' });
    const roles = ['admin', 'developer', 'analyst', 'viewer', 'nobody'];
    const scopeSets = [[], ['nodes:read'], ['mcp:tool:memory_search'], ['mcp:*', 'nodes:write'], ['upstream:access'], ['openid']];
    for (const role of roles) {
      for (const scopes of scopeSets) {
        const { key } = await f.t.hub.apiKeys.create({ name: `${role}-${scopes.join('+')}`, roles: [role], scopes });
        keys.push({ key, principal: await f.t.hub.authenticator.authenticate({ headers: { 'x-api-key': key } }) });
      }
    }
  });
  after(async () => f.close());

  it(`${Math.ceil(RUNS / 4)} generated requests: every forwarded one is allowed by Authorizer.decide`, async () => {
    const request = fc.record({
      who: fc.nat({ max: 29 }),
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
      path: fc.constantFrom('/api/nodes/1', '/api/nodes', '/api/nodes/vector-search', '/api/orchestration/7/execute', '/api/files/x', '/v1/chat/completions', '/internal/x', '/mcp'),
      tool: fc.constantFrom(...TOOLS, 'memory_clear'),
    });
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const { key, principal } = keys[r.who % keys.length]!;
      const mcp = r.path === '/mcp';
      const method = mcp ? 'POST' : r.method;
      const before = f.upstream.received.length;
      const res = await fetch(`${f.t.url}${r.path}`, {
        method,
        headers: { 'x-api-key': key, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        ...(method === 'GET' ? {} : { body: mcp ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: r.tool, arguments: {} } }) : '{}' }),
      });
      await res.arrayBuffer();
      const forwarded = f.upstream.received.length > before;
      const routeNeeds = routePermission(f.t.hub.rbac.config.routes ?? DEFAULT_ROUTES, method, r.path).permission;
      const route = f.t.hub.authorizer.decide(principal, { permission: routeNeeds === undefined ? 'upstream:access' : routeNeeds, path: r.path });
      const tool = mcp ? f.t.hub.authorizer.decide(principal, { permission: `mcp:tool:${r.tool}`, path: r.path }) : { allowed: true };
      if (forwarded) assert.ok(route.allowed && tool.allowed, `${method} ${r.path} ${mcp ? r.tool : ''} forwarded for ${principal.name}`);
      else assert.ok(res.status === 403 || res.status === 400 || res.status === 401, `${method} ${r.path}: ${res.status}`);
      if (route.allowed && tool.allowed && !forwarded) assert.fail(`${method} ${r.path} allowed by the rule but not forwarded (${res.status})`);
    }), { numRuns: Math.ceil(RUNS / 4) });
  });
});
