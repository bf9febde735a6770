/**
 * Issue 16, end to end: the hub in front of an upstream faithful to the real Mimir
 * (test/helpers/mimir.ts: its 70 routes, its one shared MCP session, its credential channels,
 * its HS256 check with its own security on), used by several people with different roles at once,
 * with the MCP SDK clients of both generations and plain HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { basic, postForm } from '../helpers/http.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { MIMIR_FACTS, MIMIR_SESSION_ID, signMimirJwt, startMimir, type Mimir, type MimirEcho } from '../helpers/mimir.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { mcpClient, RBAC_FIXTURE } from './setup.ts';
import { allows, parseRbac, Rbac } from '../../src/rbac/policy.ts';

const MIMIR_SECRET = randomBytes(32).toString('base64url');
const rbac = new Rbac(parseRbac(RBAC_FIXTURE));
const ROLES = ['admin', 'developer', 'analyst', 'viewer'] as const;

/** The facts' routes that reach Mimir through the hub (not its /auth namespace, nor its SPA), with a path to send. */
const ROUTES = MIMIR_FACTS.routes.filter((r) => !r.path.startsWith('/auth') && !r.path.startsWith('/<'))
  .map((r) => ({ ...r, send: (r.path === '/health' ? '/upstream/health' : r.path).replace(/:[A-Za-z]+/g, 'x1') }));
/** Streams that never end on their own: exercised on their own below. */
const ENDLESS = new Set(['GET /mcp', 'GET /api/indexing-progress', 'GET /api/execution-stream/:executionId']);

