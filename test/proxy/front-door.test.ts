import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { serviceAccountToken, startHub } from '../helpers/hub.ts';
import { mcpClient, startFront, type Front } from './setup.ts';

const json = (res: Response) => res.json() as Promise<Record<string, any>>;

describe('the authenticating reverse proxy', () => {
  let f: Front;
  let developerKey: string;
  let viewerKey: string;
  const auditFile = join(mkdtempSync(join(tmpdir(), 'mimir-audit-')), 'audit.log');
  before(async () => {
    f = await startFront({ env: { MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file', MIMIR_AUDIT_LOG_FILE: auditFile } });
    developerKey = (await f.t.hub.apiKeys.create({ name: 'dev', roles: ['developer'] })).key;
    viewerKey = (await f.t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
  });
  after(async () => {
    await f.close();
    rmSync(dirname(auditFile), { recursive: true, force: true });
  });

  it('proxies /api/nodes with the user context headers set from the Principal', async () => {
    const res = await fetch(`${f.t.url}/api/nodes/42?x=1`, { headers: { 'x-api-key': developerKey } });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.path, '/api/nodes/42');
    assert.match(body.identity['x-user-id'], /^api-key:/);
    assert.equal(body.identity['x-user-roles'], 'developer');
    assert.equal(body.identity['x-forwarded-proto'], 'http');
    assert.equal(body.identity['x-forwarded-for'], '127.0.0.1');
    assert.equal(body.identity['x-forwarded-host'], new URL(f.t.url).host);
    // The upstream is addressed as itself: its own host and port, once.
    const raw = f.upstream.find('/api/nodes/42').at(-1)!;
    assert.equal(raw.headers.host, new URL(f.upstream.url).host);
    assert.equal(raw.headers.connection, 'keep-alive');
  });

  it('never passes inbound credentials, the session cookie or X-User-* headers upstream', async () => {
    const res = await fetch(`${f.t.url}/api/nodes/1`, {
      headers: {
        'x-api-key': developerKey, 'x-user-id': 'admin', 'x-user-roles': 'admin', 'x-user-email': 'boss@example.com',
        'x-user-whatever': 'x', cookie: `${f.t.config.session.cookie.name}=abc; theme=dark`, 'x-forwarded-for': '6.6.6.6', 'x-forwarded-token': 'forged',
      },
    });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.notEqual(body.identity['x-user-id'], 'admin');
    assert.equal(body.identity['x-user-roles'], 'developer');
    assert.equal(body.identity['x-user-email'], undefined);
    assert.equal(body.identity['x-api-key'], undefined);
    assert.equal(body.identity.cookie, 'theme=dark');
    assert.equal(body.identity['x-forwarded-for'], '127.0.0.1');
    assert.equal(body.identity['x-forwarded-token'], undefined);
    const raw = f.upstream.find('/api/nodes/1').at(-1)!;
    assert.equal(raw.headers['x-user-whatever'], undefined);
    assert.equal(raw.headers.authorization, undefined);
  });

  it('a spoofed X-User-ID from a plain API key never reaches the upstream', async () => {
    const before = f.upstream.received.length;
    const s = await mcpClient(1, f.t.url, { 'x-api-key': developerKey, 'x-user-id': 'victim@example.com' });
    try {
      const seen = JSON.parse(await s.call('whoami')) as Record<string, string>;
      assert.match(seen['x-user-id']!, /^api-key:/);
    } finally {
      await s.close();
    }
    const leaked = f.upstream.received.slice(before).filter((r) => JSON.stringify(r.headers).includes('victim@example.com'));
    assert.deepEqual(leaked, []);
  });

  it('a viewer (Mimir rbac.json) is denied nodes:write with 403 insufficient_scope naming it', async () => {
    const before = f.upstream.find('/api/nodes').length;
    const res = await fetch(`${f.t.url}/api/nodes`, { method: 'POST', headers: { 'x-api-key': viewerKey, 'content-type': 'application/json' }, body: '{"title":"x"}' });
    assert.equal(res.status, 403);
    const body = await json(res);
    assert.equal(body.error, 'insufficient_scope');
    assert.equal(body.missing_permission, 'nodes:write');
    assert.match(res.headers.get('www-authenticate')!, /error="insufficient_scope".*scope="nodes:write"/);
    assert.equal(f.upstream.find('/api/nodes').length, before, 'a denied request never reaches the upstream');
  });

  it('a viewer may read nodes', async () => {
    const res = await fetch(`${f.t.url}/api/nodes/7`, { headers: { 'x-api-key': viewerKey } });
    assert.equal(res.status, 200);
  });

  it('a developer may write nodes, the body streamed through unchanged', async () => {
    const res = await fetch(`${f.t.url}/api/nodes`, { method: 'POST', headers: { 'x-api-key': developerKey, 'content-type': 'application/json' }, body: '{"title":"streamed"}' });
    assert.equal(res.status, 200);
    assert.deepEqual((await json(res)).body, { title: 'streamed' });
  });

  it('a viewer sees only the tools it may call and is refused tools/call with 403', async () => {
    const s = await mcpClient(1, f.t.url, { 'x-api-key': viewerKey });
    try {
      assert.deepEqual(await s.listTools(), []);
      await assert.rejects(s.call('memory_node', { title: 'x' }), /insufficient_scope/);
    } finally {
      await s.close();
    }
  });

  it('tools/list is filtered to mcp:tool:<name> grants and tools/call of another tool is denied', async () => {
    const { clientSecret } = await f.t.hub.serviceAccounts.create({ clientId: 'narrow-svc', roles: ['developer'], scopes: ['mcp:tool:memory_search'] });
    const res = await fetch(`${f.t.url}/auth/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`narrow-svc:${clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    const { access_token } = await json(res);
    const s = await mcpClient(2, f.t.url, { authorization: `Bearer ${access_token}` });
    try {
      assert.deepEqual(await s.listTools(), ['memory_search']);
      assert.equal(await s.call('memory_search', { query: 'q' }), 'results for q');
      await assert.rejects(s.call('memory_node', { title: 'x' }));
    } finally {
      await s.close();
    }
    const direct = await fetch(`${f.t.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'memory_node', arguments: { title: 'x' } } }),
    });
    assert.equal(direct.status, 403);
    assert.equal((await json(direct)).missing_permission, 'mcp:tool:memory_node');
  });

  it('a service account allowed user context acts for the user with the roles both hold', async () => {
    const { clientSecret } = await f.t.hub.serviceAccounts.create({ clientId: 'pctx-ctx', roles: ['developer'], allowUserContext: true });
    const tokenRes = await fetch(`${f.t.url}/auth/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`pctx-ctx:${clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    const { access_token } = await json(tokenRes);
    const asAdmin = await fetch(`${f.t.url}/api/nodes/1`, { headers: { authorization: `Bearer ${access_token}`, 'x-user-id': 'alice', 'x-user-email': 'alice@example.com', 'x-user-roles': 'admin' } });
    assert.equal(asAdmin.status, 200);
    const seen = (await json(asAdmin)).identity;
    assert.equal(seen['x-user-id'], 'alice');
    assert.equal(seen['x-user-email'], 'alice@example.com');
    assert.equal(seen['x-user-roles'], 'developer', 'an admin user through a developer service gets developer');
    const asViewer = await fetch(`${f.t.url}/api/nodes`, { method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'x-user-id': 'bob', 'x-user-roles': 'viewer', 'content-type': 'application/json' }, body: '{}' });
    assert.equal(asViewer.status, 403, 'a viewer user through a developer service cannot write');
  });

  it('a service account without --allow-user-context cannot assert a user', async () => {
    const { token, clientId } = await serviceAccountToken(f.t, ['developer']);
    const res = await fetch(`${f.t.url}/api/nodes/1`, { headers: { authorization: `Bearer ${token}`, 'x-user-id': 'alice' } });
    assert.equal(res.status, 200);
    assert.equal((await json(res)).identity['x-user-id'], `service-account:${clientId}`);
  });

  it('the upstream health is reachable under /upstream/health; the hub keeps its own /health', async () => {
    const up = await fetch(`${f.t.url}/upstream/health`, { headers: { 'x-api-key': viewerKey } });
    assert.equal(up.status, 200);
    assert.equal((await json(up)).service, 'mimir');
    const own = await fetch(`${f.t.url}/health`);
    assert.deepEqual(await json(own), { status: 'ok' });
    const jwks = await fetch(`${f.t.url}/.well-known/jwks.json`);
    assert.equal(jwks.status, 200);
  });

  it('the hub\'s own namespaces are never proxied', async () => {
    const before = f.upstream.received.length;
    for (const [method, path] of [['GET', '/auth/nothing'], ['POST', '/health'], ['GET', '/.well-known/nothing'], ['DELETE', '/ready']] as const) {
      const res = await fetch(`${f.t.url}${path}`, { method, headers: { 'x-api-key': developerKey } });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    assert.equal(f.upstream.received.length, before);
  });

  it('requires authentication before anything reaches the upstream', async () => {
    const before = f.upstream.received.length;
    const res = await fetch(`${f.t.url}/api/nodes/1`);
    assert.equal(res.status, 401);
    assert.ok(res.headers.get('www-authenticate'));
    assert.equal(f.upstream.received.length, before);
  });

  it('refuses dot segments and encoded separators in the path', async () => {
    for (const path of ['/api/nodes/%2e%2e/admin', '/api/nodes/..%2fadmin', '/api//nodes']) {
      const status = await new Promise<number>((resolve, reject) => {
        // A raw path: WHATWG URL parsing (fetch, new URL) would resolve the dot segments first.
        const { hostname, port } = new URL(f.t.url);
        const req = request({ hostname, port, path, headers: { 'x-api-key': developerKey } }, (res) => { res.resume(); resolve(res.statusCode!); });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 400, path);
    }
  });

  it('maps paths case-insensitively, as Express routes them', async () => {
    const res = await fetch(`${f.t.url}/API/Nodes`, { method: 'POST', headers: { 'x-api-key': viewerKey, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 403);
  });

  it('denials and ignored user-context headers are audited, naming no credential', async () => {
    await (await fetch(`${f.t.url}/api/nodes/9`, { method: 'DELETE', headers: { 'x-api-key': viewerKey } })).text();
    await (await fetch(`${f.t.url}/api/nodes/9`, { headers: { 'x-api-key': viewerKey, 'x-user-id': 'mallory' } })).text();
    await f.t.hub.audit.flush();
    const events = readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(events.some((e) => e.type === 'access_denied' && e.permission === 'nodes:delete' && e.reason === 'insufficient_scope'));
    assert.ok(events.some((e) => e.type === 'user_context_ignored' && e.reason === 'not_a_service_account'));
    const text = readFileSync(auditFile, 'utf8');
    assert.ok(!text.includes(viewerKey) && !text.includes(developerKey), 'no API key in the audit log');
  });

  it('unmapped upstream paths need upstream:access (admin only by default)', async () => {
    // Not a route of Mimir: under its API prefix, or any method but GET outside it (a GET there is its web UI).
    for (const [method, path] of [['GET', '/api/internal/debug'], ['POST', '/internal/debug'], ['DELETE', '/v1/debug']]) {
      const dev = await fetch(`${f.t.url}${path}`, { method, headers: { 'x-api-key': developerKey } });
      assert.equal(dev.status, 403, `${method} ${path}`);
      assert.equal((await json(dev)).missing_permission, 'upstream:access');
    }
  });
});

describe('without an upstream', () => {
  it('proxied routes answer 503 naming MIMIR_UPSTREAM_URL', async () => {
    const t = await startHub({ storage: 'memory' });
    try {
      const res = await fetch(`${t.url}/api/nodes/1`);
      assert.equal(res.status, 503);
      assert.match((await json(res)).error_description, /MIMIR_UPSTREAM_URL/);
      const mcp = await fetch(`${t.url}/mcp`, { method: 'POST' });
      assert.equal(mcp.status, 503);
      assert.equal((await fetch(`${t.url}/health`)).status, 200);
    } finally {
      await t.close();
    }
  });
});
