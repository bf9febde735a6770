/** The Mimir double itself: routed, streaming, sharing its MCP session and reading credentials as the facts say Mimir does. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { SignJWT, UnsecuredJWT } from 'jose';
import { MIMIR_FACTS, MIMIR_SESSION_ID, MIMIR_TOOLS, SPA_ROUTE, signMimirJwt, startMimir, type Mimir, type MimirRbacConfig, type MimirRequest } from './mimir.ts';
import { within } from './time.ts';

const ACCEPT = 'application/json, text/event-stream';
const SECRET = 'mimir-double-test-secret';
const RBAC: MimirRbacConfig = {
  version: '1.0',
  claimPath: 'roles',
  defaultRole: 'viewer',
  roleMappings: {
    admin: { permissions: ['*'] },
    editor: { permissions: ['nodes:*'] },
    viewer: { permissions: ['nodes:read', 'search:execute', 'orchestration:read', 'files:read'] },
  },
};

const initializeBody = (id: number) => ({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });

function postMcp(m: Mimir, body: unknown, headers: Record<string, string> = {}): Promise<globalThis.Response> {
  return fetch(`${m.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: ACCEPT, ...headers }, body: JSON.stringify(body) });
}

/** The one record of the request whose URL carried this probe marker. */
function probed(m: Mimir, probe: string): MimirRequest {
  const found = m.received.filter((r) => r.originalUrl.includes(`probe=${probe}`));
  assert.equal(found.length, 1, `one request recorded for probe ${probe}`);
  return found[0]!;
}

/** Reads an event stream until `done(text)` holds; fails if the stream ends first or it takes too long. */
function readUntil(reader: ReadableStreamDefaultReader<string>, done: (text: string) => boolean, what: string): Promise<string> {
  const read = async () => {
    let text = '';
    while (!done(text)) {
      const chunk = await reader.read();
      assert.equal(chunk.done, false, `the stream ended before ${what}`);
      text += chunk.value;
    }
    return text;
  };
  return within(read(), 10_000, what);
}

const textReader = (res: globalThis.Response) => res.body!.pipeThrough(new TextDecoderStream()).getReader();

