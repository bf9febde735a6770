import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { basic, dpopKey, dpopProof, get, login, postForm, postJson, type DpopKey } from '../helpers/http.ts';

describe('DPoP token binding (RFC 9449)', () => {
  let t: TestHub;
  let key: DpopKey;
  let token: string;
  let me: string;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    key = await dpopKey();
    me = `${t.url}/auth/me`;
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'dpop-svc', roles: ['developer'] });
    const proof = await dpopProof(key, { htm: 'POST', htu: `${t.url}/auth/token` });
    const res = await postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials' }, { ...basic('dpop-svc', clientSecret), dpop: proof });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.token_type, 'DPoP');
    token = res.body.access_token;
  });
  after(async () => t.close());

  it('a token request with a DPoP proof yields a token bound to the proof key (cnf.jkt)', () => {
    assert.deepEqual(decodeJwt(token).cnf, { jkt: key.jkt });
  });

  it('the bound token works with a fresh proof for this method and URL', async () => {
    const res = await get(me, { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: me, accessToken: token }) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.sub, 'dpop-svc');
  });

  it('a missing proof is rejected', async () => {
    const res = await get(me, { authorization: `DPoP ${token}` });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_dpop_proof');
    assert.match(res.headers.get('www-authenticate') ?? '', /^DPoP /);
  });

  it('a proof for another HTTP method is rejected', async () => {
    const res = await get(me, { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'POST', htu: me, accessToken: token }) });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_dpop_proof');
  });

  it('a proof for another URL is rejected', async () => {
    const res = await get(me, { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: `${t.url}/api/nodes`, accessToken: token }) });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_dpop_proof');
  });

  it('a replayed proof (same jti) is rejected', async () => {
    const proof = await dpopProof(key, { htm: 'GET', htu: me, accessToken: token });
    assert.equal((await get(me, { authorization: `DPoP ${token}`, dpop: proof })).status, 200);
    const replay = await get(me, { authorization: `DPoP ${token}`, dpop: proof });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, 'invalid_dpop_proof');
  });

  it('a stale proof (old iat), a proof without ath and a proof by another key are rejected', async () => {
    const stale = await dpopProof(key, { htm: 'GET', htu: me, accessToken: token, iat: Math.floor(Date.now() / 1000) - 600 });
    assert.equal((await get(me, { authorization: `DPoP ${token}`, dpop: stale })).body.error, 'invalid_dpop_proof');
    const noAth = await dpopProof(key, { htm: 'GET', htu: me });
    assert.equal((await get(me, { authorization: `DPoP ${token}`, dpop: noAth })).body.error, 'invalid_dpop_proof');
    const other = await dpopProof(await dpopKey(), { htm: 'GET', htu: me, accessToken: token });
    assert.equal((await get(me, { authorization: `DPoP ${token}`, dpop: other })).body.error, 'invalid_dpop_proof');
  });

  it('a bound token sent as a Bearer token is rejected', async () => {
    const res = await get(me, { authorization: `Bearer ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: me, accessToken: token }) });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_token');
  });

  it('a malformed DPoP proof at the token endpoint is a 400 invalid_dpop_proof', async () => {
    const res = await postJson(`${t.url}/auth/refresh`, { refresh_token: await login(t) }, { dpop: 'not-a-jwt' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_dpop_proof');
  });

  it('refresh with a DPoP proof issues a bound access token', async () => {
    const refresh = await login(t);
    const res = await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh }, { dpop: await dpopProof(key, { htm: 'POST', htu: `${t.url}/auth/refresh` }) });
    assert.equal(res.status, 200);
    assert.equal(res.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(res.body.access_token).cnf, { jkt: key.jkt });
  });

  it('metadata advertises dpop_signing_alg_values_supported', async () => {
    const metadata = await get(`${t.url}/.well-known/oauth-authorization-server`);
    assert.ok(metadata.body.dpop_signing_alg_values_supported.includes('ES256'));
    assert.ok(!metadata.body.dpop_signing_alg_values_supported.includes('HS256'));
  });

  it('with MIMIR_REQUIRE_TOKEN_BINDING=true an unbound token is refused, a bound one accepted', async () => {
    const strict = await startHub({ storage: 'memory', env: { MIMIR_REQUIRE_TOKEN_BINDING: 'true' } });
    try {
      const { clientSecret } = await strict.hub.serviceAccounts.create({ clientId: 'svc', roles: ['developer'] });
      const bearer = await postForm(`${strict.url}/auth/token`, { grant_type: 'client_credentials' }, basic('svc', clientSecret));
      const refused = await get(`${strict.url}/auth/me`, { authorization: `Bearer ${bearer.body.access_token}` });
      assert.equal(refused.status, 401);
      const bound = await postForm(`${strict.url}/auth/token`, { grant_type: 'client_credentials' }, { ...basic('svc', clientSecret), dpop: await dpopProof(key, { htm: 'POST', htu: `${strict.url}/auth/token` }) });
      const url = `${strict.url}/auth/me`;
      const ok = await get(url, { authorization: `DPoP ${bound.body.access_token}`, dpop: await dpopProof(key, { htm: 'GET', htu: url, accessToken: bound.body.access_token }) });
      assert.equal(ok.status, 200);
    } finally {
      await strict.close();
    }
  });
});
