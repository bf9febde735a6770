/**
 * Issue 21, item 6: a role the RBAC configuration does not define is refused wherever keys and
 * service accounts are created (the admin service decides for the CLI and the admin API alike),
 * unless `allow_unknown_role`, which only a holder of `*` may use: a role defined later may be given
 * any permission, so a credential holding it could become anything.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { auditLines } from './support.ts';

const RBAC = {
  defaultRole: 'viewer',
  roleMappings: {
    admin: { permissions: ['*'] },
    viewer: { permissions: ['nodes:read'] },
    // Manages credentials, but does not hold everything.
    'key-manager': { permissions: ['admin:manage', 'nodes:read'] },
  },
};

describe('roles the RBAC configuration does not define', () => {
  let t: TestHub;
  let admin: string;
  let manager: string;
  before(async () => {
    t = await startHub({ storage: 'sqlite', env: { MIMIR_RBAC_CONFIG: JSON.stringify(RBAC), MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file' } });
    admin = (await t.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
    manager = (await t.hub.apiKeys.create({ name: 'manager', roles: ['key-manager'] })).key;
  });
  after(async () => { await t.close(); });

  const call = async (path: string, key: string, body: unknown) => {
    const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };

  for (const [path, body] of [
    ['/auth/admin/api-keys', { name: 'k', roles: ['viewer', 'viewr'] }],
    ['/auth/admin/service-accounts', { client_id: 'agent-typo', roles: ['viewr'] }],
  ] as const) {
    it(`${path}: refused with invalid_request naming the role, the known ones and the way out, for anyone`, async () => {
      for (const key of [admin, manager]) {
        const r = await call(path, key, body);
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.error, 'invalid_request');
        assert.equal(r.body.error_description, 'roles: "viewr" is not defined in the RBAC configuration (MIMIR_RBAC_CONFIG); did you mean "viewer"?; '
          + 'known roles: introspector, metrics-reader, admin, viewer, key-manager. To create it for a role defined later, pass allow_unknown_role (CLI: --allow-unknown-role), which needs the * permission.');
      }
    });
  }

  it('allow_unknown_role by a holder of *: created', async () => {
    const key = await call('/auth/admin/api-keys', admin, { name: 'future', roles: ['future-role'], allow_unknown_role: true });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    assert.deepEqual(key.body.roles, ['future-role']);
    const account = await call('/auth/admin/service-accounts', admin, { client_id: 'future-agent', roles: ['future-role'], allow_unknown_role: true });
    assert.equal(account.status, 201, JSON.stringify(account.body));
    assert.deepEqual(account.body.roles, ['future-role']);
  });

  it('allow_unknown_role by a holder of admin:manage without *: 403 insufficient_scope naming *, audited, nothing created', async () => {
    for (const [path, body] of [
      ['/auth/admin/api-keys', { name: 'sneaky', roles: ['future-role'], allow_unknown_role: true }],
      ['/auth/admin/service-accounts', { client_id: 'sneaky-agent', roles: ['future-role'], allow_unknown_role: true }],
    ] as const) {
      const r = await call(path, manager, body);
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body.error, 'insufficient_scope');
      assert.equal(r.body.missing_permission, '*');
      assert.match(r.body.error_description, /allow_unknown_role needs the \* permission/);
    }
    assert.ok(!(await t.hub.apiKeys.list()).some((k) => k.name === 'sneaky'));
    assert.equal(await t.hub.serviceAccounts.get('sneaky-agent'), null);
    await t.hub.audit.flush();
    const denied = auditLines(join(t.dataDir, 'audit.log')).filter((e) => e.type === 'access_denied' && e.permission === '*');
    assert.equal(denied.length, 2);
    assert.equal(denied[0]!.reason, 'privilege_ceiling');
  });

  it('known roles need no flag, and the flag changes nothing for them', async () => {
    const plain = await call('/auth/admin/api-keys', manager, { name: 'reader', roles: ['viewer'] });
    assert.equal(plain.status, 201, JSON.stringify(plain.body));
    const flagged = await call('/auth/admin/api-keys', manager, { name: 'reader-2', roles: ['viewer'], allow_unknown_role: true });
    assert.equal(flagged.status, 201, JSON.stringify(flagged.body));
  });
});
