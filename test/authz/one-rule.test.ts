/**
 * Issue 15, items 2, 3, 8, 16 and 19: one authorization rule, replayed from outside. Effective
 * permissions are roles ∩ the credential's scope everywhere; nobody hands out more than they
 * hold; a token bound to a resource is good there only; metrics answer a local scraper or a
 * holder of metrics:read; the library adapters fail closed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { mimirAuth, mimirAuthExpress } from '../../src/index.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { startFront, type Front } from '../proxy/setup.ts';
import { basic, get, postForm, postJson } from '../helpers/http.ts';

/** Mimir's roles plus a role that may manage credentials without holding everything. */
const RBAC = JSON.stringify({
  version: '1.0', claimPath: 'roles', defaultRole: 'viewer',
  roleMappings: {
    admin: { permissions: ['*'] },
    developer: { permissions: ['nodes:read', 'nodes:write', 'nodes:delete', 'search:execute', 'orchestration:read', 'mcp:*'] },
    viewer: { permissions: ['nodes:read', 'search:execute', 'orchestration:read', 'files:read'] },
    'key-manager': { permissions: ['admin:manage', 'nodes:read', 'search:execute', 'orchestration:read', 'files:read'] },
  },
});

async function clientCredentials(t: TestHub, clientId: string, secret: string, scope?: string): Promise<string> {
  const res = await postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials', ...(scope ? { scope } : {}) }, basic(clientId, secret));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.access_token as string;
}

