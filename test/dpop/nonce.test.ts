/**
 * Issue 17 item 12: DPoP server nonces (RFC 9449 §8 at the token endpoint, §9 at resources) with
 * MIMIR_DPOP_REQUIRE_NONCE=true. Real hubs on loopback, proofs made with jose, and openid-client 6,
 * whose DPoP handle retries `use_dpop_nonce` on its own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import * as client from 'openid-client';
import type { AuditEvent } from '../../src/audit/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { mimirAuth, mimirAuthExpress } from '../../src/index.ts';
import { DPOP_NONCE_WINDOW_SECONDS } from '../../src/dpop/nonce.ts';
import { basic, dpopKey, dpopProof, get, login, postForm, postJson, type DpopKey } from '../helpers/http.ts';
import { newRedisPrefix, startHub, type TestHub } from '../helpers/hub.ts';
import { startMimir, type Mimir } from '../helpers/mimir.ts';
import { RBAC_FIXTURE } from '../proxy/setup.ts';

const NONCE_ENV = { MIMIR_DPOP_REQUIRE_NONCE: 'true' };

/** A proof with a `nonce` claim (the shared helper makes proofs without one). */
async function proofWithNonce(key: DpopKey, claims: { htm: string; htu: string; accessToken?: string; iat?: number }, nonce: string): Promise<string> {
  const payload: Record<string, unknown> = { htm: claims.htm, htu: claims.htu, jti: randomBytes(12).toString('base64url'), nonce };
  if (claims.accessToken) payload.ath = createHash('sha256').update(claims.accessToken).digest('base64url');
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000)).sign(key.privateKey);
}

