/**
 * Attacker's review (after issue 19): Express routes a HEAD request to the GET handler of the
 * path (app.get answers HEAD). The hub's route table matches HEAD only against rules that name
 * HEAD, so a custom table that guards a path with a `GET` rule lets a HEAD to that path fall
 * through to a later, weaker rule: the upstream's GET handler runs for a caller the GET rule
 * refuses (its side effects, its headers).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFront, type Front } from '../proxy/setup.ts';

const RBAC = {
  version: '1.0', claimPath: 'roles', defaultRole: 'reader',
  roleMappings: { admin: { permissions: ['*'] }, reader: { permissions: ['api:use'] } },
  routes: [
    { method: 'GET', path: '/api/nodes/secret', permission: 'secrets:read' },
    { method: '*', path: '/api/**', permission: 'api:use' },
    { method: '*', path: '/**', permission: 'upstream:access' },
  ],
};

describe('a GET rule of the route table guards HEAD too, as the upstream routes HEAD to GET', () => {
  let f: Front;
  let reader: string;
  before(async () => {
    f = await startFront({ env: { MIMIR_RBAC_CONFIG: JSON.stringify(RBAC) } });
    reader = (await f.t.hub.apiKeys.create({ name: 'reader', roles: ['reader'] })).key;
  });
  after(async () => { await f.close(); });

  it('GET /api/nodes/secret is refused to a reader (the control)', async () => {
    const res = await fetch(`${f.t.url}/api/nodes/secret`, { headers: { 'x-api-key': reader } });
    assert.equal(res.status, 403);
    await res.text();
  });

  it('HEAD /api/nodes/secret is refused to a reader and never reaches the GET handler', async () => {
    const before = f.upstream.find('/api/nodes/secret').length;
    const res = await fetch(`${f.t.url}/api/nodes/secret`, { method: 'HEAD', headers: { 'x-api-key': reader } });
    assert.equal(f.upstream.find('/api/nodes/secret').length, before, 'the upstream ran its GET /api/nodes/secret handler for the reader');
    assert.equal(res.status, 403);
  });
});
