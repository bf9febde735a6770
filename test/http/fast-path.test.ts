/**
 * Requests answered outside Fastify (src/http/fast-path.ts: GET /auth/me, and plain proxied
 * requests) must be indistinguishable from the Fastify routes: one hub, two servers over it
 * (fast path on and off), every answer compared, and what the upstream received too.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer, fastPathAnswered } from '../../src/http/server.ts';
import { freePort, serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { comparable, type Answer } from '../helpers/comparable.ts';

/** Status, body and headers, less those that differ per response by design. node:http, so Host can be set. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Answer> {
  return comparable(url, headers, method, body);
}

/** A stand-in for Mimir that answers with what it received. */
async function echoUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: createHash('sha256').update(body).digest('hex'), length: body.length });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

describe('the fast path', () => {
  let t: TestHub;
  let upstream: Server;
  let slow: FastifyInstance;
  let slowUrl: string;
  before(async () => {
    upstream = await echoUpstream();
    t = await startHub({ storage: 'redis', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } });
    slow = await buildServer(t.hub, { fastPath: false });
    const port = await freePort();
    await slow.listen({ port, host: '127.0.0.1' });
    slowUrl = `http://127.0.0.1:${port}`;
  });
  after(async () => { await slow.close(); await t.close(); await new Promise((r) => upstream.close(r)); });

  /** Asks both servers (the fast one twice: its first answer fills the caches) and compares. */
  async function both(headers: Record<string, string>, path = '/auth/me', method = 'GET', body?: string): Promise<{ answer: Answer; answeredFast: number }> {
    await get(`${t.url}${path}`, headers, method, body);
    const before = fastPathAnswered(t.app)!;
    const fast = await get(`${t.url}${path}`, headers, method, body);
    const answeredFast = fastPathAnswered(t.app)! - before;
    const reference = await get(`${slowUrl}${path}`, headers, method, body);
    assert.equal(fastPathAnswered(slow), undefined, 'the reference server has no fast path');
    assert.deepEqual(fast, reference, `${method} ${path} answers alike on both servers`);
    return { answer: fast, answeredFast };
  }

  it('answers a cached service-account token, byte for byte as Fastify does', async () => {
    const { token, clientId } = await serviceAccountToken(t);
    const { answer, answeredFast } = await both({ authorization: `Bearer ${token}` });
    assert.equal(answeredFast, 1, 'the cached token was answered on the fast path');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    assert.equal(answer.headers['referrer-policy'], 'no-referrer');
    assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8');
    const me = JSON.parse(answer.body) as { sub: string; permissions: string[] };
    assert.equal(me.sub, clientId);
    assert.ok(me.permissions.includes('nodes:write'));
  });

  it('answers a cached API key, and counts and audits its use as the Fastify route does', async () => {
    const seen: string[] = [];
    t.hub.audit.observe((e) => { if (e.type === 'api_key_used') seen.push(String(e.request_id)); });
    const { key, record } = await t.hub.apiKeys.create({ name: 'fast', roles: ['viewer'] });
    const { answer, answeredFast } = await both({ 'x-api-key': key });
    assert.equal(answeredFast, 1);
    assert.equal((JSON.parse(answer.body) as { credential_id: string }).credential_id, record.id);
    assert.equal(seen.length, 3, 'every use is audited, fast or not');
    assert.equal(new Set(seen).size, 3, 'each with its own request id');
    for (const id of seen) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('answers a cached session; hands one that needs storage to Fastify without resolving it twice', async () => {
    const { sessions } = t.hub;
    const { cookie, session } = await sessions.create({ sub: 'alice', roles: ['viewer'], groups: [], provider: 'test' });
    const asCookie = { cookie: `${t.hub.config.session.cookie.name}=${encodeURIComponent(cookie)}` };
    const { answer, answeredFast } = await both(asCookie);
    assert.equal(answeredFast, 1, 'a live session in the cache is answered on the fast path');
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as { sub: string }).sub, 'alice');

    // Out of the cache: the lookup needs the store, a promise. Count the store's reads of it.
    t.hub.caches.sessions.forget(session.sid);
    const store = t.hub.store;
    const find = store.find.bind(store);
    let lookups = 0;
    store.find = ((kind: string, id: string) => { if (kind === 'session') lookups++; return find(kind, id); }) as typeof store.find;
    try {
      const before = fastPathAnswered(t.app)!;
      assert.equal((await get(`${t.url}/auth/me`, asCookie)).status, 200);
      assert.equal(lookups, 1, 'the fast path started the lookup and Fastify used its answer');
      assert.equal(fastPathAnswered(t.app), before);
    } finally {
      store.find = find;
    }
  });

  it('refusals are rendered by Fastify alike: no credential, a forged token, a revoked key', async () => {
    const none = await both({});
    assert.equal(none.answeredFast, 0);
    assert.equal(none.answer.status, 401);
    assert.match(none.answer.headers['www-authenticate'] ?? '', /^Bearer realm="mimir"/);

    const { token } = await serviceAccountToken(t);
    const [h, p, s] = token.split('.');
    const forged = `${h}.${p}.${s!.slice(0, -4)}AAAA`;
    const bad = await both({ authorization: `Bearer ${forged}` });
    assert.equal(bad.answeredFast, 0);
    assert.equal(bad.answer.status, 401);
    assert.equal((JSON.parse(bad.answer.body) as { error: string }).error, 'invalid_token');

    const { key, record } = await t.hub.apiKeys.create({ name: 'soon revoked', roles: ['viewer'] });
    assert.equal((await get(`${t.url}/auth/me`, { 'x-api-key': key })).status, 200);
    assert.equal((await get(`${t.url}/auth/me`, { 'x-api-key': key })).status, 200, 'cached now');
    await t.hub.apiKeys.revoke(record.id);
    const before = fastPathAnswered(t.app)!;
    const revoked = await get(`${t.url}/auth/me`, { 'x-api-key': key });
    assert.equal(revoked.status, 401, 'a revoked key is never answered from the cache');
    assert.equal(fastPathAnswered(t.app), before);
  });

  it('leaves every other shape of request to Fastify', async () => {
    const { token } = await serviceAccountToken(t);
    const auth = { authorization: `Bearer ${token}` };
    for (const [path, method, headers] of [
      ['/auth/me?x=1', 'GET', auth], ['/auth/me/', 'GET', auth], ['/auth/me', 'HEAD', auth], ['/auth/me', 'POST', auth],
      ['/auth/me', 'GET', { authorization: `DPoP ${token}`, dpop: 'not-a-proof' }],
    ] as const) {
      const { answeredFast, answer } = await both(headers, path, method);
      assert.equal(answeredFast, 0, `${method} ${path} ${Object.keys(headers).join(',')} went to Fastify`);
      assert.notEqual(answer.status, 500);
    }
  });

  it('relays a plain request upstream: the same headers reach Mimir, the same answer comes back', async () => {
    const { token, clientId } = await serviceAccountToken(t);
    const { answer, answeredFast } = await both({ authorization: `Bearer ${token}`, 'x-custom': 'kept' }, '/api/nodes/node-1?depth=2');
    assert.equal(answeredFast, 1);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['x-upstream'], 'yes');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    const seen = JSON.parse(answer.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/api/nodes/node-1?depth=2');
    assert.equal(seen.headers.authorization, undefined, 'the credential never reaches the upstream');
    assert.equal(seen.headers['x-custom'], 'kept');
    assert.equal(seen.headers['x-forwarded-host'], 'mimir.example.test');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-user-id'], `service-account:${clientId}`, 'a service account is named as one (issue 15 D)');
  });

  it('a write (with its body) goes through the Fastify route; an API key is counted and audited once per request', async () => {
    const seen: string[] = [];
    t.hub.audit.observe((e) => { if (e.type === 'api_key_used') seen.push(String(e.request_id)); });
    const { key } = await t.hub.apiKeys.create({ name: 'writer', roles: ['developer'] });
    const body = JSON.stringify({ title: 'x'.repeat(100_000) });
    const { answer, answeredFast } = await both({ 'x-api-key': key, 'content-type': 'application/json' }, '/api/nodes', 'POST', body);
    assert.equal(answeredFast, 0, 'only GET and HEAD are relayed on the fast path');
    const read = await both({ 'x-api-key': key }, '/api/nodes/node-1', 'GET');
    assert.equal(read.answeredFast, 1);
    const echoed = JSON.parse(answer.body) as { method: string; length: number; body: string };
    assert.equal(echoed.method, 'POST');
    assert.equal(echoed.length, Buffer.byteLength(body));
    assert.equal(echoed.body, createHash('sha256').update(body).digest('hex'));
    assert.equal(seen.length, 6);
    assert.equal(new Set(seen).size, 6);
  });

  it('a route the Principal may not use is refused by the route itself, audited once', async () => {
    const denied: unknown[] = [];
    t.hub.audit.observe((e) => { if (e.type === 'access_denied') denied.push(e.request_id); });
    const { key } = await t.hub.apiKeys.create({ name: 'reader', roles: ['viewer'] });
    const { answer, answeredFast } = await both({ 'x-api-key': key }, '/api/nodes/node-1', 'DELETE');
    assert.equal(answeredFast, 0);
    assert.equal(answer.status, 403);
    assert.equal((JSON.parse(answer.body) as { error: string }).error, 'insufficient_scope');
    assert.equal(denied.length, 3, 'one access_denied event per request');
  });

  it('an upstream that cannot be reached is the same 502 from both servers', async () => {
    const closed = await freePort();
    const down = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${closed}` } });
    const ref = await buildServer(down.hub, { fastPath: false });
    const port = await freePort();
    await ref.listen({ port, host: '127.0.0.1' });
    try {
      const { token } = await serviceAccountToken(down);
      const auth = { authorization: `Bearer ${token}` };
      await get(`${down.url}/api/nodes/1`, auth);
      const before = fastPathAnswered(down.app)!;
      const fast = await get(`${down.url}/api/nodes/1`, auth);
      assert.equal(fastPathAnswered(down.app), before + 1);
      assert.equal(fast.status, 502);
      assert.equal((JSON.parse(fast.body) as { error: string }).error, 'bad_gateway');
      assert.deepEqual(fast, await get(`http://127.0.0.1:${port}/api/nodes/1`, auth));
    } finally {
      await ref.close();
      await down.close();
    }
  });

  it('leaves MCP, user context, writes, other methods, encoded paths, hub paths and DPoP to Fastify', async () => {
    const { token } = await serviceAccountToken(t);
    const auth = { authorization: `Bearer ${token}` };
    const { sessions } = t.hub;
    const { cookie } = await sessions.create({ sub: 'carol', roles: ['developer'], groups: [], provider: 'test' });
    const asCookie = { cookie: `${t.hub.config.session.cookie.name}=${encodeURIComponent(cookie)}` };
    for (const [path, method, headers] of [
      ['/mcp', 'GET', auth], ['/api/nodes/1', 'GET', { ...auth, 'x-user-id': 'alice' }],
      ['/api/nodes/1', 'POST', asCookie], ['/api/nodes/%31', 'GET', auth], ['/api/nodes//1', 'GET', auth],
      ['/auth/nothing', 'GET', auth], ['/api/nodes/1', 'GET', { authorization: `DPoP ${token}`, dpop: 'x' }],
      // Methods Fastify routes nowhere (404) or checks the content type of (415).
      ['/api/nodes/1', 'PROPFIND', auth], ['/api/chat/x', 'PURGE', auth], ['/api/nodes/1', 'DELETE', { ...auth, 'content-type': 'foo/bar' }],
      ['/api/nodes/1', 'OPTIONS', auth],
    ] as const) {
      const { answeredFast, answer } = await both(headers, path, method);
      assert.equal(answeredFast, 0, `${method} ${path} ${Object.keys(headers).join(',')} went to Fastify`);
      assert.notEqual(answer.status, 500);
    }
    const plainCookie = await both(asCookie, '/api/nodes/1', 'GET');
    assert.equal(plainCookie.answeredFast, 1, 'a cookie on a safe method is relayed');
  });

  it('a hub route outside /auth (MIMIR_REVOCATION_ENDPOINT) is never taken for the proxy', async () => {
    const moved = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, MIMIR_REVOCATION_ENDPOINT: '/oauth/revoke' } });
    try {
      const { token, clientId, secret } = await serviceAccountToken(moved);
      const auth = { authorization: `Bearer ${token}` };
      assert.equal((await get(`${moved.url}/api/nodes/1`, auth)).status, 200);
      assert.equal((await get(`${moved.url}/api/nodes/1`, auth)).status, 200, 'cached now');
      const before = fastPathAnswered(moved.app)!;
      const basic = `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
      const revoked = await get(`${moved.url}/oauth/revoke`, { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, 'POST', new URLSearchParams({ token }).toString());
      assert.equal(revoked.status, 200);
      assert.equal(revoked.headers['x-upstream'], undefined, 'the revocation route answered, not the upstream');
      assert.equal(fastPathAnswered(moved.app), before);
      assert.equal((await get(`${moved.url}/api/nodes/1`, auth)).status, 401, 'the token is revoked');
    } finally {
      await moved.close();
    }
  });

  it('answers form-encoded introspection from a caller that authenticates itself, as Fastify does, audited alike', async () => {
    const events: Array<Record<string, unknown>> = [];
    t.hub.audit.observe((e) => { if (e.type === 'introspection') events.push(e as Record<string, unknown>); });
    const rs = await serviceAccountToken(t, ['admin']);
    const { token } = await serviceAccountToken(t);
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    const form = { authorization: basic(rs.clientId, rs.secret), 'content-type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams({ token }).toString();
    const active = await both(form, '/auth/introspect', 'POST', body);
    assert.equal(active.answeredFast, 1);
    assert.equal(active.answer.status, 200);
    assert.equal((JSON.parse(active.answer.body) as { active: boolean }).active, true);
    assert.equal(active.answer.headers['cache-control'], 'no-store');
    assert.equal(active.answer.headers.pragma, 'no-cache');
    assert.equal(active.answer.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(events.length, 3, 'one introspection event per request, fast or not');
    assert.equal(new Set(events.map((e) => e.request_id)).size, 3);
    for (const e of events) {
      assert.equal(e.outcome, 'success');
      assert.equal(e.client, rs.clientId);
      assert.equal(e.ip, '127.0.0.1');
    }

    const developer = await serviceAccountToken(t);
    const cases: Array<[string, Record<string, string>, string, number, number]> = [
      ['charset spelling', { ...form, 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' }, body, 1, 200],
      ['unknown token', form, 'token=not-a-token', 1, 200],
      ['no token parameter', form, 'x=1', 1, 400],
      ['a repeated parameter', form, `${body}&token=again`, 1, 400],
      ['broken percent-encoding', form, 'token=%E0%A4%A&x=%', 1, 200],
      ['a wrong client secret', { ...form, authorization: basic(rs.clientId, 'wrong') }, body, 1, 401],
      ['a bearer caller without the permission', { ...form, authorization: `Bearer ${developer.token}` }, body, 1, 403],
      ['a JSON body', { ...form, 'content-type': 'application/json' }, JSON.stringify({ token }), 0, 200],
      ['other content-type parameters', { ...form, 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }, body, 0, 200],
      ['no Authorization header', { 'content-type': 'application/x-www-form-urlencoded' }, body, 0, 401],
      ['an empty body', form, '', 0, 400],
    ];
    for (const [label, headers, text, fast, status] of cases) {
      const { answer, answeredFast } = await both(headers, '/auth/introspect', 'POST', text);
      assert.equal(answeredFast, fast, `${label}: ${fast ? 'answered on the fast path' : 'left to Fastify'}`);
      assert.equal(answer.status, status, `${label}: ${answer.body}`);
    }
    const wrong = await both({ ...form, authorization: basic(rs.clientId, 'wrong') }, '/auth/introspect', 'POST', body);
    assert.equal(wrong.answer.headers['www-authenticate'], 'Basic realm="mimir"');
    const query = await both(form, '/auth/introspect?x=1', 'POST', body);
    assert.equal(query.answeredFast, 0, 'a query string is left to Fastify');
  });

  it('a fast path that throws before answering leaves the request to Fastify', async () => {
    const { token } = await serviceAccountToken(t);
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await get(`${t.url}/auth/me`, auth)).status, 200);
    const authorizer = t.hub.authorizer;
    const real = authorizer.permissions.bind(authorizer);
    let throws = 1;
    authorizer.permissions = (p) => { if (throws-- > 0) throw new Error('boom'); return real(p); };
    const used: unknown[] = [];
    t.hub.audit.observe((e) => { if (e.type === 'service_account_used') used.push(e.request_id); });
    try {
      const before = fastPathAnswered(t.app)!;
      const res = await get(`${t.url}/auth/me`, auth);
      assert.equal(res.status, 200, 'Fastify answered it');
      assert.equal(fastPathAnswered(t.app), before);
      assert.equal(used.length, 1, 'the use is recorded once, by the route that answered');
    } finally {
      authorizer.permissions = real;
    }
  });

  it('is off behind a trusted proxy, where Fastify works out the client address', async () => {
    const proxied = await startHub({ storage: 'memory', env: { MIMIR_TRUST_PROXY: 'true' } });
    try {
      const { token } = await serviceAccountToken(proxied);
      const res = await fetch(`${proxied.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      assert.equal(fastPathAnswered(proxied.app), undefined);
    } finally {
      await proxied.close();
    }
  });
});
