import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, SignJWT, exportSPKI, base64url } from 'jose';
import { serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';

async function me(t: TestHub, headers: Record<string, string>) {
  const res = await fetch(`${t.url}/auth/me`, { headers });
  return { status: res.status, body: await res.json() as Record<string, unknown>, challenge: res.headers.get('www-authenticate') };
}

for (const storage of ['memory', 'sqlite', 'redis'] as const) {
  describe(`authentication on ${storage} storage`, () => {
    let t: TestHub;
    before(async () => { t = await startHub({ storage }); });
    after(async () => { await t.close(); });

    it('a service account token reaches /auth/me', async () => {
      const { token, clientId } = await serviceAccountToken(t, ['developer']);
      const r = await me(t, { authorization: `Bearer ${token}` });
      assert.equal(r.status, 200);
      assert.equal(r.body.sub, clientId);
      assert.equal(r.body.client_id, clientId);
      assert.equal(r.body.auth_method, 'jwt');
      assert.deepEqual(r.body.roles, ['developer']);
    });

    it('an API key reaches /auth/me, by X-API-Key and as a bearer token', async () => {
      const { key, record } = await t.hub.apiKeys.create({ name: 'ci', roles: ['analyst'] });
      for (const headers of [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }] as Array<Record<string, string>>) {
        const r = await me(t, headers);
        assert.equal(r.status, 200);
        assert.equal(r.body.auth_method, 'api-key');
        assert.equal(r.body.client_id, record.id);
        assert.deepEqual(r.body.roles, ['analyst']);
      }
    });

    it('no credential: 401 with a Bearer challenge and no error code', async () => {
      const r = await me(t, {});
      assert.equal(r.status, 401);
      assert.equal(r.challenge, 'Bearer realm="mimir"');
    });

    it('a wrong API key that shares a valid key\'s id is refused', async () => {
      const { key } = await t.hub.apiKeys.create({ name: 'victim', roles: ['admin'] });
      const forged = key.slice(0, key.lastIndexOf('_') + 1) + 'A'.repeat(43);
      const r = await me(t, { 'x-api-key': forged });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_token');
    });

    it('a revoked API key is refused at once', async () => {
      const { key, record } = await t.hub.apiKeys.create({ name: 'revoked', roles: [] });
      assert.equal((await me(t, { 'x-api-key': key })).status, 200);
      assert.equal(await t.hub.apiKeys.revoke(record.id), true);
      const r = await me(t, { 'x-api-key': key });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_token');
    });

    it('a disabled service account\'s tokens stop working', async () => {
      const { token, clientId } = await serviceAccountToken(t, ['viewer']);
      assert.equal((await me(t, { authorization: `Bearer ${token}` })).status, 200);
      await t.hub.serviceAccounts.setDisabled(clientId, true);
      assert.equal((await me(t, { authorization: `Bearer ${token}` })).status, 401);
    });
  });
}