describe('DPoP server nonces (RFC 9449 §8, §9; MIMIR_DPOP_REQUIRE_NONCE)', () => {
  let t: TestHub;
  let mimir: Mimir;
  let key: DpopKey;
  let secret: string;
  const clientId = 'nonce-svc';
  /** The hub's clock: real time plus an offset the tests move. */
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;
  const iat = () => Math.floor(now() / 1000);
  const events: AuditEvent[] = [];
  let tokenUrl: string;

  before(async () => {
    mimir = await startMimir();
    t = await startHub({ storage: 'sqlite', now, env: { ...NONCE_ENV, MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, MIMIR_MCP_ALLOWED_ORIGINS: 'https://app.example' } });
    t.hub.audit.observe((e) => events.push(e));
    key = await dpopKey();
    tokenUrl = `${t.url}/auth/token`;
    ({ clientSecret: secret } = await t.hub.serviceAccounts.create({ clientId, roles: ['developer'] }));
  });
  after(async () => {
    await t?.close();
    await mimir?.close();
  });

  /** A DPoP-bound token, obtained the way a client does: challenge, then retry with the nonce. */
  async function boundToken(): Promise<string> {
    const first = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await dpopProof(key, { htm: 'POST', htu: tokenUrl, iat: iat() }) });
    const nonce = first.headers.get('dpop-nonce')!;
    const res = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await proofWithNonce(key, { htm: 'POST', htu: tokenUrl, iat: iat() }, nonce) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.access_token;
  }

  it('a token request whose proof has no nonce gets 400 use_dpop_nonce with a DPoP-Nonce header; the retry with it succeeds', async () => {
    const first = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await dpopProof(key, { htm: 'POST', htu: tokenUrl, iat: iat() }) });
    assert.equal(first.status, 400);
    assert.equal(first.body.error, 'use_dpop_nonce');
    const nonce = first.headers.get('dpop-nonce');
    assert.match(nonce ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(first.headers.get('cache-control'), 'no-store');

    const retry = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await proofWithNonce(key, { htm: 'POST', htu: tokenUrl, iat: iat() }, nonce!) });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(retry.body.access_token).cnf, { jkt: key.jkt });
    // The nonce is current: no fresh one is due (RFC 9449 §8.2 sends one only when needed).
    assert.equal(retry.headers.get('dpop-nonce'), null);
    assert.ok(events.some((e) => e.type === 'token_issued' && e.outcome === 'failure' && e.reason === 'use_dpop_nonce'));
  });

  it('a nonce that is not the hub\'s is refused like a missing one', async () => {
    const res = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await proofWithNonce(key, { htm: 'POST', htu: tokenUrl, iat: iat() }, randomBytes(32).toString('base64url')) });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'use_dpop_nonce');
    assert.ok(res.headers.get('dpop-nonce'));
  });

  it('a nonce of the previous window is accepted and the answer carries a fresh one; two windows old it is stale (use_dpop_nonce)', async () => {
    const first = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await dpopProof(key, { htm: 'POST', htu: tokenUrl, iat: iat() }) });
    const old = first.headers.get('dpop-nonce')!;
    try {
      offsetMs = DPOP_NONCE_WINDOW_SECONDS * 1000;
      const next = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await proofWithNonce(key, { htm: 'POST', htu: tokenUrl, iat: iat() }, old) });
      assert.equal(next.status, 200, JSON.stringify(next.body));
      const fresh = next.headers.get('dpop-nonce');
      assert.ok(fresh && fresh !== old, 'a fresh nonce is sent with the success');

      offsetMs = 2 * DPOP_NONCE_WINDOW_SECONDS * 1000;
      const stale = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await proofWithNonce(key, { htm: 'POST', htu: tokenUrl, iat: iat() }, old) });
      assert.equal(stale.status, 400);
      assert.equal(stale.body.error, 'use_dpop_nonce');
      assert.notEqual(stale.headers.get('dpop-nonce'), old);
      // The one handed out a window ago is still good.
      const ok = await postForm(tokenUrl, { grant_type: 'client_credentials' }, { ...basic(clientId, secret), dpop: await proofWithNonce(key, { htm: 'POST', htu: tokenUrl, iat: iat() }, fresh) });
      assert.equal(ok.status, 200);
    } finally {
      offsetMs = 0;
    }
  });

  it('a refresh (/auth/refresh) with a DPoP proof needs the nonce too, and the refused attempt does not spend the refresh token', async () => {
    const refresh = await login(t);
    const url = `${t.url}/auth/refresh`;
    const first = await postJson(url, { refresh_token: refresh }, { dpop: await dpopProof(key, { htm: 'POST', htu: url, iat: iat() }) });
    assert.equal(first.status, 400);
    assert.equal(first.body.error, 'use_dpop_nonce');
    const retry = await postJson(url, { refresh_token: refresh }, { dpop: await proofWithNonce(key, { htm: 'POST', htu: url, iat: iat() }, first.headers.get('dpop-nonce')!) });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.token_type, 'DPoP');
  });

  it('a token request without any DPoP proof is not asked for a nonce (a Bearer token is issued)', async () => {
    const res = await postForm(tokenUrl, { grant_type: 'client_credentials' }, basic(clientId, secret));
    assert.equal(res.status, 200);
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.headers.get('dpop-nonce'), null);
  });

  it('a resource answers 401 WWW-Authenticate: DPoP error="use_dpop_nonce" with a DPoP-Nonce; the retry succeeds; the denial is audited with its reason', async () => {
    const token = await boundToken();
    const me = `${t.url}/auth/me`;
    const seen = events.length;
    const first = await get(me, { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: me, accessToken: token, iat: iat() }) });
    assert.equal(first.status, 401);
    assert.equal(first.body.error, 'use_dpop_nonce');
    assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
    const nonce = first.headers.get('dpop-nonce');
    assert.match(nonce ?? '', /^[A-Za-z0-9_-]{43}$/);
    const denial = events.slice(seen).filter((e) => e.reason === 'use_dpop_nonce');
    assert.deepEqual(denial.map((e) => e.type), ['access_denied'], 'a denial with its reason, not an authentication failure');
    assert.equal(events.slice(seen).some((e) => e.type === 'authentication_failed'), false);

    const retry = await get(me, { authorization: `DPoP ${token}`, dpop: await proofWithNonce(key, { htm: 'GET', htu: me, accessToken: token, iat: iat() }, nonce!) });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.sub, clientId);
  });

  it('the proxy (a resource of the hub) challenges and forwards the same way, and sends a fresh nonce on a success when one is due', async () => {
    const token = await boundToken();
    const url = `${t.url}/api/nodes/n1`;
    const before = mimir.received.length;
    const first = await get(url, { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: url, accessToken: token, iat: iat() }) });
    assert.equal(first.status, 401);
    assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
    assert.equal(mimir.received.length, before, 'the upstream is not contacted');
    const nonce = first.headers.get('dpop-nonce')!;
    const ok = await get(url, { authorization: `DPoP ${token}`, dpop: await proofWithNonce(key, { htm: 'GET', htu: url, accessToken: token, iat: iat() }, nonce) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.headers.get('dpop-nonce'), null);
    try {
      offsetMs = DPOP_NONCE_WINDOW_SECONDS * 1000;
      const due = await get(url, { authorization: `DPoP ${token}`, dpop: await proofWithNonce(key, { htm: 'GET', htu: url, accessToken: token, iat: iat() }, nonce) });
      assert.equal(due.status, 200, JSON.stringify(due.body));
      const fresh = due.headers.get('dpop-nonce');
      assert.ok(fresh && fresh !== nonce, 'the proxied success carries a fresh nonce');
    } finally {
      offsetMs = 0;
    }
  });

  it('browsers may read DPoP-Nonce: the token endpoint\'s nonce challenge exposes it to scripts (CORS)', async () => {
    const res = await fetch(tokenUrl, {
      method: 'POST',
      headers: { origin: 'https://app.example', 'content-type': 'application/x-www-form-urlencoded', ...basic(clientId, secret), dpop: await dpopProof(key, { htm: 'POST', htu: tokenUrl, iat: iat() }) },
      body: 'grant_type=client_credentials',
    });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.ok((res.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/,\s*/).includes('dpop-nonce'));
  });

  it('/mcp challenges a proof without the nonce (401 use_dpop_nonce), a browser client may read the DPoP-Nonce, and the retry reaches the MCP server', async () => {
    const token = await boundToken();
    const url = `${t.url}/mcp`;
    const call = async (dpop: string) => fetch(url, {
      method: 'POST',
      headers: { origin: 'https://app.example', authorization: `DPoP ${token}`, dpop, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'nonce-test', version: '1' } } }),
    });
    const first = await call(await dpopProof(key, { htm: 'POST', htu: url, accessToken: token, iat: iat() }));
    assert.equal(first.status, 401);
    assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
    assert.equal(first.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.ok((first.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/,\s*/).includes('dpop-nonce'));
    const nonce = first.headers.get('dpop-nonce')!;
    const ok = await call(await proofWithNonce(key, { htm: 'POST', htu: url, accessToken: token, iat: iat() }, nonce));
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.match(await ok.text(), /"serverInfo"/);
  });

  it('Mimir embedding the library (Express middleware) challenges the same way, nonce header included', async () => {
    const token = await boundToken();
    const app = express();
    app.use('/api', mimirAuthExpress({ hub: t.hub }) as express.RequestHandler);
    app.get('/api/nodes', (req, res) => { res.json({ sub: (req as unknown as { principal: { sub: string } }).principal.sub }); });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/nodes`;
    try {
      const first = await get(url, { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: url, accessToken: token, iat: iat() }) });
      assert.equal(first.status, 401);
      assert.equal(first.body.error, 'use_dpop_nonce');
      assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
      const nonce = first.headers.get('dpop-nonce');
      assert.ok(nonce);
      const ok = await get(url, { authorization: `DPoP ${token}`, dpop: await proofWithNonce(key, { htm: 'GET', htu: url, accessToken: token, iat: iat() }, nonce) });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.sub, clientId);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('the library\'s Fastify plugin challenges the same way, and sends a fresh nonce on a success when one is due', async () => {
    const token = await boundToken();
    const app = Fastify();
    await app.register(mimirAuth, { hub: t.hub });
    app.get('/api/nodes', { preHandler: app.requireAuth }, async (req) => ({ sub: req.principal!.sub }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/nodes`;
    try {
      const first = await get(url, { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: url, accessToken: token, iat: iat() }) });
      assert.equal(first.status, 401);
      assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
      const nonce = first.headers.get('dpop-nonce')!;
      assert.ok(nonce);
      offsetMs = DPOP_NONCE_WINDOW_SECONDS * 1000;
      const ok = await get(url, { authorization: `DPoP ${token}`, dpop: await proofWithNonce(key, { htm: 'GET', htu: url, accessToken: token, iat: iat() }, nonce) });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.sub, clientId);
      const fresh = ok.headers.get('dpop-nonce');
      assert.ok(fresh && fresh !== nonce);
    } finally {
      offsetMs = 0;
      await app.close();
    }
  });

  it('openid-client 6: client credentials with a DPoP handle, then a protected resource, each retrying use_dpop_nonce on its own', async () => {
    const config = await client.discovery(new URL(t.hub.config.jwt.issuer), clientId, {}, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
    const keyPair = await generateKeyPair('ES256');
    const seen = events.length;
    const tokens = await client.clientCredentialsGrant(config, {}, { DPoP: client.getDPoPHandle(config, keyPair) });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    const issued = events.slice(seen).filter((e) => e.type === 'token_issued').map((e) => e.reason ?? e.outcome);
    assert.deepEqual(issued, ['use_dpop_nonce', 'success'], 'the hub challenged and openid-client retried');

    // A new handle knows no nonce yet: the resource challenges, openid-client retries with the nonce.
    const mark = events.length;
    const res = await client.fetchProtectedResource(config, tokens.access_token, new URL(`${t.url}/auth/me`), 'GET', undefined, undefined, { DPoP: client.getDPoPHandle(config, keyPair) });
    assert.equal(res.status, 200);
    assert.equal((await res.json() as { sub: string }).sub, clientId);
    assert.ok(events.slice(mark).some((e) => e.type === 'access_denied' && e.reason === 'use_dpop_nonce'), 'the resource challenged first');
  });

  it('openid-client 6: a public client\'s refresh with a DPoP handle gets a DPoP-bound token after the nonce challenge', async () => {
    const config = await client.discovery(new URL(t.hub.config.jwt.issuer), 'mimir-cli', {}, client.None(), { execute: [client.allowInsecureRequests] });
    const keyPair = await generateKeyPair('ES256');
    const refresh = await login(t);
    const seen = events.length;
    const tokens = await client.refreshTokenGrant(config, refresh, undefined, { DPoP: client.getDPoPHandle(config, keyPair) });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    assert.ok(tokens.refresh_token);
    const refreshes = events.slice(seen).filter((e) => e.type === 'token_issued').map((e) => e.reason ?? e.outcome);
    assert.deepEqual(refreshes, ['use_dpop_nonce', 'success'], 'the hub challenged, openid-client retried, and the refresh token was not spent by the challenge');
  });
});

