import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { serviceAccountToken, startHub, type TestHub } from '../../helpers/hub.ts';
import { basic, get, login, postForm, postJson } from '../../helpers/http.ts';

describe('refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2)', () => {
  let t: TestHub;
  before(async () => {
    t = await startHub();
  });
  after(async () => t.close());

  it('rotates on every use: a chain of four refreshes, each access token valid', async () => {
    let refresh = await login(t);
    const seen = new Set([refresh]);
    for (let i = 0; i < 4; i++) {
      // Alternate the seed's JSON endpoint and the RFC 6749 grant at the token endpoint.
      const res = i % 2 === 0
        ? await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh })
        : await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: refresh });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.token_type, 'Bearer');
      assert.equal(typeof res.body.refresh_token, 'string');
      assert.ok(!seen.has(res.body.refresh_token), 'a new refresh token each time');
      seen.add(res.body.refresh_token);
      refresh = res.body.refresh_token;
      const me = await get(`${t.url}/auth/me`, { authorization: `Bearer ${res.body.access_token}` });
      assert.equal(me.status, 200);
      assert.equal(me.body.email, 'ada@example.com');
    }
  });

  it('reuse of a rotated-out refresh token revokes the family: the newest refresh token and its access token stop working', async () => {
    const first = await login(t);
    const a = await postJson(`${t.url}/auth/refresh`, { refresh_token: first });
    const b = await postJson(`${t.url}/auth/refresh`, { refresh_token: a.body.refresh_token });
    assert.equal(b.status, 200);
    const reuse = await postJson(`${t.url}/auth/refresh`, { refresh_token: first });
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, 'invalid_grant');
    const newest = await postJson(`${t.url}/auth/refresh`, { refresh_token: b.body.refresh_token });
    assert.equal(newest.status, 400);
    assert.equal(newest.body.error, 'invalid_grant');
    const me = await get(`${t.url}/auth/me`, { authorization: `Bearer ${b.body.access_token}` });
    assert.equal(me.status, 401, 'access tokens of the revoked family are revoked too');
  });

  it('a narrower scope may be asked for, a wider one not', async () => {
    const refresh = await login(t);
    const narrow = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: refresh, scope: 'nodes:read' });
    assert.equal(narrow.status, 200);
    assert.equal(decodeJwt(narrow.body.access_token).scope, 'nodes:read');
    const wide = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: narrow.body.refresh_token, scope: 'nodes:write' });
    assert.equal(wide.body.error, 'invalid_scope');
  });

  it('a confidential client must authenticate, and only for its own refresh tokens', async () => {
    const svc = await serviceAccountToken(t, ['developer']);
    const other = await serviceAccountToken(t, ['developer']);
    const refresh = await login(t, { clientId: svc.clientId, publicClient: false });
    const anonymous = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: refresh });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error, 'invalid_client');
    const wrong = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: refresh }, basic(other.clientId, other.secret));
    assert.equal(wrong.body.error, 'invalid_grant');
    const right = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: refresh }, basic(svc.clientId, svc.secret));
    assert.equal(right.status, 200, 'failed attempts did not burn the token');
  });

  it('garbage, missing and unknown refresh tokens are refused with RFC 6749 errors, never 500', async () => {
    assert.equal((await postJson(`${t.url}/auth/refresh`, {})).body.error, 'invalid_request');
    assert.equal((await postJson(`${t.url}/auth/refresh`, { refresh_token: 'x'.repeat(43) })).body.error, 'invalid_grant');
    assert.equal((await postJson(`${t.url}/auth/refresh`, { refresh_token: '../../etc/passwd' })).body.error, 'invalid_grant');
    assert.equal((await postJson(`${t.url}/auth/refresh`, { refresh_token: ['a', 'b'] })).status, 400);
  });

  it('a refresh of a sign-in whose session has ended ends the login with a 401, and the family stays dead', async () => {
    // The sign-in session this family belongs to ended (signed out, or ended by the IdP).
    const { cookie, session } = await t.hub.sessions.create({ sub: 'idp-ended', roles: ['viewer'], groups: [], provider: 'test' });
    await t.hub.sessions.destroy(cookie);
    const refresh = await login(t, { sub: 'idp-ended', sid: session.sid });
    const res = await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_grant');
    assert.equal(res.body.session_ended, true);
    const again = await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh });
    assert.equal(again.body.error, 'invalid_grant');
  });

  it('MIMIR_ENABLE_TOKEN_REFRESH=false turns refresh off and stops advertising it', async () => {
    const off = await startHub({ storage: 'memory', env: { MIMIR_ENABLE_TOKEN_REFRESH: 'false' } });
    try {
      const refresh = await login(off);
      assert.equal((await postJson(`${off.url}/auth/refresh`, { refresh_token: refresh })).body.error, 'unsupported_grant_type');
      assert.equal((await postForm(`${off.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: refresh })).body.error, 'unsupported_grant_type');
      const metadata = await get(`${off.url}/.well-known/oauth-authorization-server`);
      assert.ok(!metadata.body.grant_types_supported.includes('refresh_token'));
    } finally {
      await off.close();
    }
  });

  it('MIMIR_REFRESH_TOKEN_ROTATION=false keeps the same refresh token valid', async () => {
    const fixed = await startHub({ storage: 'memory', env: { MIMIR_REFRESH_TOKEN_ROTATION: 'false' } });
    try {
      // A confidential client (rotation stays mandatory for public ones), which authenticates to refresh.
      const reg = await postJson(`${fixed.url}/auth/register`, { redirect_uris: ['https://web.example/cb'], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });
      const refresh = await login(fixed, { publicClient: false, clientId: reg.body.client_id as string });
      for (let i = 0; i < 3; i++) {
        const res = await postJson(`${fixed.url}/auth/refresh`, { refresh_token: refresh }, basic(reg.body.client_id as string, reg.body.client_secret as string));
        assert.equal(res.status, 200);
        assert.equal(res.body.refresh_token, undefined);
      }
    } finally {
      await fixed.close();
    }
  });
});