describe('item 2: a credential\'s scope narrows admin rights everywhere', () => {
  let t: TestHub;
  let narrowed: string;
  before(async () => {
    t = await startHub({ storage: 'memory', env: { MIMIR_RBAC_CONFIG: RBAC } });
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'ops-admin', roles: ['admin'] });
    narrowed = await clientCredentials(t, 'ops-admin', clientSecret, 'nodes:read');
  });
  after(async () => t.close());

  it('an admin service account\'s token with scope nodes:read cannot use the admin API', async () => {
    const auth = { authorization: `Bearer ${narrowed}` };
    for (const [method, path, body] of [
      ['GET', '/auth/admin/api-keys', undefined],
      ['POST', '/auth/admin/api-keys', { name: 'x', roles: ['admin'] }],
      ['GET', '/auth/admin/service-accounts', undefined],
      ['POST', '/auth/admin/signing-keys/rotate', {}],
      ['POST', '/auth/admin/revocations', { type: 'access_token', id: 'abc' }],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { method, headers: { ...auth, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      assert.equal(res.status, 403, `${method} ${path}`);
      const json = await res.json() as { error: string; missing_permission: string };
      assert.equal(json.error, 'insufficient_scope');
      assert.equal(json.missing_permission, 'admin:manage');
    }
    assert.equal((await t.hub.apiKeys.list()).length, 0, 'no key was created');
  });

  it('/auth/me shows the effective permissions, not the roles\'', async () => {
    const me = await get(`${t.url}/auth/me`, { authorization: `Bearer ${narrowed}` });
    assert.equal(me.status, 200);
    assert.deepEqual(me.body.permissions, ['nodes:read']);
  });

  it('an admin token without a narrowing scope still manages; an API key created with scopes is narrowed by them', async () => {
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'ops-admin-2', roles: ['admin'] });
    const full = await clientCredentials(t, 'ops-admin-2', clientSecret);
    const created = await postJson(`${t.url}/auth/admin/api-keys`, { name: 'reader', roles: ['admin'], scopes: ['nodes:read'] }, { authorization: `Bearer ${full}` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const key = created.body.key as string;
    const listed = await get(`${t.url}/auth/admin/api-keys`, { 'x-api-key': key });
    assert.equal(listed.status, 403);
    const me = await get(`${t.url}/auth/me`, { 'x-api-key': key });
    assert.deepEqual(me.body.permissions, ['nodes:read']);
  });

  it('introspection and revocation callers are judged by the same rule', async () => {
    const introspect = await postForm(`${t.url}/auth/introspect`, { token: narrowed }, { authorization: `Bearer ${narrowed}` });
    assert.equal(introspect.status, 403);
    assert.equal(introspect.body.missing_permission, 'introspect');
    // A narrowed admin is no admin at revocation: it may not revoke another client's token.
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'victim', roles: ['viewer'] });
    const victim = await clientCredentials(t, 'victim', clientSecret);
    const revoke = await postForm(`${t.url}/auth/revoke`, { token: victim }, { authorization: `Bearer ${narrowed}` });
    assert.ok(revoke.status === 400 || revoke.status === 401, String(revoke.status));
    assert.ok(['unauthorized_client', 'invalid_client'].includes(revoke.body.error as string), revoke.body.error as string);
    assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${victim}` })).status, 200, 'the victim\'s token still works');
  });
});

describe('item 3: the privilege ceiling of the admin API', () => {
  let t: TestHub;
  let manager: string;
  before(async () => {
    t = await startHub({ storage: 'memory', env: { MIMIR_RBAC_CONFIG: RBAC } });
    manager = (await t.hub.apiKeys.create({ name: 'manager', roles: ['key-manager'] })).key;
  });
  after(async () => t.close());

  it('refuses API keys with roles stronger than the caller\'s', async () => {
    for (const roles of [['admin'], ['developer'], ['viewer', 'developer']]) {
      const res = await postJson(`${t.url}/auth/admin/api-keys`, { name: 'escalate', roles }, { 'x-api-key': manager });
      assert.equal(res.status, 403, JSON.stringify(roles));
      assert.equal(res.body.error, 'insufficient_scope');
    }
    const ok = await postJson(`${t.url}/auth/admin/api-keys`, { name: 'fine', roles: ['viewer'] }, { 'x-api-key': manager });
    assert.equal(ok.status, 201, 'within the ceiling works');
    assert.equal((await t.hub.apiKeys.list()).filter((k) => k.name === 'escalate').length, 0);
  });

  it('refuses service accounts with stronger roles or delegation flags', async () => {
    for (const body of [
      { client_id: 'sa-admin', roles: ['admin'] },
      { client_id: 'sa-uc', roles: ['viewer'], allow_user_context: true },
      { client_id: 'sa-tx', roles: ['viewer'], allow_token_exchange: true },
      { client_id: 'sa-scope', roles: ['viewer'], scopes: ['admin:manage', 'nodes:write'] },
    ]) {
      const res = await postJson(`${t.url}/auth/admin/service-accounts`, body, { 'x-api-key': manager });
      assert.equal(res.status, 403, JSON.stringify(body));
      assert.equal(res.body.error, 'insufficient_scope');
      assert.equal(await t.hub.serviceAccounts.get(body.client_id), null);
    }
  });

  it('refuses rotating the secret of (or otherwise controlling) a stronger account; no secret is returned', async () => {
    await t.hub.serviceAccounts.create({ clientId: 'root-sa', roles: ['admin'] });
    for (const action of ['rotate-secret', 'disable']) {
      const res = await postJson(`${t.url}/auth/admin/service-accounts/root-sa/${action}`, {}, { 'x-api-key': manager });
      assert.equal(res.status, 403, action);
      assert.equal(res.body.client_secret, undefined);
    }
    const del = await fetch(`${t.url}/auth/admin/service-accounts/root-sa`, { method: 'DELETE', headers: { 'x-api-key': manager } });
    assert.equal(del.status, 403);
    const account = await t.hub.serviceAccounts.get('root-sa');
    assert.ok(account && !account.disabled && account.secretRotatedAt === undefined, 'untouched');
    const adminKey = (await t.hub.apiKeys.create({ name: 'root', roles: ['admin'] })).record.id;
    const revoke = await fetch(`${t.url}/auth/admin/api-keys/${adminKey}`, { method: 'DELETE', headers: { 'x-api-key': manager } });
    assert.equal(revoke.status, 403);
  });
});

describe('item 8 and item 2 at the proxy: resource binding (RFC 8707) and scope', () => {
  let f: Front;
  before(async () => { f = await startFront(); });
  after(async () => f.close());

  const issue = (aud: string, scope?: string) => f.t.hub.signer.issue({ sub: 'alice', client_id: 'some-mcp-client', roles: ['developer'], aud, ...(scope ? { scope } : {}) }, 300);

  it('a token issued for <hub>/mcp is refused at /api/* and /auth/me, and never reaches the upstream', async () => {
    const { token } = await issue(`${f.t.url}/mcp`);
    const before = f.upstream.received.length;
    for (const path of ['/api/nodes/1', '/api/nodes/1/', '/API/NODES/1', '/auth/me']) {
      const res = await fetch(`${f.t.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401, path);
      assert.equal((await res.json() as { error: string }).error, 'invalid_token');
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
    assert.equal(f.upstream.received.length, before, 'the upstream was not contacted');
    const mcp = await fetch(`${f.t.url}/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    assert.equal(mcp.status, 200, 'good for /mcp itself');
    await mcp.body?.cancel();
  });

  it('a token bound to the origin root is good for every path', async () => {
    const { token } = await issue(f.t.url);
    const res = await fetch(`${f.t.url}/api/nodes/1`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    await res.text();
    assert.equal((await get(`${f.t.url}/auth/me`, { authorization: `Bearer ${token}` })).status, 200);
  });

  it('a scope narrows the route table and the MCP tools', async () => {
    const { token } = await issue(f.t.url, 'nodes:read');
    const write = await fetch(`${f.t.url}/api/nodes`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(write.status, 403);
    assert.equal((await write.json() as { missing_permission: string }).missing_permission, 'nodes:write');
    const call = await fetch(`${f.t.url}/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'memory_search', arguments: { query: 'x' } } }),
    });
    assert.equal(call.status, 403);
  });
});