describe('DPoP nonces across hubs', () => {
  it('hubs sharing MIMIR_JWT_SECRET accept each other\'s nonces with nothing stored; a hub with another secret does not', async () => {
    const shared = randomBytes(32).toString('base64url');
    const prefix = newRedisPrefix();
    // Two instances of one deployment: one store, one secret, one issuer.
    const env = { ...NONCE_ENV, MIMIR_JWT_SECRET: shared, MIMIR_JWT_ISSUER: 'https://hub.example' };
    const a = await startHub({ storage: 'redis', redisPrefix: prefix, env });
    const b = await startHub({ storage: 'redis', redisPrefix: prefix, env });
    const other = await startHub({ storage: 'memory', env: { ...NONCE_ENV, MIMIR_JWT_SECRET: randomBytes(32).toString('base64url') } });
    try {
      const key = await dpopKey();
      const { clientSecret } = await a.hub.serviceAccounts.create({ clientId: 'multi-svc', roles: ['developer'] });
      const { clientSecret: otherSecret } = await other.hub.serviceAccounts.create({ clientId: 'multi-svc', roles: ['developer'] });
      const challenge = await postForm(`${a.url}/auth/token`, { grant_type: 'client_credentials' }, { ...basic('multi-svc', clientSecret), dpop: await dpopProof(key, { htm: 'POST', htu: `${a.url}/auth/token` }) });
      assert.equal(challenge.body.error, 'use_dpop_nonce');
      const nonce = challenge.headers.get('dpop-nonce')!;
      const atB = await postForm(`${b.url}/auth/token`, { grant_type: 'client_credentials' }, { ...basic('multi-svc', clientSecret), dpop: await proofWithNonce(key, { htm: 'POST', htu: `${b.url}/auth/token` }, nonce) });
      assert.equal(atB.status, 200, JSON.stringify(atB.body));
      assert.equal(atB.body.token_type, 'DPoP');
      // A bound token from hub B, used at hub A with the nonce A handed out.
      const me = `${a.url}/auth/me`;
      const atA = await get(me, { authorization: `DPoP ${atB.body.access_token}`, dpop: await proofWithNonce(key, { htm: 'GET', htu: me, accessToken: atB.body.access_token }, nonce) });
      assert.equal(atA.status, 200, JSON.stringify(atA.body));
      // Another secret, another nonce key.
      const elsewhere = await postForm(`${other.url}/auth/token`, { grant_type: 'client_credentials' }, { ...basic('multi-svc', otherSecret), dpop: await proofWithNonce(key, { htm: 'POST', htu: `${other.url}/auth/token` }, nonce) });
      assert.equal(elsewhere.status, 400);
      assert.equal(elsewhere.body.error, 'use_dpop_nonce');
      assert.notEqual(elsewhere.headers.get('dpop-nonce'), nonce);
    } finally {
      await a.close();
      await b.close();
      await other.close();
    }
  });

  it('MIMIR_DPOP_REQUIRE_NONCE=true without DPoP support stops the start, naming both variables', () => {
    assert.throws(() => loadConfig({ MIMIR_DPOP_REQUIRE_NONCE: 'true', MIMIR_ENABLE_TOKEN_BINDING: 'false' }, { dotenv: false }), /MIMIR_DPOP_REQUIRE_NONCE.*MIMIR_ENABLE_TOKEN_BINDING/);
  });
});