describe('bad credentials answer 4xx with the right code, never 500', () => {
  let t: TestHub;
  let good: string;
  before(async () => {
    t = await startHub({ storage: 'sqlite' });
    good = (await serviceAccountToken(t)).token;
  });
  after(async () => { await t.close(); });

  const b64 = (o: unknown) => base64url.encode(JSON.stringify(o));
  const cases: Array<[string, () => Record<string, string>, number, string]> = [
    ['Authorization without a token', () => ({ authorization: 'Bearer' }), 400, 'invalid_request'],
    ['Authorization with spaces in the token', () => ({ authorization: 'Bearer a b c' }), 400, 'invalid_request'],
    ['Authorization with a non-b64token character', () => ({ authorization: 'Bearer abc$def' }), 400, 'invalid_request'],
    ['an unknown scheme', () => ({ authorization: 'Basic dXNlcjpwYXNz' }), 401, 'invalid_token'],
    ['a JWT that is not base64url', () => ({ authorization: 'Bearer ###.###.###'.replace(/#/g, 'a') + '%' }), 400, 'invalid_request'],
    ['a JWT whose payload is not JSON', () => ({ authorization: `Bearer ${b64({ alg: 'RS256' })}.${base64url.encode('not json')}.sig` }), 401, 'invalid_token'],
    ['a JWT with garbage segments', () => ({ authorization: 'Bearer aaaa.bbbb.cccc' }), 401, 'invalid_token'],
    ['alg none', () => {
      const [, payload] = good.split('.');
      return { authorization: `Bearer ${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.` };
    }, 401, 'invalid_token'],
    ['a header over 8 KB', () => ({ authorization: `Bearer ${'a'.repeat(9000)}` }), 400, 'invalid_request'],
    ['an API key header over 8 KB', () => ({ 'x-api-key': 'a'.repeat(9000) }), 400, 'invalid_request'],
  ];
  for (const [name, headers, status, error] of cases) {
    it(`${name} → ${status} ${error}`, async () => {
      const r = await me(t, headers());
      assert.equal(r.status, status);
      assert.equal(r.body.error, error);
    });
  }

  it('an HS256 token signed with the hub\'s RS256 public key is refused', async () => {
    const jwk = t.hub.keys.jwks().keys[0]!;
    const { importJWK } = await import('jose');
    const pub = await importJWK(jwk, 'RS256');
    const pem = await exportSPKI(pub as Parameters<typeof exportSPKI>[0]);
    const forged = await new SignJWT({ sub: 'attacker', scope: '*', roles: ['admin'], client_id: 'x' })
      .setProtectedHeader({ alg: 'HS256', kid: jwk.kid!, typ: 'at+jwt' })
      .setIssuer(t.config.jwt.issuer).setAudience(t.config.jwt.audience).setIssuedAt().setExpirationTime('1h').setJti('j1')
      .sign(new TextEncoder().encode(pem));
    const r = await me(t, { authorization: `Bearer ${forged}` });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_token');
  });

  async function foreign(claims: Record<string, unknown>, opts: { kid?: string; iss?: string; aud?: string; exp?: number | string } = {}) {
    const { privateKey } = await generateKeyPair('RS256');
    return new SignJWT({ client_id: 'x', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'unknown-kid', typ: 'at+jwt' })
      .setIssuer(opts.iss ?? t.config.jwt.issuer).setAudience(opts.aud ?? t.config.jwt.audience)
      .setSubject('attacker').setIssuedAt().setExpirationTime(opts.exp ?? '1h').setJti('j2').sign(privateKey);
  }

  it('a token signed by an unknown key is refused', async () => {
    const r = await me(t, { authorization: `Bearer ${await foreign({})}` });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_token');
  });

  it('a token signed by another key under our kid is refused', async () => {
    const r = await me(t, { authorization: `Bearer ${await foreign({}, { kid: t.hub.keys.currentKid })}` });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_token');
  });

  it('wrong iss, wrong aud and expired tokens of our own key are refused', async () => {
    const key = t.hub.keys.current();
    const sign = (iss: string, aud: string, exp: number) => new SignJWT({ client_id: 'x' })
      .setProtectedHeader({ alg: 'RS256', kid: key.record.kid, typ: 'at+jwt' })
      .setIssuer(iss).setAudience(aud).setSubject('s').setIssuedAt(exp - 3600).setExpirationTime(exp).setJti('j3').sign(key.sign);
    const now = Math.floor(Date.now() / 1000);
    const wrongIss = await me(t, { authorization: `Bearer ${await sign('https://evil.example', t.config.jwt.audience, now + 600)}` });
    assert.equal(wrongIss.status, 401);
    assert.equal(wrongIss.body.error, 'invalid_token');
    const wrongAud = await me(t, { authorization: `Bearer ${await sign(t.config.jwt.issuer, 'another-api', now + 600)}` });
    assert.equal(wrongAud.status, 401);
    assert.equal(wrongAud.body.error, 'invalid_token');
    const expired = await me(t, { authorization: `Bearer ${await sign(t.config.jwt.issuer, t.config.jwt.audience, now - 60)}` });
    assert.equal(expired.status, 401);
    assert.equal(expired.body.error, 'token_expired');
    assert.match(expired.challenge ?? '', /error="invalid_token"/);
  });

  it('a token not yet valid (nbf in the future) is refused', async () => {
    const key = t.hub.keys.current();
    const now = Math.floor(Date.now() / 1000);
    const early = await new SignJWT({ client_id: 'x' }).setProtectedHeader({ alg: 'RS256', kid: key.record.kid, typ: 'at+jwt' })
      .setIssuer(t.config.jwt.issuer).setAudience(t.config.jwt.audience).setSubject('s').setIssuedAt(now).setNotBefore(now + 600)
      .setExpirationTime(now + 3600).setJti('j4').sign(key.sign);
    const r = await me(t, { authorization: `Bearer ${early}` });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_token');
  });

  it('a token without typ at+jwt is refused (RFC 9068 §4)', async () => {
    const key = t.hub.keys.current();
    const plain = await new SignJWT({ client_id: 'x' }).setProtectedHeader({ alg: 'RS256', kid: key.record.kid })
      .setIssuer(t.config.jwt.issuer).setAudience(t.config.jwt.audience).setSubject('s').setIssuedAt().setExpirationTime('1h').setJti('j5').sign(key.sign);
    assert.equal((await me(t, { authorization: `Bearer ${plain}` })).status, 401);
  });

  it('the hub keeps serving after all of that', async () => {
    const r = await me(t, { authorization: `Bearer ${good}` });
    assert.equal(r.status, 200);
    const health = await fetch(`${t.url}/health`);
    assert.equal(health.status, 200);
  });

  it('legacy static keys from MIMIR_API_KEYS keep working', async () => {
    const legacy = await startHub({ storage: 'memory', env: { MIMIR_API_KEYS: 'legacy-key-0123456789abcdef:developer' } });
    try {
      const ok = await me(legacy, { 'x-api-key': 'legacy-key-0123456789abcdef' });
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.body.roles, ['developer']);
      assert.ok(!JSON.stringify(ok.body).includes('legacy-key-0123456789abcdef'), 'the key itself is never echoed');
      assert.equal((await me(legacy, { 'x-api-key': 'legacy-key-0123456789abcdeX' })).status, 401);
    } finally {
      await legacy.close();
    }
  });

  it('MIMIR_AUTH_METHODS turns a method off', async () => {
    const jwtOnly = await startHub({ storage: 'memory', env: { MIMIR_AUTH_METHODS: 'jwt' } });
    try {
      const { key } = await jwtOnly.hub.apiKeys.create({ name: 'k', roles: [] });
      assert.equal((await me(jwtOnly, { 'x-api-key': key })).status, 401);
      const { token } = await serviceAccountToken(jwtOnly);
      assert.equal((await me(jwtOnly, { authorization: `Bearer ${token}` })).status, 200);
    } finally {
      await jwtOnly.close();
    }
  });
});
