/**
 * A confidential client authenticates with the method it registered (RFC 7591
 * `token_endpoint_auth_method`): its secret sent another way is refused at the token endpoint too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { basic, postForm, postJson } from '../../helpers/http.ts';
import { startHub, type TestHub } from '../../helpers/hub.ts';

describe('the registered client authentication method', () => {
  let t: TestHub;
  before(async () => { t = await startHub({ storage: 'memory' }); });
  after(async () => t.close());

  it('a client registered with client_secret_basic may not send client_secret_post', async () => {
    const reg = await postJson(`${t.url}/auth/register`, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });
    const { client_id: id, client_secret: secret } = reg.body as { client_id: string; client_secret: string };
    const family = await t.hub.refreshTokens.issue({ sub: 'ada', clientId: id, scope: 'nodes:read', roles: ['viewer'] });
    const post = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: family.token, client_id: id, client_secret: secret });
    assert.equal(post.status, 401);
    assert.equal(post.body.error, 'invalid_client');
    const viaBasic = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: family.token }, basic(id, secret));
    assert.equal(viaBasic.status, 200, JSON.stringify(viaBasic.body));
  });
});
