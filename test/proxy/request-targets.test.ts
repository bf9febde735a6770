/**
 * Issue 15, items 1, 10, 11 and 12, replayed on the wire: request targets the upstream could
 * route differently from the hub, identity headers sent twice, method overrides, and JSON-RPC
 * ids of the wrong type. Each is refused with 400 and never reaches the upstream (or, for
 * method overrides, reaches it without the override).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest } from '../helpers/raw-http.ts';
import { startFront, type Front } from './setup.ts';

/** A role that may reach unmapped upstream paths and one MCP tool, but not memory_node, nor search. */
const RBAC = JSON.stringify({
  version: '1.0', claimPath: 'roles', defaultRole: 'viewer',
  roleMappings: {
    viewer: { permissions: ['nodes:read'] },
    power: { permissions: ['upstream:access', 'mcp:tool:memory_search', 'nodes:read', 'nodes:write'] },
  },
});

const MCP_HEADERS: Array<[string, string]> = [['Content-Type', 'application/json'], ['Accept', 'application/json, text/event-stream']];

describe('item 1: targets with fragments, dot segments, empty segments, backslashes or encoded separators', () => {
  let f: Front;
  let key: string;
  before(async () => {
    f = await startFront({ env: { MIMIR_RBAC_CONFIG: RBAC } });
    key = (await f.t.hub.apiKeys.create({ name: 'power', roles: ['power'] })).key;
  });
  after(async () => f.close());

  const call = (target: string, body: unknown, headers: Array<[string, string]> = MCP_HEADERS) =>
    rawRequest(f.t.url, { method: 'POST', target, headers: [['X-API-Key', key], ...headers], body: JSON.stringify(body) });

  it('POST /mcp# (and /mcp#x, /MCP#, /mcp/#) with a forbidden tools/call is 400 and the tool never runs', async () => {
    const forbidden = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'memory_node', arguments: { title: 'pwned' } } };
    const before = f.upstream.received.length;
    for (const target of ['/mcp#', '/mcp#x', '/MCP#', '/mcp/#', '/mcp?x=1#frag', '/mcp#/../api']) {
      const res = await call(target, forbidden);
      assert.equal(res.status, 400, target);
      assert.equal(JSON.parse(res.body).error, 'invalid_request', target);
    }
    assert.equal(f.upstream.received.length, before, 'nothing reached the upstream');
  });

  it('POST /api/nodes/vector-search# is 400, not judged by the nodes:write rule', async () => {
    const before = f.upstream.received.length;
    const res = await call('/api/nodes/vector-search#', { query: 'x' }, [['Content-Type', 'application/json']]);
    assert.equal(res.status, 400);
    assert.equal(f.upstream.received.length, before);
  });

  it('dot segments, empty segments, backslashes and encoded / \\ . in the path are 400, on every method', async () => {
    const before = f.upstream.received.length;
    for (const target of ['/api/nodes/../mcp', '/api/./nodes/1', '/api/nodes/..', '//api/nodes/1', '/api//nodes/1', '/api\\nodes\\1',
      '/api/nodes%2f1', '/api/nodes%2F..%2Fmcp', '/api%5cnodes', '/api/nodes/%2e%2e/mcp', '/api/%2E/nodes', '/api/nodes/1%00']) {
      for (const method of ['GET', 'POST']) {
        const res = await rawRequest(f.t.url, { method, target, headers: [['X-API-Key', key]], ...(method === 'POST' ? { body: '{}' } : {}) });
        assert.equal(res.status, 400, `${method} ${target}`);
      }
    }
    assert.equal(f.upstream.received.length, before, 'nothing reached the upstream');
  });

  it('an absolute-form target is 400', async () => {
    const res = await rawRequest(f.t.url, { method: 'GET', target: `${f.upstream.url}/api/nodes/1`, headers: [['X-API-Key', key]] });
    assert.equal(res.status, 400);
  });

  it('a plain target is decided as Express routes it and forwarded as received; encoded slashes in the query are fine', async () => {
    const res = await rawRequest(f.t.url, { method: 'GET', target: '/API/Nodes/1/?path=%2Fhome%2F..', headers: [['X-API-Key', key]] });
    assert.equal(res.status, 200);
    assert.equal(f.upstream.received.at(-1)!.path.toLowerCase(), '/api/nodes/1/');
  });
});

describe('items 10, 11, 12: identity headers sent twice, method overrides, JSON-RPC ids', () => {
  let f: Front;
  let developer: string;
  let trusted: { token: string };
  before(async () => {
    f = await startFront();
    developer = (await f.t.hub.apiKeys.create({ name: 'dev', roles: ['developer'] })).key;
    const { clientSecret } = await f.t.hub.serviceAccounts.create({ clientId: 'trusted-svc', roles: ['developer'], allowUserContext: true });
    const res = await fetch(`${f.t.url}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`trusted-svc:${clientSecret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    trusted = { token: (await res.json() as { access_token: string }).access_token };
  });
  after(async () => f.close());

  it('a repeated X-User-ID (or email, or roles) header is 400 for anyone, and never merged', async () => {
    const before = f.upstream.received.length;
    for (const [name, a, b] of [['X-User-ID', 'joe', 'boss'], ['X-User-Email', 'a@example.com', 'b@example.com'], ['X-User-Roles', 'viewer', 'admin']]) {
      for (const auth of [['Authorization', `Bearer ${trusted.token}`], ['X-API-Key', developer]] as Array<[string, string]>) {
        const res = await rawRequest(f.t.url, { method: 'GET', target: '/api/nodes/1', headers: [auth, [name!, a!], [name!, b!]] });
        assert.equal(res.status, 400, `${name} twice with ${auth[0]}`);
      }
    }
    assert.equal(f.upstream.received.length, before);
  });

  it('X-HTTP-Method-Override, X-Method-Override and X-HTTP-Method never reach the upstream', async () => {
    const res = await fetch(`${f.t.url}/api/nodes/1`, {
      headers: { 'x-api-key': developer, 'x-http-method-override': 'DELETE', 'x-method-override': 'DELETE', 'x-http-method': 'DELETE' },
    });
    assert.equal(res.status, 200);
    await res.text();
    const seen = f.upstream.received.at(-1)!.headers;
    assert.equal(seen['x-http-method-override'], undefined);
    assert.equal(seen['x-method-override'], undefined);
    assert.equal(seen['x-http-method'], undefined);
  });

  it('tools/list with an object or array id is 400, never an unfiltered answer', async () => {
    const viewer = (await f.t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
    for (const id of [{}, [1], { a: 1 }, true]) {
      const res = await fetch(`${f.t.url}/mcp`, {
        method: 'POST', headers: { 'x-api-key': viewer, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }),
      });
      assert.equal(res.status, 400, JSON.stringify(id));
      const body = await res.json() as { error: { code: number }; result?: unknown };
      assert.equal(body.error.code, -32600);
      assert.equal(body.result, undefined);
    }
  });
});
