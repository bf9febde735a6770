/**
 * Issue 17 item 14: step-up (RFC 9470) in the one authorization rule, and the route-table fields
 * that ask for it (`maxAge`, `acr`) as MIMIR_RBAC_CONFIG reads them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '../../src/authn/principal.ts';
import { unmetAuthentication, AUTH_TIME_LEEWAY_SECONDS } from '../../src/authz/authentication.ts';
import { Authorizer } from '../../src/authz/index.ts';
import { refusal } from '../../src/authz/refusal.ts';
import { parseRbac, Rbac } from '../../src/rbac/policy.ts';
import { routePermission, ruleAuthentication } from '../../src/rbac/routes.ts';

const NOW = 1_800_000_000;
const base = { version: '1.0', claimPath: 'roles', defaultRole: 'viewer', roleMappings: { viewer: { permissions: ['nodes:read'] } } };
const rbacWith = (routes: unknown[]) => JSON.stringify({ ...base, routes });

describe('route rules with maxAge / acr', () => {
  it('are read from the route table and become the action\'s authentication requirement', () => {
    const config = parseRbac(rbacWith([
      { method: 'GET', path: '/api/nodes/*', permission: 'nodes:read', maxAge: 300, acr: 'urn:gold' },
      { method: 'GET', path: '/**', permission: null },
    ]));
    const { rule } = routePermission(config.routes!, 'GET', '/api/nodes/1');
    assert.deepEqual(ruleAuthentication(rule), { maxAge: 300, acrValues: ['urn:gold'] });
    assert.equal(ruleAuthentication(routePermission(config.routes!, 'GET', '/ui').rule), undefined);
  });

  it('refuse a maxAge that is no positive whole number and an empty acr, naming the rule', () => {
    for (const [field, value, words] of [
      ['maxAge', -5, /positive/], ['maxAge', 0, /positive/], ['maxAge', 1.5, /whole number/], ['maxAge', '300', /number of seconds/],
      ['acr', '', /non-empty/], ['acr', 7, /string/],
    ] as const) {
      assert.throws(() => parseRbac(rbacWith([{ method: 'GET', path: '/api/secret', permission: 'nodes:read', [field]: value }])), (e: Error) => {
        assert.match(e.message, new RegExp(`^MIMIR_RBAC_CONFIG: routes\\.0\\.${field} \\(rule "GET /api/secret"\\): `), e.message);
        assert.match(e.message, words, e.message);
        return true;
      }, `${field}=${JSON.stringify(value)}`);
    }
  });
});

describe('the one rule decides step-up', () => {
  const authorizer = new Authorizer(new Rbac(parseRbac(JSON.stringify(base))), { now: () => NOW * 1000 });
  const user = (extra: Partial<Principal>): Principal => ({ sub: 'jane', roles: ['viewer'], groups: [], scopes: [], auth_method: 'jwt', ...extra });
  const action = { permission: 'nodes:read', path: '/api/nodes/1', authentication: { maxAge: 300, acrValues: ['urn:gold'] } };

  it('a recent authentication of the class asked is allowed', () => {
    assert.deepEqual(authorizer.decide(user({ auth_time: NOW - 300, acr: 'urn:gold' }), action), { allowed: true });
  });

  it('an old one, one of another class, and none at all are refused, each saying what is missing', () => {
    const old = authorizer.decide(user({ auth_time: NOW - 300 - AUTH_TIME_LEEWAY_SECONDS - 1, acr: 'urn:gold' }), action);
    assert.equal(old.allowed, false);
    assert.equal(!old.allowed && old.reason === 'insufficient_user_authentication' && old.unmet, 'max_age');
    const silver = authorizer.decide(user({ auth_time: NOW, acr: 'urn:silver' }), action);
    assert.equal(!silver.allowed && silver.reason === 'insufficient_user_authentication' && silver.unmet, 'acr');
    const apiKey = authorizer.decide(user({ auth_method: 'api-key' }), action);
    assert.equal(!apiKey.allowed && apiKey.reason, 'insufficient_user_authentication');
  });

  it('a missing permission is refused first: signing in again would not give it', () => {
    const d = authorizer.decide(user({ auth_time: NOW - 9999 }), { ...action, permission: 'nodes:write' });
    assert.equal(!d.allowed && d.reason, 'insufficient_scope');
  });

  it('the refusal is 401 with the RFC 9470 §3 challenge', () => {
    const d = authorizer.decide(user({}), action);
    assert.equal(d.allowed, false);
    const e = refusal(d as Exclude<typeof d, { allowed: true }>);
    assert.equal(e.status, 401);
    assert.equal(e.error, 'insufficient_user_authentication');
    assert.equal(e.challenge?.error, 'insufficient_user_authentication');
    assert.equal(e.challenge?.max_age, '300');
    assert.equal(e.challenge?.acr_values, 'urn:gold');
  });

  it('unmetAuthentication: no requirement, nothing unmet; the leeway is the JWT clock leeway', () => {
    assert.equal(unmetAuthentication({}, {}, NOW), undefined);
    assert.equal(unmetAuthentication({ auth_time: NOW - 10 - AUTH_TIME_LEEWAY_SECONDS }, { maxAge: 10 }, NOW), undefined);
    assert.equal(unmetAuthentication({ auth_time: NOW - 11 - AUTH_TIME_LEEWAY_SECONDS }, { maxAge: 10 }, NOW), 'max_age');
  });
});