describe('item 16: /metrics/auth answers a local scraper or a holder of metrics:read', () => {
  let t: TestHub;
  before(async () => { t = await startHub({ storage: 'memory', env: { MIMIR_TRUST_PROXY: 'true' } }); });
  after(async () => t.close());

  it('a remote client (as MIMIR_TRUST_PROXY sees it) needs a credential with metrics:read', async () => {
    const remote = { 'x-forwarded-for': '203.0.113.7' };
    const none = await fetch(`${t.url}/metrics/auth`, { headers: remote });
    assert.equal(none.status, 401);
    const viewer = (await t.hub.apiKeys.create({ name: 'v', roles: ['viewer'] })).key;
    const denied = await fetch(`${t.url}/metrics/auth`, { headers: { ...remote, 'x-api-key': viewer } });
    assert.equal(denied.status, 403);
    assert.equal((await denied.json() as { missing_permission: string }).missing_permission, 'metrics:read');
    const scraper = (await t.hub.apiKeys.create({ name: 'prometheus', roles: ['metrics-reader'] })).key;
    const ok = await fetch(`${t.url}/metrics/auth`, { headers: { ...remote, 'x-api-key': scraper } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /mimir_auth_/);
  });

  it('a scraper on the same host needs nothing', async () => {
    const res = await fetch(`${t.url}/metrics/auth`);
    assert.equal(res.status, 200);
    await res.text();
  });
});

describe('item 19: the library adapters fail closed', () => {
  let t: TestHub;
  let viewer: string;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    viewer = (await t.hub.apiKeys.create({ name: 'v', roles: ['viewer'] })).key;
  });
  after(async () => t.close());

  it('Fastify: every route of the scope needs a credential unless it opts out', async () => {
    const app = Fastify();
    await app.register(mimirAuth, { hub: t.hub });
    app.get('/api/nodes', async (req) => ({ sub: req.principal!.sub }));
    app.delete('/api/nodes/1', { config: { mimirAuth: { permission: 'nodes:delete' } } }, async () => ({ deleted: true }));
    app.get('/status', { config: { mimirAuth: false } }, async () => ({ ok: true }));
    try {
      const open = await app.inject({ url: '/api/nodes' });
      assert.equal(open.statusCode, 401, 'a route with no option is protected');
      const ok = await app.inject({ url: '/api/nodes', headers: { 'x-api-key': viewer } });
      assert.equal(ok.statusCode, 200);
      const denied = await app.inject({ method: 'DELETE', url: '/api/nodes/1', headers: { 'x-api-key': viewer } });
      assert.equal(denied.statusCode, 403);
      assert.equal((await app.inject({ url: '/status' })).statusCode, 200, 'an explicit opt-out is public');
    } finally {
      await app.close();
    }
  });

  it('Express: the middleware refuses without a credential and decides a permission', async () => {
    const app = express();
    app.use('/api', mimirAuthExpress({ hub: t.hub }) as express.RequestHandler);
    app.delete('/api/nodes/1', mimirAuthExpress({ hub: t.hub, permission: 'nodes:delete' }) as express.RequestHandler, (_req, res) => { res.json({ deleted: true }); });
    app.get('/api/nodes', (_req, res) => { res.json({ ok: true }); });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal((await fetch(`${url}/api/nodes`)).status, 401);
      assert.equal((await fetch(`${url}/api/nodes`, { headers: { 'x-api-key': viewer } })).status, 200);
      assert.equal((await fetch(`${url}/api/nodes/1`, { method: 'DELETE', headers: { 'x-api-key': viewer } })).status, 403);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
