/**
 * Issue 17 item 6: CORS, so browser-based OAuth and MCP clients can discover, register, get
 * tokens and call /mcp. Public endpoints answer any origin with `*` (never with
 * `Access-Control-Allow-Credentials`); /mcp answers only MIMIR_MCP_ALLOWED_ORIGINS; anything else
 * gets no CORS header, including what the upstream Mimir would have added (it echoes every
 * origin with credentials). Plain HTTP with Origin headers first, then Chromium on another
 * loopback origin doing what a browser-based client does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { fastPathAnswered } from '../../src/http/server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { freePort, serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { startMimir, type Mimir } from '../helpers/mimir.ts';
import { startUpstream, type Upstream } from '../proxy/upstream.ts';
import { RBAC_FIXTURE } from '../proxy/setup.ts';

const APP = 'https://app.example';
const EVIL = 'https://evil.example';
const MCP_ALLOW = ['authorization', 'dpop', 'mcp-protocol-version', 'mcp-session-id', 'mcp-method', 'mcp-name', 'last-event-id', 'content-type'];
const MCP_EXPOSE = ['mcp-session-id', 'www-authenticate', 'dpop-nonce'];

const list = (value: string | null) => (value ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

function preflight(url: string, origin: string, method: string, headers: string[] = []): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, ...(headers.length ? { 'access-control-request-headers': headers.join(',') } : {}) },
  });
}

describe('CORS on the public endpoints and /mcp (plain HTTP)', () => {
  let mimir: Mimir;
  let t: TestHub;
  before(async () => {
    // The fake Mimir configures the cors package as Mimir does: every origin echoed, with credentials.
    mimir = await startMimir();
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_MCP_ALLOWED_ORIGINS: APP } });
  });
  after(async () => {
    await t?.close();
    await mimir?.close();
  });

  const PUBLIC: Array<[string, string, string[]]> = [
    ['/.well-known/oauth-protected-resource', 'GET', ['mcp-protocol-version']],
    ['/.well-known/oauth-protected-resource/mcp', 'GET', ['mcp-protocol-version']],
    ['/.well-known/oauth-authorization-server', 'GET', ['mcp-protocol-version']],
    ['/.well-known/openid-configuration', 'GET', ['mcp-protocol-version']],
    ['/.well-known/jwks.json', 'GET', []],
    ['/auth/register', 'POST', ['content-type']],
    ['/auth/token', 'POST', ['authorization', 'content-type', 'dpop']],
    ['/auth/revoke', 'POST', ['authorization', 'content-type']],
    ['/auth/userinfo', 'GET', ['authorization', 'dpop']],
    ['/auth/userinfo', 'POST', ['authorization', 'dpop']],
  ];

  for (const [path, method, headers] of PUBLIC) {
    it(`${method} ${path}: the preflight allows any origin with *, its method and headers, and no credentials`, async () => {
      for (const origin of [APP, EVIL]) {
        const res = await preflight(`${t.url}${path}`, origin, method, headers);
        assert.equal(res.status, 204, `${origin} ${path}`);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.ok(list(res.headers.get('access-control-allow-methods')).includes(method.toLowerCase()));
        for (const h of headers) assert.ok(list(res.headers.get('access-control-allow-headers')).includes(h), `${path} allows ${h}`);
        assert.equal(res.headers.get('access-control-allow-credentials'), null);
      }
    });
  }

  it('real answers of the public endpoints carry Access-Control-Allow-Origin: *, refusals too', async () => {
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/.well-known/jwks.json']) {
      const res = await fetch(`${t.url}${path}`, { headers: { origin: EVIL, 'mcp-protocol-version': '2025-11-25' } });
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', path);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, path);
    }
    // The token endpoint exposes DPoP-Nonce (RFC 9449 §8) and answers its refusals with CORS too.
    const refused = await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic bm9ib2R5Om5vcGU=' }, body: 'grant_type=client_credentials' });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('access-control-allow-origin'), '*');
    assert.ok(list(refused.headers.get('access-control-expose-headers')).includes('dpop-nonce'));
    const registered = await fetch(`${t.url}/auth/register`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' }) });
    assert.equal(registered.status, 201);
    assert.equal(registered.headers.get('access-control-allow-origin'), '*');
    const info = await fetch(`${t.url}/auth/userinfo`, { headers: { origin: APP } });
    assert.equal(info.status, 401);
    assert.equal(info.headers.get('access-control-allow-origin'), '*');
    assert.ok(list(info.headers.get('access-control-expose-headers')).includes('www-authenticate'));
  });

  it('/mcp: an allowed origin\'s preflight lists the MCP headers; the 401 is readable (WWW-Authenticate exposed)', async () => {
    const res = await preflight(`${t.url}/mcp`, APP, 'POST', ['authorization', 'content-type', 'mcp-protocol-version']);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
    assert.match(res.headers.get('vary') ?? '', /origin/i);
    for (const h of MCP_ALLOW) assert.ok(list(res.headers.get('access-control-allow-headers')).includes(h), h);
    for (const m of ['get', 'post', 'delete']) assert.ok(list(res.headers.get('access-control-allow-methods')).includes(m), m);

    const unauthorized = await fetch(`${t.url}/mcp`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers.get('access-control-allow-origin'), APP);
    assert.deepEqual(list(unauthorized.headers.get('access-control-expose-headers')).sort(), [...MCP_EXPOSE].sort());
    assert.match(unauthorized.headers.get('www-authenticate') ?? '', /resource_metadata=/);
  });

  it('/mcp: another origin\'s preflight is refused without any CORS header, and so is its request', async () => {
    const res = await preflight(`${t.url}/mcp`, EVIL, 'POST', ['authorization', 'content-type']);
    assert.equal(res.status, 403);
    for (const [name] of res.headers) assert.ok(!name.startsWith('access-control-'), `no ${name}`);
    const { token } = await serviceAccountToken(t);
    const call = await fetch(`${t.url}/mcp`, { method: 'POST', headers: { origin: EVIL, authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    assert.equal(call.status, 403);
    for (const [name] of call.headers) assert.ok(!name.startsWith('access-control-'), `no ${name}`);
  });

  it('introspection is for resource servers: no CORS', async () => {
    const res = await preflight(`${t.url}/auth/introspect`, APP, 'POST', ['authorization']);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });

  it('proxied answers carry no CORS header of the upstream\'s (Mimir echoes any origin with credentials), on the fast path too', async () => {
    const { token } = await serviceAccountToken(t);
    const fast = fastPathAnswered(t.app)!;
    // The first request resolves the credential in Fastify's route; the second, cached, is the fast path's.
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${t.url}/api/nodes/types`, { headers: { origin: EVIL, authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.equal(res.headers.get('access-control-allow-origin'), null, `request ${i + 1}`);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, `request ${i + 1}`);
    }
    assert.equal(mimir.find('/api/nodes/types').length, 2, 'the upstream answered both');
    assert.ok(fastPathAnswered(t.app)! > fast, 'one of them was answered on the fast path');
  });
});

/** A page on its own loopback origin: a browser-based client of the hub. */
async function pageServer(): Promise<{ origin: string; server: Server }> {
  const port = await freePort();
  const server = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>client</title>'); });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${port}`, server };
}

