/**
 * RFC 8707 §2.2 on refresh, for a grant that names no resource (a sign-in's, for the whole hub): a
 * `resource` the hub serves makes a token for that resource alone; one it does not serve is
 * invalid_target and uses nothing up. (A grant for one resource is in
 * test/oauth/authorize/rfc-review.test.ts.) Found by a review: the token asked for /mcp carried the
 * general audience, good on every path.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startHub, type TestHub } from '../../helpers/hub.ts';
import { postForm } from '../../helpers/http.ts';

describe('refresh naming a resource, of a grant for the whole hub', () => {
  let t: TestHub;
  before(async () => { t = await startHub({ storage: 'memory' }); });
  after(async () => { await t?.close(); });

  const refresh = (refresh_token: string, resource?: string) => postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token, ...(resource ? { resource } : {}) });
  const grant = async () => (await t.hub.refreshTokens.issue({ sub: 'alice', clientId: 'mimir-login', scope: '', roles: ['developer'], groups: [], publicClient: true })).token;

  it('/mcp: the token is for /mcp alone (refused elsewhere)', async () => {
    const mcp = `${t.hub.config.publicUrl}/mcp`;
    const r = await refresh(await grant(), mcp);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(decodeJwt(r.body.access_token).aud, mcp);
    assert.equal((await fetch(`${t.url}/auth/me`, { headers: { authorization: `Bearer ${r.body.access_token}` } })).status, 401, 'not a token for /auth/me');
  });

  it('none: the general audience as before; another resource: invalid_target, and the token still refreshes', async () => {
    const token = await grant();
    const other = await refresh(token, 'https://elsewhere.example/mcp');
    assert.equal(other.status, 400);
    assert.equal(other.body.error, 'invalid_target');
    const plain = await refresh(token);
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
    assert.equal(decodeJwt(plain.body.access_token).aud, t.hub.config.jwt.audience);
  });
});
