import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../helpers/hub.ts';

describe('admin HTTP API', () => {
  let t: TestHub;
  let admin: string;
  let viewer: string;
  before(async () => {
    t = await startHub({ storage: 'sqlite' });
    admin = (await t.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
    viewer = (await t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
  });
  after(async () => { await t.close(); });

  const call = async (method: string, path: string, key: string | undefined, body?: unknown) => {
    const headers: Record<string, string> = key ? { 'x-api-key': key } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${t.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };

  it('needs an admin principal', async () => {
    assert.equal((await call('GET', '/auth/admin/api-keys', undefined)).status, 401);
    const denied = await call('GET', '/auth/admin/api-keys', viewer);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error, 'insufficient_scope');
    assert.equal(denied.body.missing_permission, 'admin:manage');
  });

  it('creates, lists and revokes API keys; the key is shown once and never listed', async () => {
    const created = await call('POST', '/auth/admin/api-keys', admin, { name: 'pctx', roles: ['developer'], expires_in: '30d' });
    assert.equal(created.status, 201);
    assert.match(created.body.key, /^mimir_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    assert.ok(created.body.expiresAt > Date.now() / 1000 + 29 * 86400);
    const listed = await call('GET', '/auth/admin/api-keys', admin);
    const entry = listed.body.api_keys.find((k: { id: string }) => k.id === created.body.id);
    assert.ok(entry);
    assert.equal(entry.key, undefined);
    assert.equal(entry.hash, undefined);
    assert.equal((await fetch(`${t.url}/auth/me`, { headers: { 'x-api-key': created.body.key } })).status, 200);
    assert.equal((await call('DELETE', `/auth/admin/api-keys/${created.body.id}`, admin)).status, 200);
    assert.equal((await fetch(`${t.url}/auth/me`, { headers: { 'x-api-key': created.body.key } })).status, 401);
    assert.equal((await call('DELETE', '/auth/admin/api-keys/nosuchkey', admin)).status, 404);
  });

  it('validates input with a clear invalid_request', async () => {
    const bad = await call('POST', '/auth/admin/api-keys', admin, { roles: 'admin' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_request');
    const badDuration = await call('POST', '/auth/admin/api-keys', admin, { name: 'x', expires_in: 'soon' });
    assert.equal(badDuration.status, 400);
  });

  it('manages service accounts', async () => {
    const created = await call('POST', '/auth/admin/service-accounts', admin, { client_id: 'agent-1', roles: ['analyst'], allow_token_exchange: true });
    assert.equal(created.status, 201);
    assert.equal(created.body.client_id, 'agent-1');
    assert.equal(typeof created.body.client_secret, 'string');
    assert.equal(created.body.secretHash, undefined);
    assert.equal((await call('POST', '/auth/admin/service-accounts', admin, { client_id: 'agent-1', roles: [] })).status, 409);
    const rotated = await call('POST', '/auth/admin/service-accounts/agent-1/rotate-secret', admin);
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.client_secret, created.body.client_secret);
    assert.equal((await call('POST', '/auth/admin/service-accounts/agent-1/disable', admin)).body.disabled, true);
    const list = await call('GET', '/auth/admin/service-accounts', admin);
    assert.equal(list.body.service_accounts.find((a: { clientId: string }) => a.clientId === 'agent-1').disabled, true);
    assert.equal((await call('DELETE', '/auth/admin/service-accounts/agent-1', admin)).status, 200);
    assert.equal((await call('DELETE', '/auth/admin/service-accounts/agent-1', admin)).status, 404);
  });

  it('rotates the signing key', async () => {
    const before = t.hub.keys.currentKid;
    const r = await call('POST', '/auth/admin/signing-keys/rotate', admin);
    assert.equal(r.status, 200);
    assert.notEqual(r.body.kid, before);
    assert.equal(t.hub.keys.currentKid, r.body.kid);
  });
});