describe('CORS in Chromium: a client page on another loopback origin', () => {
  let upstream: Upstream;
  let t: TestHub;
  let browser: Browser;
  let allowed: { origin: string; server: Server };
  let other: { origin: string; server: Server };
  let secret: string;
  before(async () => {
    allowed = await pageServer();
    other = await pageServer();
    upstream = await startUpstream();
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: upstream.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, MIMIR_MCP_ALLOWED_ORIGINS: allowed.origin } });
    secret = (await t.hub.serviceAccounts.create({ clientId: 'browser-client', roles: ['developer'] })).clientSecret;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await upstream?.close();
    for (const s of [allowed, other]) await new Promise((resolve) => s?.server.close(resolve));
  });

  /** Runs the client's fetches in a page of `origin`; what the page could read, or the error it got. */
  const inPage = async (origin: string, hub: string, clientSecret: string) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      return await page.evaluate(async ({ hub, clientSecret }) => {
        const attempt = async (f: () => Promise<unknown>) => { try { return await f(); } catch (e) { return `blocked: ${(e as Error).name}`; } };
        const metadata = await attempt(async () => ((await (await fetch(`${hub}/.well-known/oauth-authorization-server`, { headers: { 'mcp-protocol-version': '2025-11-25' } })).json()) as { issuer: string }).issuer);
        const token = await attempt(async () => {
          const res = await fetch(`${hub}/auth/token`, {
            method: 'POST', headers: { authorization: `Basic ${btoa(`browser-client:${clientSecret}`)}`, 'content-type': 'application/x-www-form-urlencoded' },
            body: 'grant_type=client_credentials',
          });
          return ((await res.json()) as { access_token: string }).access_token;
        });
        const mcp = await attempt(async () => {
          const res = await fetch(`${hub}/mcp`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'page', version: '1' } } }),
          });
          return { status: res.status, session: res.headers.get('mcp-session-id') };
        });
        return { metadata, token: typeof token === 'string' && token.split('.').length === 3 ? 'a JWT' : token, mcp };
      }, { hub, clientSecret });
    } finally {
      await context.close();
    }
  };

  it('from an allowed origin: metadata, a token (preflighted Authorization) and an MCP session id are readable', async () => {
    const r = await inPage(allowed.origin, t.url, secret);
    assert.equal(r.metadata, t.config.jwt.issuer);
    assert.equal(r.token, 'a JWT');
    const mcp = r.mcp as { status: number; session: string | null };
    assert.equal(mcp.status, 200);
    assert.ok(mcp.session, 'Mcp-Session-Id is exposed to the page');
  });

  it('from another origin: metadata and tokens still (public), /mcp blocked by the browser', async () => {
    const r = await inPage(other.origin, t.url, secret);
    assert.equal(r.metadata, t.config.jwt.issuer);
    assert.equal(r.token, 'a JWT');
    assert.match(String(r.mcp), /^blocked: TypeError/);
  });
});
