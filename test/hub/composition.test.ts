/**
 * Issue 19, "one hub, wired once": openHub is the composition root. Two hubs in one process
 * (different issuers, keys, providers, storage, enabled grants) share nothing; a hub opened as a
 * library, with no server, authenticates an IdP access token exactly as the server does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { loadConfig } from '../../src/config/index.ts';
import { openHub } from '../../src/hub.ts';
import { createLogger } from '../../src/logger.ts';
import { get, postForm, postJson } from '../helpers/http.ts';
import { freePort, serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';

const AUDIENCE = 'api://mimir';

function providersFile(idp: TestIdp, id: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-providers-'));
  const file = join(dir, 'providers.json');
  writeFileSync(file, JSON.stringify([{ id, kind: 'generic', issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, audience: AUDIENCE }]));
  return file;
}

describe('two hubs in one process share nothing', () => {
  let idpA: TestIdp;
  let idpB: TestIdp;
  let a: TestHub;
  let b: TestHub;
  before(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    idpA = await startIdp({ kind: 'generic', redirectUris: [`http://127.0.0.1:${portA}/auth/callback`], audience: AUDIENCE });
    idpB = await startIdp({ kind: 'generic', redirectUris: [`http://127.0.0.1:${portB}/auth/callback`], audience: AUDIENCE });
    a = await startHub({ storage: 'sqlite', env: { MIMIR_AUTH_PORT: String(portA), MIMIR_JWT_ALGORITHM: 'RS256', MIMIR_AUTH_PROVIDERS_FILE: providersFile(idpA, 'corp') } });
    b = await startHub({
      storage: 'memory',
      env: { MIMIR_AUTH_PORT: String(portB), MIMIR_JWT_ALGORITHM: 'ES256', MIMIR_AUTH_PROVIDERS_FILE: providersFile(idpB, 'partner'), MIMIR_ENABLE_TOKEN_REFRESH: 'false' },
    });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await idpA?.close();
    await idpB?.close();
  });

  it('each hub has its own issuer and keys: a token of one is refused by the other', async () => {
    assert.notEqual(a.config.jwt.issuer, b.config.jwt.issuer);
    const tokenA = (await serviceAccountToken(a)).token;
    const tokenB = (await serviceAccountToken(b)).token;
    assert.equal((await get(`${a.url}/auth/me`, { authorization: `Bearer ${tokenA}` })).status, 200);
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${tokenA}` })).status, 401);
    assert.equal((await get(`${a.url}/auth/me`, { authorization: `Bearer ${tokenB}` })).status, 401);
    const kidsA = (await get(`${a.url}/.well-known/jwks.json`)).body.keys.map((k: { kid: string }) => k.kid);
    const kidsB = (await get(`${b.url}/.well-known/jwks.json`)).body.keys.map((k: { kid: string }) => k.kid);
    assert.ok(kidsA.every((k: string) => !kidsB.includes(k)));
    assert.equal(decodeJwt(tokenB).iss, b.config.jwt.issuer);
  });

  it('each hub accepts its own provider\'s tokens only', async () => {
    const fromA = await idpA.sign({ sub: 'ada', aud: AUDIENCE, roles: ['viewer'] });
    const fromB = await idpB.sign({ sub: 'bob', aud: AUDIENCE, roles: ['viewer'] });
    assert.equal((await get(`${a.url}/auth/me`, { authorization: `Bearer ${fromA}` })).status, 200);
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${fromB}` })).status, 200);
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${fromA}` })).status, 401);
    assert.equal((await get(`${a.url}/auth/me`, { authorization: `Bearer ${fromB}` })).status, 401);
    assert.equal(a.hub.idp!.knowsIssuer(idpB.issuer), false);
    assert.equal(b.hub.idp!.knowsIssuer(idpA.issuer), false);
  });

  it('each hub serves its own grants and advertises only those', async () => {
    const grantsA = (await get(`${a.url}/.well-known/oauth-authorization-server`)).body.grant_types_supported as string[];
    const grantsB = (await get(`${b.url}/.well-known/oauth-authorization-server`)).body.grant_types_supported as string[];
    assert.ok(grantsA.includes('refresh_token'));
    assert.ok(!grantsB.includes('refresh_token'));
    const refreshB = await postForm(`${b.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) });
    assert.equal(refreshB.body.error, 'unsupported_grant_type');
    const refreshA = await postForm(`${a.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) });
    assert.equal(refreshA.body.error, 'invalid_grant', 'A serves the grant (the token is just unknown)');
  });

  it('credentials, caches and revocations of one hub are never seen by the other', async () => {
    const { key } = await a.hub.apiKeys.create({ name: 'only-a', roles: ['viewer'] });
    assert.equal((await get(`${a.url}/auth/me`, { 'x-api-key': key })).status, 200);
    assert.equal((await get(`${b.url}/auth/me`, { 'x-api-key': key })).status, 401);

    const tokenB = (await serviceAccountToken(b)).token;
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${tokenB}` })).status, 200);
    const cachedInA = a.hub.caches.tokens.size;
    // A revocation of B's token on A's list reaches nothing of B.
    const { jti, exp } = decodeJwt(tokenB) as { jti: string; exp: number };
    await a.hub.revocations.revoke('jti', jti, exp);
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${tokenB}` })).status, 200);
    assert.equal(b.hub.revocations.isRevoked({ jti }), null);
    assert.equal(a.hub.caches.tokens.size, cachedInA, 'B\'s verification did not land in A\'s cache');

    const dcr = await postJson(`${a.url}/auth/register`, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' });
    assert.equal(dcr.status, 201);
    await assert.rejects(b.hub.clients.get(dcr.body.client_id as string), 'a client registered at A is unknown to B');
  });
});

describe('library mode: openHub alone is the hub', () => {
  let idp: TestIdp;
  let server: TestHub;
  let dir: string;
  let file: string;
  before(async () => {
    const port = await freePort();
    idp = await startIdp({ kind: 'generic', redirectUris: [`http://127.0.0.1:${port}/auth/callback`], audience: AUDIENCE });
    file = providersFile(idp, 'corp');
    server = await startHub({ storage: 'memory', env: { MIMIR_AUTH_PORT: String(port), MIMIR_AUTH_PROVIDERS_FILE: file } });
    dir = mkdtempSync(join(tmpdir(), 'mimir-library-'));
  });
  after(async () => {
    await server?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates an IdP access token exactly as the server does', async () => {
    const config = loadConfig({ MIMIR_DATA_DIR: dir, MIMIR_TOKEN_STORAGE: 'memory', MIMIR_AUTH_PROVIDERS_FILE: file, MIMIR_PUBLIC_URL: server.url, MIMIR_LOG_LEVEL: 'silent' }, { dotenv: false });
    const hub = await openHub(config, { logger: createLogger('silent') });
    try {
      const token = await idp.sign({ sub: 'ada', aud: AUDIENCE, roles: ['developer'], email: 'ada@example.com', email_verified: true, name: 'Ada' });
      const principal = await hub.authenticator.authenticate({ headers: { authorization: `Bearer ${token}` } });
      const viaServer = (await get(`${server.url}/auth/me`, { authorization: `Bearer ${token}` })).body;
      for (const field of ['sub', 'email', 'name', 'roles', 'groups', 'scopes', 'provider', 'auth_method'] as const) {
        assert.deepEqual(principal[field], viaServer[field], field);
      }
      assert.equal(principal.auth_method, 'oauth');
      assert.deepEqual(hub.authorizer.permissions(principal), viaServer.permissions);
      // And refuses what the server refuses.
      const foreign = await idp.sign({ sub: 'ada', aud: 'api://someone-else', roles: ['developer'] });
      await assert.rejects(hub.authenticator.authenticate({ headers: { authorization: `Bearer ${foreign}` } }), (e: { error?: string }) => e.error === 'invalid_token');
      assert.equal((await get(`${server.url}/auth/me`, { authorization: `Bearer ${foreign}` })).status, 401);
    } finally {
      await hub.close();
    }
  });
});
