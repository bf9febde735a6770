import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTokenSigner } from '../../../src/jwt/access-token.ts';
import { serviceAccountToken, startHub, type TestHub } from '../../helpers/hub.ts';
import { basic, get, login, postForm, postJson } from '../../helpers/http.ts';
import { cliActor } from '../../../src/admin/service.ts';

describe('revocation (RFC 7009) and introspection (RFC 7662)', () => {
  let t: TestHub;
  let introspector: { clientId: string; secret: string };
  const introspect = (token: string, auth = basic(introspector.clientId, introspector.secret)) => postForm(`${t.url}/auth/introspect`, { token }, auth);

  before(async () => {
    t = await startHub();
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'resource-server', roles: ['introspector'], scopes: ['introspect'] });
    introspector = { clientId: 'resource-server', secret: clientSecret };
  });
  after(async () => t.close());

  it('introspection of a valid access token is active with its claims', async () => {
    const svc = await serviceAccountToken(t, ['developer']);
    const res = await introspect(svc.token);
    assert.equal(res.status, 200);
    assert.equal(res.body.active, true);
    assert.equal(res.body.sub, svc.clientId);
    assert.equal(res.body.client_id, svc.clientId);
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(typeof res.body.exp, 'number');
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  it('introspection of an expired access token is {active: false}', async () => {
    const { clientSecret: _ } = await t.hub.serviceAccounts.create({ clientId: 'old-svc', roles: ['viewer'] });
    const past = createTokenSigner(t.hub.keys, { issuer: t.config.jwt.issuer, audience: t.config.jwt.audience, now: () => Date.now() - 7200_000 });
    const expired = await past.issue({ sub: 'old-svc', client_id: 'old-svc' }, 60);
    assert.deepEqual((await introspect(expired.token)).body, { active: false });
  });

  it('introspection of a revoked access token is {active: false}, and the token is refused', async () => {
    const svc = await serviceAccountToken(t, ['developer']);
    assert.equal((await postForm(`${t.url}/auth/revoke`, { token: svc.token }, basic(svc.clientId, svc.secret))).status, 200);
    assert.deepEqual((await introspect(svc.token)).body, { active: false });
    assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${svc.token}` })).status, 401);
  });

  it('introspection of garbage is {active: false}, never an error', async () => {
    for (const garbage of ['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'mimir_0123456789abcdef_' + 'A'.repeat(43), 'x'.repeat(9000)]) {
      const res = await introspect(garbage);
      assert.equal(res.status, 200, garbage.slice(0, 20));
      assert.deepEqual(res.body, { active: false });
    }
  });

  it('introspection of refresh tokens: active until used or revoked', async () => {
    const refresh = await login(t);
    const live = await introspect(refresh);
    assert.equal(live.body.active, true);
    assert.equal(live.body.token_type, 'refresh_token');
    assert.equal(live.body.client_id, 'mimir-cli');
    const next = await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh });
    assert.deepEqual((await introspect(refresh)).body, { active: false }, 'a rotated-out token is inactive');
    await postForm(`${t.url}/auth/revoke`, { token: next.body.refresh_token, token_type_hint: 'refresh_token' });
    assert.deepEqual((await introspect(next.body.refresh_token)).body, { active: false });
  });

  it('a sign-in session revoked by an administrator takes its refresh tokens with it: inactive at introspection, refused at refresh; other sessions keep theirs', async () => {
    const sid = `sess-${Math.random().toString(36).slice(2)}`;
    const [first, second, other] = [await login(t, { sid }), await login(t, { sid }), await login(t, { sid: `${sid}-other` })];
    const active = async (token: string) => (await introspect(token)).body.active;
    assert.deepEqual([await active(first), await active(second), (await introspect(first)).body.sid], [true, true, sid]);
    await t.hub.admin.revoke(cliActor('ops'), { type: 'session', id: sid });
    assert.deepEqual([await active(first), await active(second), await active(other)], [false, false, true]);
    const refused = await postJson(`${t.url}/auth/refresh`, { refresh_token: first });
    assert.equal(refused.body.error, 'invalid_grant');
  });

  it('introspection of API keys: active while valid', async () => {
    const { key } = await t.hub.apiKeys.create({ name: 'ci', roles: ['viewer'] });
    const res = await introspect(key);
    assert.equal(res.body.active, true);
    assert.equal(res.body.token_type, 'api_key');
    assert.deepEqual(res.body.roles, ['viewer']);
  });

  it('only authenticated callers allowed to introspect may do so', async () => {
    const svc = await serviceAccountToken(t, ['developer']);
    const anonymous = await postForm(`${t.url}/auth/introspect`, { token: svc.token });
    assert.equal(anonymous.status, 401);
    const wrongSecret = await introspect(svc.token, basic(introspector.clientId, 'wrong'));
    assert.equal(wrongSecret.status, 401);
    assert.equal(wrongSecret.body.error, 'invalid_client');
    const notAllowed = await introspect(svc.token, basic(svc.clientId, svc.secret));
    assert.equal(notAllowed.status, 403);
    assert.equal(notAllowed.body.error, 'insufficient_scope');
    const admin = await t.hub.apiKeys.create({ name: 'admin', roles: ['admin'] });
    const byAdmin = await introspect(svc.token, { 'x-api-key': admin.key });
    assert.equal(byAdmin.body.active, true);
  });

  it('revoking an unknown or invalid token answers 200', async () => {
    assert.equal((await postForm(`${t.url}/auth/revoke`, { token: 'no-such-token' })).status, 200);
    assert.equal((await postForm(`${t.url}/auth/revoke`, { token: 'a.b.c', token_type_hint: 'access_token' })).status, 200);
    assert.equal((await postForm(`${t.url}/auth/revoke`, {})).body.error, 'invalid_request');
  });

  it('a confidential client may revoke only its own tokens; an admin may revoke any', async () => {
    const victim = await serviceAccountToken(t, ['developer']);
    const attacker = await serviceAccountToken(t, ['developer']);
    const refused = await postForm(`${t.url}/auth/revoke`, { token: victim.token }, basic(attacker.clientId, attacker.secret));
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'unauthorized_client');
    const anonymous = await postForm(`${t.url}/auth/revoke`, { token: victim.token });
    assert.equal(anonymous.status, 401, 'a confidential client\'s token needs that client to authenticate');
    assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${victim.token}` })).status, 200, 'still valid');
    const admin = await t.hub.apiKeys.create({ name: 'admin2', roles: ['admin'] });
    assert.equal((await postForm(`${t.url}/auth/revoke`, { token: victim.token }, { 'x-api-key': admin.key })).status, 200);
    assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${victim.token}` })).status, 401);
  });

  it('a public client\'s refresh token is its own proof: revoking it ends the family and its access tokens', async () => {
    const refresh = await login(t);
    const next = await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh });
    assert.equal((await postForm(`${t.url}/auth/revoke`, { token: next.body.refresh_token })).status, 200);
    assert.equal((await postJson(`${t.url}/auth/refresh`, { refresh_token: next.body.refresh_token })).body.error, 'invalid_grant');
    assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${next.body.access_token}` })).status, 401);
  });

  it('an API key revoked through the endpoint stops working', async () => {
    const { key } = await t.hub.apiKeys.create({ name: 'leaked', roles: ['viewer'] });
    assert.equal((await get(`${t.url}/auth/me`, { 'x-api-key': key })).status, 200);
    assert.equal((await postForm(`${t.url}/auth/revoke`, { token: key })).status, 200);
    assert.equal((await get(`${t.url}/auth/me`, { 'x-api-key': key })).status, 401);
  });

  it('an admin can revoke a signing key: the tokens it signed stop working, new ones work', async () => {
    const svc = await serviceAccountToken(t, ['developer']);
    const admin = await t.hub.apiKeys.create({ name: 'admin3', roles: ['admin'] });
    const kid = t.hub.keys.currentKid;
    const res = await postJson(`${t.url}/auth/admin/revocations`, { type: 'signing_key', id: kid }, { 'x-api-key': admin.key });
    assert.equal(res.status, 200);
    assert.notEqual(t.hub.keys.currentKid, kid, 'the current key was rotated first');
    assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${svc.token}` })).status, 401);
    const fresh = await postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials' }, basic(svc.clientId, svc.secret));
    assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${fresh.body.access_token}` })).status, 200);
    const notAdmin = await postJson(`${t.url}/auth/admin/revocations`, { type: 'session', id: 'x' }, { authorization: `Bearer ${fresh.body.access_token}` });
    assert.equal(notAdmin.status, 403);
  });

  it('metadata advertises revocation and introspection endpoints', async () => {
    const m = (await get(`${t.url}/.well-known/oauth-authorization-server`)).body;
    assert.equal(m.revocation_endpoint, `${t.url}/auth/revoke`);
    assert.equal(m.introspection_endpoint, `${t.url}/auth/introspect`);
    assert.ok(m.grant_types_supported.includes('refresh_token'));
  });

  it('MIMIR_ENABLE_TOKEN_REVOCATION=false removes the endpoint and its metadata', async () => {
    const off = await startHub({ storage: 'memory', env: { MIMIR_ENABLE_TOKEN_REVOCATION: 'false' } });
    try {
      assert.equal((await postForm(`${off.url}/auth/revoke`, { token: 'x' })).status, 404);
      assert.equal((await get(`${off.url}/.well-known/oauth-authorization-server`)).body.revocation_endpoint, undefined);
    } finally {
      await off.close();
    }
  });
});