describe('Mimir double: routing as in the facts file', () => {
  let m: Mimir;
  before(async () => { m = await startMimir(); });
  after(async () => { await m.close(); });

  it('every route of the facts file is answered by its own handler', async () => {
    const values: Record<string, string> = { type: 'todo', id: 'n-1', executionId: 'exec-1', filename: 'out.md', keyId: 'k-1', name: 'p-1' };
    assert.equal(MIMIR_FACTS.routes.length, MIMIR_FACTS.route_count);
    for (const [i, fact] of MIMIR_FACTS.routes.entries()) {
      const name = `${fact.method} ${fact.path}`;
      const path = name === SPA_ROUTE ? '/portal' : fact.path.replace(/:(\w+)/g, (_, p: string) => values[p]!);
      const url = `${m.url}${path}?probe=${i}`;
      const controller = new AbortController();
      let res: globalThis.Response;
      if (name === 'POST /mcp') {
        res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: ACCEPT }, body: JSON.stringify(initializeBody(1)) });
      } else if (name === 'GET /mcp') {
        res = await fetch(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': MIMIR_SESSION_ID }, signal: controller.signal });
      } else if (name === 'POST /v1/chat/completions') {
        res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: false, messages: [{ role: 'user', content: 'hi' }] }) });
      } else {
        const write = fact.method !== 'GET';
        res = await fetch(url, {
          method: fact.method, signal: controller.signal,
          ...(write ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ probe: i }) } : {}),
        });
      }
      assert.equal(res.status, 200, `${name} answers 200`);
      assert.equal(probed(m, String(i)).route, name, `${name} handled by its route`);
      const type = res.headers.get('content-type') ?? '';
      if (fact.streaming === true) {
        assert.match(type, /^text\/event-stream/, `${name} is a stream`);
        controller.abort();
        continue;
      }
      if (name === SPA_ROUTE) {
        assert.match(type, /^text\/html/);
        await res.text();
        continue;
      }
      const body = await res.json() as { route?: string; params?: Record<string, string>; body?: unknown; result?: unknown };
      if (name === 'POST /mcp') { assert.ok(body.result); continue; }
      if (['GET /health', 'GET /auth/status', 'GET /auth/config'].includes(name)) continue; // Mimir's own shapes, below
      assert.equal(body.route, name);
      const params = Object.fromEntries([...fact.path.matchAll(/:(\w+)/g)].map(([, p]) => [p!, values[p!]!]));
      assert.deepEqual(body.params ?? {}, params);
      if (fact.method !== 'GET' && name !== 'POST /v1/chat/completions') assert.deepEqual(body.body, { probe: i });
    }
  });

  it('paths match case-insensitively and with a trailing slash, as Express does', async () => {
    const cases = [['/API/Nodes/Types/', 'GET /api/nodes/types'], ['/api/KEYS/', 'GET /api/keys'], ['/V1/MODELS', 'GET /v1/models'], ['/Health/', 'GET /health']] as const;
    for (const [i, [path, route]] of cases.entries()) {
      const res = await fetch(`${m.url}${path}?probe=ci-${i}`);
      assert.equal(res.status, 200, path);
      await res.text();
      assert.equal(probed(m, `ci-${i}`).route, route);
    }
  });

  it('unknown GET paths outside api|v1|mcp|health|models|auth get the SPA shell; other unknown requests get Express\'s 404', async () => {
    for (const path of ['/portal', '/studio/x/y', '/API/unknown']) {
      const res = await fetch(`${m.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type')!, /^text\/html/);
      await res.text();
    }
    const unknown = [['GET', '/api/unknown'], ['GET', '/apix'], ['GET', '/healthz'], ['GET', '/v1/unknown'], ['GET', '/authority'], ['POST', '/portal'], ['DELETE', '/mcp'], ['PUT', '/api/nodes']] as const;
    for (const [i, [method, path]] of unknown.entries()) {
      const res = await fetch(`${m.url}${path}?probe=404-${i}`, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.match(await res.text(), new RegExp(`Cannot ${method} ${path}`));
      assert.equal(probed(m, `404-${i}`).route, null);
    }
  });

  it('every OPTIONS request is a CORS preflight answered 204, as the cors package does', async () => {
    const res = await fetch(`${m.url}/anything/at/all`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.match(res.headers.get('access-control-allow-headers')!, /X-API-Key/);
  });

  it('a body that is not JSON gets Mimir\'s 500, as its JSON verify makes it', async () => {
    for (const body of ['{bad', '']) {
      const res = await fetch(`${m.url}/api/nodes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 500);
      assert.equal((await res.json() as { error: { code: number } }).error.code, -32603);
    }
  });

  it('GET /health and GET /auth/status answer as Mimir\'s; security off means authenticated', async () => {
    assert.deepEqual(await (await fetch(`${m.url}/health`)).json(), { status: 'healthy', version: '4.1.0', mode: 'shared-session', tools: MIMIR_TOOLS.length });
    assert.deepEqual(await (await fetch(`${m.url}/auth/status`)).json(), { authenticated: true, securityEnabled: false });
  });

  it('with security off no credential is checked: any token passes, and the X-User-* headers are recorded as the identity', async () => {
    const res = await fetch(`${m.url}/api/nodes/n1?probe=xuser`, {
      headers: { 'x-user-id': 'alice', 'x-user-email': 'alice@example.com', 'x-user-roles': 'developer', authorization: 'Bearer not-a-jwt' },
    });
    assert.equal(res.status, 200);
    const body = await res.json() as { identity: MimirRequest['identity'] };
    const expected = { headers: { 'x-user-id': 'alice', 'x-user-email': 'alice@example.com', 'x-user-roles': 'developer' }, check: 'off', channel: null, user: null };
    assert.deepEqual(body.identity, expected);
    const record = probed(m, 'xuser');
    assert.deepEqual(record.identity, expected);
    assert.equal(record.headers.authorization, 'Bearer not-a-jwt');
    assert.equal(record.status, 200);
  });
});