describe('the hub in front of Mimir with its own security on (MIMIR_UPSTREAM_AUTH=mimir-jwt)', () => {
  let mimir: Mimir;
  let t: TestHub;
  const keys: Record<string, string> = {};
  before(async () => {
    mimir = await startMimir({ security: { jwtSecret: MIMIR_SECRET }, heartbeatMs: 200 });
    t = await startHub({
      storage: 'memory',
      env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, MIMIR_UPSTREAM_AUTH: 'mimir-jwt', MIMIR_UPSTREAM_JWT_SECRET: MIMIR_SECRET },
    });
    for (const role of ROLES) keys[role] = (await t.hub.apiKeys.create({ name: role, roles: [role] })).key;
  });
  after(async () => {
    await t?.close();
    await mimir?.close();
  });

  it('every route of Mimir: a role holding its permission reaches it as itself; one lacking it gets 403 and Mimir is not contacted', async () => {
    let reached = 0;
    let refused = 0;
    for (const route of ROUTES) {
      if (ENDLESS.has(`${route.method} ${route.path}`)) continue;
      for (const role of ROLES) {
        const before = mimir.received.length;
        const res = await fetch(`${t.url}${route.send}`, {
          method: route.method,
          headers: { 'x-api-key': keys[role]!, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          ...(route.method === 'GET' ? {} : { body: route.path === '/mcp' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) : '{"stream":false}' }),
        });
        const text = await res.text();
        const needed = route.path === '/mcp' ? null : route.permission;
        const may = needed === null || allows(rbac.permissionsFor([role]), needed);
        if (!may) {
          assert.equal(res.status, 403, `${role}: ${route.method} ${route.path}`);
          assert.equal(JSON.parse(text).missing_permission, needed);
          assert.equal(mimir.received.length, before, `${role}: ${route.method} ${route.path} reached Mimir`);
          refused++;
          continue;
        }
        const seen = mimir.received.at(-1)!;
        assert.equal(mimir.received.length, before + 1, `${role}: ${route.method} ${route.path} reached Mimir once`);
        assert.equal(seen.route, route.path === '/health' ? 'GET /health' : `${route.method} ${route.path}`, `${role}: ${route.method} ${route.path}`);
        // Mimir's own check verified the token the hub minted, and saw this caller.
        if (seen.identity.check !== 'not-checked') {
          assert.equal(seen.identity.check, 'verified', `${role}: ${route.method} ${route.path}: ${seen.identity.check}`);
          assert.equal(seen.identity.channel, 'authorization');
          assert.match(String(seen.identity.user?.id), /^api-key:/);
          assert.deepEqual(seen.identity.user?.roles, [role]);
        }
        reached++;
      }
    }
    assert.ok(reached > 100 && refused > 40, `${reached} reached, ${refused} refused`);
  });

  it('the token the hub mints is short-lived, carries the upstream identity, and is reused per principal', async () => {
    for (let i = 0; i < 3; i++) await (await fetch(`${t.url}/api/nodes/types`, { headers: { 'x-api-key': keys.developer! } })).text();
    const seen = mimir.find('/api/nodes/types').slice(-3).map((r) => r.headers.authorization as string);
    assert.equal(new Set(seen).size, 1, 'one token for the three requests');
    const claims = decodeJwt(seen[0]!.replace(/^Bearer /, ''));
    assert.ok(claims.exp! - claims.iat! <= 300);
    assert.match(String(claims.sub), /^api-key:/);
    assert.deepEqual(claims.roles, ['developer']);
  });

  it('Mimir\'s credential channels are closed: another user\'s Mimir token in the query, a cookie or a non-Bearer Authorization never reaches it', async () => {
    const victim = await signMimirJwt(MIMIR_SECRET, { sub: 'victim', email: 'victim@example.com', roles: ['admin'] });
    const before = mimir.received.length;
    const target = `/api/nodes/types?access_token=${victim}&api_key=${victim}&access_token%5B%5D=${victim}&keep=1&api%5Fkey=${victim}`;
    const res = await rawRequest(t.url, { method: 'GET', target, headers: [['X-API-Key', keys.viewer!], ['Cookie', `mimir_oauth_token=${victim}; other=1`], ['X-API-Key-2', 'x']] });
    assert.equal(res.status, 200);
    const seen = mimir.received.at(-1)!;
    assert.equal(mimir.received.length, before + 1);
    assert.equal(seen.identity.check, 'verified');
    assert.match(String(seen.identity.user?.id), /^api-key:/, 'Mimir saw the caller, not the victim');
    assert.deepEqual(seen.identity.user?.roles, ['viewer']);
    assert.equal(seen.originalUrl, '/api/nodes/types?keep=1', 'the other parameters kept, in order');
    assert.equal(seen.headers.cookie, 'other=1');
    assert.ok(!JSON.stringify(seen.headers).includes(victim), 'the victim\'s token reached Mimir nowhere');
  });

  it('two principals share Mimir\'s one MCP session without evicting each other, with both SDK generations at once', async () => {
    const dev = await mcpClient(1, t.url, { 'x-api-key': keys.developer! });
    const adm = await mcpClient(2, t.url, { 'x-api-key': keys.admin! });
    const view = await mcpClient(1, t.url, { 'x-api-key': keys.viewer! });
    try {
      assert.ok((await dev.listTools()).includes('memory_node'));
      assert.ok((await adm.listTools()).includes('memory_clear'));
      assert.deepEqual(await view.listTools(), [], 'a viewer holds no mcp permission: no tool is listed');
      const asDev = JSON.parse(await dev.call('memory_node', { operation: 'query' })) as { identity: { user: { id: string; roles: string[] } } };
      assert.deepEqual(asDev.identity.user.roles, ['developer']);
      const asAdmin = JSON.parse(await adm.call('todo_list', {})) as { identity: { user: { roles: string[] } } };
      assert.deepEqual(asAdmin.identity.user.roles, ['admin']);
      // Still working after the others initialized.
      assert.ok((await dev.listTools()).length > 0);
      await assert.rejects(view.call('memory_node', { operation: 'query' }));
    } finally {
      await dev.close();
      await adm.close();
      await view.close();
    }
    assert.equal(mimir.mcp.sessionId, MIMIR_SESSION_ID);
  });

  it('a session id is no credential: another principal\'s hub session is 404 and Mimir is not contacted; Mimir\'s own id is unknown to the hub', async () => {
    const init = await fetch(`${t.url}/mcp`, {
      method: 'POST', headers: { 'x-api-key': keys.developer!, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    await init.text();
    const hubSession = init.headers.get('mcp-session-id')!;
    assert.ok(hubSession && hubSession !== MIMIR_SESSION_ID, 'the client gets the hub\'s own id');
    for (const session of [hubSession, MIMIR_SESSION_ID]) {
      const before = mimir.received.length;
      const res = await fetch(`${t.url}/mcp`, {
        method: 'POST', headers: { 'x-api-key': keys.admin!, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      });
      assert.equal(res.status, 404);
      await res.text();
      assert.equal(mimir.received.length, before);
    }
  });

  it('an MCP session ends with the refresh family it was opened with', async () => {
    const grant = { sub: 'ada', clientId: 'mimir-cli', scope: '', roles: ['developer'], publicClient: true };
    const family = await t.hub.refreshTokens.issue(grant);
    const refreshed = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: family.token, client_id: 'mimir-cli' });
    const init = await fetch(`${t.url}/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${refreshed.body.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    assert.equal(init.status, 200, await init.clone().text());
    await init.text();
    const session = init.headers.get('mcp-session-id')!;
    await t.hub.refreshTokens.revokeFamily(family.familyId, 'test');
    // The same person and client, with a token of another (live) family: the session is gone.
    const other = await t.hub.refreshTokens.issue(grant);
    const fresh = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: other.token, client_id: 'mimir-cli' });
    const before = mimir.received.length;
    const res = await fetch(`${t.url}/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${fresh.body.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    assert.equal(res.status, 404);
    await res.text();
    assert.equal(mimir.received.length, before);
  });

  it('a trusted service acting for a user: /auth/me shows exactly whom Mimir is told', async () => {
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'pctx', roles: ['developer'], allowUserContext: true });
    const token = (await postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials' }, basic('pctx', clientSecret))).body.access_token as string;
    const headers = { authorization: `Bearer ${token}`, 'x-user-id': 'alice', 'x-user-roles': 'admin', 'x-user-email': 'alice@example.com' };
    const me = await (await fetch(`${t.url}/auth/me`, { headers })).json() as { sub: string; act: { sub: string }; roles: string[]; upstream: { id: string; roles: string[]; email: string } };
    assert.equal(me.sub, 'alice');
    assert.equal(me.act.sub, 'pctx');
    assert.deepEqual(me.roles, ['developer'], 'alice\'s admin narrowed to what the service holds');
    const res = await fetch(`${t.url}/api/nodes/types`, { headers });
    const echo = await res.json() as MimirEcho;
    assert.equal(echo.identity.user?.id, me.upstream.id);
    assert.deepEqual(echo.identity.user?.roles, me.upstream.roles);
    assert.equal(echo.identity.user?.email, me.upstream.email);
  });

  it('streams flow event by event and are never cut for being idle; a revoked key\'s stream is closed', async () => {
    const { key, record } = await t.hub.apiKeys.create({ name: 'watcher', roles: ['viewer'] });
    const controller = new AbortController();
    const res = await fetch(`${t.url}/api/indexing-progress`, { headers: { 'x-api-key': key, accept: 'text/event-stream' }, signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.getReader();
    const received: string[] = [];
    const read = (async () => {
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) return 'ended';
        received.push(Buffer.from(value!).toString());
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(received.join('').split(': heartbeat').length - 1 >= 3, `heartbeats flow: ${JSON.stringify(received.join('').slice(0, 200))}`);
    assert.equal(mimir.indexing.clients(), 1);
    await t.hub.apiKeys.revoke(record.id);
    const ended = await Promise.race([read, new Promise((r) => setTimeout(() => r('still open'), 3000))]);
    assert.equal(ended, 'ended', 'the stream closed when its key was revoked');
    controller.abort();
    await mimir.indexing.closed();
  });

  it('a person in a browser is sent to sign in and brought back; an API client gets 401 with WWW-Authenticate', async () => {
    const page = await fetch(`${t.url}/portal`, { headers: { accept: 'text/html,application/xhtml+xml' }, redirect: 'manual' });
    assert.equal(page.status, 302);
    assert.equal(page.headers.get('location'), '/auth/login?returnTo=%2Fportal');
    const api = await fetch(`${t.url}/api/nodes/types`, { headers: { accept: 'application/json' } });
    assert.equal(api.status, 401);
    assert.match(api.headers.get('www-authenticate') ?? '', /^Bearer /);
  });
});

describe('the hub in front of Mimir with its security off (MIMIR_UPSTREAM_AUTH=none)', () => {
  let mimir: Mimir;
  let t: TestHub;
  before(async () => {
    mimir = await startMimir();
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE } });
  });
  after(async () => {
    await t?.close();
    await mimir?.close();
  });

  it('Mimir gets the identity in X-User-* and no credential on any channel', async () => {
    const { key, record } = await t.hub.apiKeys.create({ name: 'dev', roles: ['developer'] });
    const res = await rawRequest(t.url, { method: 'GET', target: '/api/nodes/types?access_token=abc&q=1', headers: [['X-API-Key', key], ['Authorization', 'Basic Zm9vOmJhcg=='], ['Cookie', 'mimir_oauth_token=abc']] });
    assert.equal(res.status, 200);
    const seen = mimir.received.at(-1)!;
    assert.equal(seen.identity.check, 'off');
    assert.deepEqual(seen.identity.headers, { 'x-user-id': `api-key:${record.id}`, 'x-user-roles': 'developer' });
    assert.equal(seen.headers.authorization, undefined, 'Mimir serves a non-Bearer Authorization unauthenticated: never forwarded');
    assert.equal(seen.headers['x-api-key'], undefined);
    assert.equal(seen.headers.cookie, undefined);
    assert.equal(seen.originalUrl, '/api/nodes/types?q=1');
  });
});

describe('a stream that says nothing for a while', () => {
  it('is not cut for being idle (Mimir\'s indexing progress: headers, then a heartbeat now and then)', async () => {
    const mimir = await startMimir({ heartbeatMs: 6000 });
    const t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE } });
    const controller = new AbortController();
    try {
      const { key } = await t.hub.apiKeys.create({ name: 'watcher', roles: ['viewer'] });
      const res = await fetch(`${t.url}/api/indexing-progress`, { headers: { 'x-api-key': key }, signal: controller.signal });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      const started = Date.now();
      const first = await reader.read();
      assert.equal(first.done, false, 'the stream is still open after the idle gap');
      assert.match(Buffer.from(first.value!).toString(), /: heartbeat/);
      assert.ok(Date.now() - started >= 5000, 'the first bytes came after the idle gap');
    } finally {
      controller.abort();
      await t.close();
      await mimir.close();
    }
  });
});

describe('Mimir\'s own security on, the hub not minting its tokens', () => {
  it('mimir-auth doctor names the problem and the variable', async () => {
    const mimir = await startMimir({ security: { jwtSecret: MIMIR_SECRET } });
    try {
      const { loadConfig } = await import('../../src/config/index.ts');
      const { runDoctor } = await import('../../src/cli/doctor.ts');
      const config = loadConfig({ MIMIR_TOKEN_STORAGE: 'memory', MIMIR_UPSTREAM_URL: mimir.url, MIMIR_LOG_LEVEL: 'silent' }, { dotenv: false });
      const checks = await runDoctor(config);
      const security = checks.find((c) => c.name === 'upstream security')!;
      assert.equal(security.verdict, 'problem');
      assert.match(security.fix ?? '', /MIMIR_UPSTREAM_AUTH=mimir-jwt/);
      const coverage = checks.find((c) => c.name === 'route coverage')!;
      assert.match(coverage.detail, /^(\d+) of \1 GET routes/, coverage.detail);
    } finally {
      await mimir.close();
    }
  });
});