describe('Mimir double: MCP on one shared session', () => {
  let m: Mimir;
  before(async () => { m = await startMimir(); });
  after(async () => { await m.close(); });

  it('the first initialize goes through the SDK transport, every later one gets the cached 2024-11-05 answer, all with the shared session id', async () => {
    const first = await postMcp(m, initializeBody(1));
    assert.equal(first.headers.get('mcp-session-id'), MIMIR_SESSION_ID);
    const firstBody = await first.json() as { result: { protocolVersion: string; serverInfo: Record<string, string> } };
    assert.equal(firstBody.result.protocolVersion, '2025-06-18', 'negotiated by the SDK');
    assert.deepEqual(firstBody.result.serverInfo, { name: 'Mimir-RAG-TODO-MCP', version: '4.0.0', sessionId: MIMIR_SESSION_ID, sessionMode: 'shared-global' });
    assert.equal(m.mcp.initialized, true);
    // A later initialize, even with a session id Mimir never issued, gets the cached answer.
    const again = await postMcp(m, initializeBody(7), { 'mcp-session-id': 'someone-else' });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('mcp-session-id'), MIMIR_SESSION_ID);
    assert.deepEqual(await again.json(), {
      jsonrpc: '2.0', id: 7,
      result: { protocolVersion: '2024-11-05', capabilities: { tools: {} }, serverInfo: { name: 'Mimir-RAG-TODO-MCP', version: '4.0.0', sessionId: MIMIR_SESSION_ID, sessionMode: 'shared-global' } },
    });
    assert.deepEqual(m.find('/mcp').map((r) => r.mcp?.answer), ['transport', 'cached-initialize']);
  });

  it('a request without Mcp-Session-Id is served on the shared session; any other session id is 404 Session not found', async () => {
    const without = await postMcp(m, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
    assert.equal(without.status, 200);
    assert.equal(without.headers.get('mcp-session-id'), MIMIR_SESSION_ID);
    assert.deepEqual((await without.json() as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name), MIMIR_TOOLS);
    const other = await postMcp(m, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, { 'mcp-session-id': 'another-session' });
    assert.equal(other.status, 404);
    assert.equal(other.headers.get('mcp-session-id'), MIMIR_SESSION_ID);
    assert.match((await other.json() as { error: { message: string } }).error.message, /Session not found/);
  });

  it('SDK 1.x and 2.x clients both get the one shared session and every tool of the facts, each call naming the tool and whom Mimir saw', async () => {
    const url = new URL(`${m.url}/mcp`);
    const v1 = new ClientV1({ name: 'double-v1', version: '1' });
    const t1 = new TransportV1(url, { requestInit: { headers: { 'x-user-id': 'alice' } } });
    const v2 = new ClientV2({ name: 'double-v2', version: '1' });
    const t2 = new TransportV2(url, { requestInit: { headers: { 'x-user-id': 'bob' } } });
    await v1.connect(t1);
    await v2.connect(t2);
    try {
      assert.equal(t1.sessionId, MIMIR_SESSION_ID);
      assert.equal(t2.sessionId, MIMIR_SESSION_ID);
      assert.deepEqual((await v1.listTools()).tools.map((t) => t.name), MIMIR_TOOLS);
      assert.deepEqual((await v2.listTools()).tools.map((t) => t.name), MIMIR_TOOLS);
      const call = async (client: ClientV1 | ClientV2, name: string) => {
        const r = await (client as ClientV1).callTool({ name, arguments: { q: 1 } });
        return JSON.parse((r.content as Array<{ text: string }>)[0]!.text) as { tool: string; arguments: unknown; identity: MimirRequest['identity'] };
      };
      const a = await call(v1, 'memory_node');
      assert.equal(a.tool, 'memory_node');
      assert.deepEqual(a.arguments, { q: 1 });
      assert.deepEqual(a.identity.headers, { 'x-user-id': 'alice' });
      const b = await call(v2, 'todo_list');
      assert.equal(b.tool, 'todo_list');
      assert.deepEqual(b.identity.headers, { 'x-user-id': 'bob' });
    } finally {
      await v1.close();
      await v2.close();
    }
  });

  it('GET /mcp is the shared session\'s one SSE stream: a second one at the same time is refused', async () => {
    const fresh = await startMimir();
    try {
      const headers = { accept: 'text/event-stream', 'mcp-session-id': MIMIR_SESSION_ID };
      const before = await fetch(`${fresh.url}/mcp`, { headers });
      assert.equal(before.status, 400, 'no stream before the session is initialized');
      await before.text();
      await postMcp(fresh, initializeBody(1)).then((r) => r.text());
      const controller = new AbortController();
      const first = await fetch(`${fresh.url}/mcp`, { headers, signal: controller.signal });
      assert.equal(first.status, 200);
      assert.match(first.headers.get('content-type')!, /^text\/event-stream/);
      assert.equal(first.headers.get('mcp-session-id'), MIMIR_SESSION_ID);
      const second = await fetch(`${fresh.url}/mcp`, { headers });
      assert.equal(second.status, 409);
      await second.text();
      // Mimir injects the shared session id on POST only: a GET without one is refused by the SDK.
      const without = await fetch(`${fresh.url}/mcp`, { headers: { accept: 'text/event-stream' } });
      assert.equal(without.status, 400);
      await without.text();
      controller.abort();
    } finally {
      await fresh.close();
    }
  });

  it('a first initialize the SDK refuses still counts as the initialize: Mimir then answers only cached initializes', async () => {
    const fresh = await startMimir();
    try {
      const refused = await postMcp(fresh, initializeBody(1), { accept: 'application/json' });
      assert.equal(refused.status, 406);
      await refused.text();
      assert.equal(fresh.mcp.initialized, true);
      const again = await postMcp(fresh, initializeBody(2));
      assert.equal((await again.json() as { result: { protocolVersion: string } }).result.protocolVersion, '2024-11-05');
      const list = await postMcp(fresh, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
      assert.equal(list.status, 400);
      assert.match((await list.json() as { error: { message: string } }).error.message, /not initialized/);
    } finally {
      await fresh.close();
    }
  });

  it('before the first initialize, the first other request is answered as an initialize', async () => {
    const fresh = await startMimir();
    try {
      assert.equal(fresh.mcp.initialized, false);
      const res = await postMcp(fresh, { jsonrpc: '2.0', id: 5, method: 'tools/list' });
      assert.equal(res.status, 200);
      const body = await res.json() as { id: number; result: { protocolVersion: string; serverInfo: { sessionId: string } } };
      assert.equal(body.id, 5);
      assert.equal(body.result.protocolVersion, '2024-11-05');
      assert.equal(body.result.serverInfo.sessionId, MIMIR_SESSION_ID);
      assert.equal(fresh.mcp.initialized, true);
      const record = fresh.find('/mcp')[0]!;
      assert.deepEqual(record.mcp, { method: 'tools/list', answer: 'auto-initialize' });
      assert.deepEqual(record.body, { jsonrpc: '2.0', id: 5, method: 'tools/list' }, 'recorded as sent, not as rewritten');
    } finally {
      await fresh.close();
    }
  });
});

describe('Mimir double: credentials with security on', () => {
  let m: Mimir;
  let alice: string;
  before(async () => {
    m = await startMimir({ security: { jwtSecret: SECRET } });
    alice = await signMimirJwt(SECRET, { sub: 'alice', email: 'alice@example.com', roles: ['developer'] });
  });
  after(async () => { await m.close(); });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${m.url}${path}`, { headers });

  it('without any credential /api answers 401 Authentication required and POST /mcp a JSON-RPC -32001', async () => {
    const res = await get('/api/agents?probe=none');
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: 'Unauthorized', message: 'Authentication required' });
    assert.equal(probed(m, 'none').identity.check, 'no-credential');
    assert.equal(probed(m, 'none').route, null);
    const mcp = await postMcp(m, { jsonrpc: '2.0', id: 4, method: 'tools/list' });
    assert.equal(mcp.status, 401);
    assert.deepEqual(await mcp.json(), { jsonrpc: '2.0', error: { code: -32001, message: 'Unauthorized: Authentication required' }, id: 4 });
  });

  it('a Mimir JWT is honoured on every channel, the query string included', async () => {
    const channels: Array<[string, string, Record<string, string>]> = [
      ['authorization', '', { authorization: `Bearer ${alice}` }],
      ['x-api-key', '', { 'x-api-key': alice }],
      ['cookie', '', { cookie: `other=1; mimir_oauth_token=${alice}` }],
      ['query:access_token', `&access_token=${alice}`, {}],
      ['query:api_key', `&api_key=${alice}`, {}],
    ];
    for (const [channel, query, headers] of channels) {
      const res = await get(`/api/nodes/n1?probe=ch-${channel}${query}`, headers);
      assert.equal(res.status, 200, channel);
      const identity = (await res.json() as { identity: MimirRequest['identity'] }).identity;
      assert.equal(identity.check, 'verified');
      assert.equal(identity.channel, channel);
      assert.deepEqual(identity.user, { id: 'alice', email: 'alice@example.com', roles: ['developer'] });
      assert.deepEqual(probed(m, `ch-${channel}`).identity, identity);
    }
  });

  it('the token is taken in Mimir\'s order: Bearer, X-API-Key, cookie, then the query; a bad one earlier in the order is not skipped', async () => {
    let res = await get(`/api/agents?probe=order1&access_token=garbage`, { authorization: `Bearer ${alice}`, 'x-api-key': 'garbage' });
    assert.equal(res.status, 200);
    assert.equal(probed(m, 'order1').identity.channel, 'authorization');
    res = await get(`/api/agents?probe=order2&access_token=${alice}`, { 'x-api-key': 'garbage' });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: 'Invalid token' });
    assert.equal(probed(m, 'order2').identity.channel, 'x-api-key');
    res = await get(`/api/agents?probe=order3&api_key=garbage&access_token=${alice}`);
    assert.equal(res.status, 200);
    assert.equal(probed(m, 'order3').identity.channel, 'query:access_token');
  });

  it('HS256 with the secret as UTF-8 bytes, and nothing else: other keys, algorithms, expired and not-yet-valid tokens get {"error":"Invalid token"}', async () => {
    const key = new TextEncoder().encode(SECRET);
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      await signMimirJwt('another-secret', { sub: 'mallory' }),
      await new SignJWT({ sub: 'mallory' }).setProtectedHeader({ alg: 'HS512' }).sign(key),
      new UnsecuredJWT({ sub: 'mallory' }).encode(),
      await signMimirJwt(SECRET, { sub: 'alice', exp: now - 10 }),
      await signMimirJwt(SECRET, { sub: 'alice', nbf: now + 3600 }),
      'not-a-jwt',
    ];
    for (const [i, token] of bad.entries()) {
      const res = await get(`/api/agents?probe=bad${i}`, { authorization: `Bearer ${token}` });
      assert.equal(res.status, 401, `token ${i}`);
      assert.deepEqual(await res.json(), { error: 'Invalid token' });
      assert.equal(probed(m, `bad${i}`).identity.check, 'invalid-token');
    }
    const mcp = await postMcp(m, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'x-api-key': bad[0]! });
    assert.equal(mcp.status, 401);
    assert.deepEqual(await mcp.json(), { error: 'Invalid token' });
    // No iss, aud, typ or exp is required; roles default to viewer.
    const loose = await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg: 'HS256', typ: 'anything' }).setIssuer('https://elsewhere').setAudience('nobody').sign(key);
    const res = await get('/api/agents?probe=loose', { authorization: `Bearer ${loose}` });
    assert.equal(res.status, 200);
    assert.deepEqual(probed(m, 'loose').identity.user, { id: 'carol', email: undefined, roles: ['viewer'] });
  });

  it('the bypass: an Authorization header that is not "Bearer " and no other credential is served unauthenticated', async () => {
    for (const [i, authorization] of ['Basic YWxpY2U6c2VjcmV0', 'Token abc', `bearer ${alice}`].entries()) {
      const res = await get(`/api/executions?probe=bypass-${i}`, { authorization });
      assert.equal(res.status, 200, authorization);
      const record = probed(m, `bypass-${i}`);
      assert.equal(record.route, 'GET /api/executions');
      assert.equal(record.identity.check, 'bypass');
      assert.equal(record.identity.user, null);
    }
    // POST /mcp too: initialize, then a tool call, both with nothing but Basic.
    await postMcp(m, initializeBody(1), { authorization: 'Basic eA==' }).then((r) => r.text());
    const mcp = await postMcp(m, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'memory_clear', arguments: {} } }, { authorization: 'Basic eA==' });
    assert.equal(mcp.status, 200);
    const text = (await mcp.json() as { result: { content: Array<{ text: string }> } }).result.content[0]!.text;
    assert.equal((JSON.parse(text) as { identity: MimirRequest['identity'] }).identity.check, 'bypass');
  });

  it('GET /mcp, /v1, /models, /health, /auth and /api/health are never checked', async () => {
    const open = [['GET', '/v1/models'], ['GET', '/models'], ['GET', '/health'], ['GET', '/auth/config'], ['POST', '/v1/embeddings']] as const;
    for (const [i, [method, path]] of open.entries()) {
      const res = await fetch(`${m.url}${path}?probe=open-${i}`, { method });
      assert.equal(res.status, 200, path);
      await res.text();
      assert.equal(probed(m, `open-${i}`).identity.check, 'not-checked');
    }
    // /api/health passes the gate without a credential (and then finds no route).
    const health = await get('/api/health?probe=apihealth');
    assert.equal(health.status, 404);
    await health.text();
    assert.equal(probed(m, 'apihealth').identity.check, 'not-checked');
  });

  it('GET /auth/status reads only the cookie mimir_oauth_token', async () => {
    assert.deepEqual(await (await get('/auth/status', { authorization: `Bearer ${alice}` })).json(), { authenticated: false });
    assert.deepEqual(await (await get('/auth/status', { cookie: 'mimir_oauth_token=nope' })).json(), { authenticated: false, error: 'Invalid token' });
    assert.deepEqual(await (await get('/auth/status', { cookie: `mimir_oauth_token=${alice}` })).json(), {
      authenticated: true, user: { id: 'alice', email: 'alice@example.com', username: 'alice@example.com', roles: ['developer'] },
    });
  });
});

describe('Mimir double: RBAC', () => {
  let m: Mimir;
  const token = (roles: unknown) => signMimirJwt(SECRET, { sub: 'u', roles });
  before(async () => { m = await startMimir({ security: { jwtSecret: SECRET }, rbac: RBAC }); });
  after(async () => { await m.close(); });

  const call = async (method: string, path: string, bearer?: string) => {
    const res = await fetch(`${m.url}${path}`, { method, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  };

  it('Mimir checks permissions only on /api/nodes, /api/keys and /api/rbac, with its 403 body', async () => {
    const viewer = await token(['viewer']);
    assert.equal((await call('GET', '/api/nodes/n1', viewer)).status, 200);
    assert.deepEqual(await call('DELETE', '/api/nodes/n1', viewer), {
      status: 403, body: { error: 'Forbidden', message: 'Permission denied: nodes:delete required', userRoles: ['viewer'] },
    });
    assert.equal((await call('GET', '/api/keys', viewer)).status, 403);
    assert.equal((await call('GET', '/api/rbac', viewer)).status, 403);
    // No check of Mimir's own elsewhere: a viewer runs workflows and migrations.
    assert.equal((await call('POST', '/api/execute-workflow', viewer)).status, 200);
    assert.equal((await call('POST', '/api/migrate-indexed-folders', viewer)).status, 200);
  });

  it('wildcards and the default role work as in Mimir', async () => {
    assert.equal((await call('DELETE', '/api/nodes/n1', await token(['editor']))).status, 200, 'nodes:*');
    assert.equal((await call('PUT', '/api/rbac', await token(['admin']))).status, 200, '*');
    const none = await token([]);
    assert.equal((await call('GET', '/api/nodes/types', none)).status, 200, 'no role: defaultRole viewer');
    assert.equal((await call('POST', '/api/nodes', none)).status, 403);
  });

  it('with RBAC on, the bypass meets 401 only on the routes Mimir checks itself', async () => {
    const res = await fetch(`${m.url}/api/nodes/n1`, { headers: { authorization: 'Basic eA==' } });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: 'Unauthorized', message: 'Authentication required' });
    assert.equal((await fetch(`${m.url}/api/agents`, { headers: { authorization: 'Basic eA==' } })).status, 200);
  });
});

describe('Mimir double: streams', () => {
  let m: Mimir;
  before(async () => { m = await startMimir({ heartbeatMs: 10 }); });
  after(async () => { await m.close(); });

  it('GET /api/indexing-progress sends its SSE headers, then only heartbeat comments, and never ends', async () => {
    const controller = new AbortController();
    const res = await fetch(`${m.url}/api/indexing-progress`, { signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const reader = textReader(res);
    // Whatever the first three messages are, they must all be heartbeat comments.
    const text = await readUntil(reader, (t) => (t.match(/\n\n/g) ?? []).length >= 3, 'three messages');
    assert.match(text, /^(: heartbeat\n\n){3,}$/);
    assert.equal(m.indexing.clients(), 1);
    controller.abort();
    await within(m.indexing.closed(), 10_000, 'the double sees the client go');
  });

  it('GET /api/execution-stream/:executionId sends init, then exactly the events the test releases, until it ends', async () => {
    const res = await fetch(`${m.url}/api/execution-stream/exec-9`);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    await within(m.executions.opened('exec-9'), 10_000, 'stream opened');
    const reader = textReader(res);
    let text = await readUntil(reader, (t) => t.includes('\n\n'), 'init');
    assert.equal(text, 'event: init\ndata: {"status":"pending"}\n\n');
    assert.equal(m.executions.release('exec-9', 'task-start', { taskId: 't1' }), 1);
    assert.equal(m.executions.release('exec-other', 'task-start', {}), 0);
    text = await readUntil(reader, (t) => t.includes('\n\n'), 'task-start');
    assert.equal(text, 'event: task-start\ndata: {"taskId":"t1"}\n\n');
    m.executions.end('exec-9');
    assert.equal((await within(reader.read(), 10_000, 'end')).done, true);
    assert.equal(m.executions.clients('exec-9'), 0);
  });

  it('POST /v1/chat/completions streams data chunks ending with data: [DONE], unless the body says "stream": false', async () => {
    for (const body of [{ stream: true, messages: [] }, { messages: [] }]) {
      const res = await fetch(`${m.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': 'alice' }, body: JSON.stringify(body) });
      assert.match(res.headers.get('content-type')!, /^text\/event-stream/, JSON.stringify(body));
      const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: '));
      assert.equal(events.at(-1), 'data: [DONE]');
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)) as { choices: Array<{ delta: { content?: string }; finish_reason: string | null }> });
      assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'stop');
      const echo = JSON.parse(chunks.map((c) => c.choices[0]!.delta.content ?? '').join('')) as { route: string; identity: MimirRequest['identity'] };
      assert.equal(echo.route, 'POST /v1/chat/completions');
      assert.deepEqual(echo.identity.headers, { 'x-user-id': 'alice' });
    }
    const json = await fetch(`${m.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: false, messages: [] }) });
    assert.match(json.headers.get('content-type')!, /^application\/json/);
    assert.equal((await json.json() as { object: string }).object, 'chat.completion');
  });

  it('close() ends every open stream and connection at once', async () => {
    const own = await startMimir();
    await postMcp(own, initializeBody(1)).then((r) => r.text());
    const streams = await Promise.all([
      fetch(`${own.url}/api/indexing-progress`),
      fetch(`${own.url}/api/execution-stream/e1`),
      fetch(`${own.url}/mcp`, { headers: { accept: 'text/event-stream', 'mcp-session-id': MIMIR_SESSION_ID } }),
    ]);
    for (const s of streams) assert.equal(s.status, 200);
    await within(own.close(), 10_000, 'close()');
    for (const s of streams) {
      // Either a clean end or a reset connection: the stream does not stay open.
      const ended = await within(s.text().then(() => true, () => true), 10_000, 'stream end');
      assert.equal(ended, true);
    }
  });
});
