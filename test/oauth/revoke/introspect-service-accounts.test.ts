/**
 * RFC 7662 §2.2: `active` says whether the hub would accept the token now. The authenticator
 * refuses a token-exchange token whose actor (act.sub) service account is disabled or deleted,
 * and a client_credentials token of a service account deleted and re-created under the same id
 * (`aid`); introspection answers `{active: false}` for both (one rule:
 * src/authn/service-account-tokens.ts), so a resource server that introspects refuses them too.
 * Found by a standards review; each test failed at 8f29cfc.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { basic, get, postForm } from '../../helpers/http.ts';
import { signIn, startRig, type Rig } from '../../oidc/setup.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

describe('introspection agrees with the hub about service-account tokens (RFC 7662 §2.2)', () => {
  let rig: Rig;
  let admin: string;
  before(async () => {
    rig = await startRig({ corp: 'generic' }, { storage: 'memory', idpById: { corp: { users: { ada: { roles: ['developer'] } } } } });
    admin = (await rig.hub.hub.apiKeys.create({ name: 'ops', roles: ['admin'] })).key;
  });
  after(async () => rig.close());

  const introspect = async (token: string) => (await postForm(`${rig.hub.url}/auth/introspect`, { token }, { 'x-api-key': admin })).body;

  for (const action of ['disable', 'delete'] as const) {
    it(`a token obtained by token exchange is inactive once its actor is ${action}d`, async () => {
      const { res } = await signIn(rig, 'corp', { login: 'ada', accept: 'application/json' });
      const user = await res.json() as { access_token: string };
      const id = `actor-${action}`;
      const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['developer'], allowTokenExchange: true });
      const delegated = await postForm(`${rig.hub.url}/auth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: user.access_token, subject_token_type: ACCESS_TOKEN }, basic(id, clientSecret));
      assert.equal(delegated.status, 200, JSON.stringify(delegated.body));
      const token = delegated.body.access_token as string;
      assert.equal((await introspect(token)).active, true);

      if (action === 'disable') await rig.hub.hub.serviceAccounts.setDisabled(id, true);
      else await rig.hub.hub.serviceAccounts.delete(id);
      assert.equal((await get(`${rig.hub.url}/auth/me`, { authorization: `Bearer ${token}` })).status, 401, 'the hub refuses it');
      assert.deepEqual(await introspect(token), { active: false }, 'introspection must agree');
    });
  }

  it('a client_credentials token of a deleted and re-created service account is inactive', async () => {
    const id = 'recreated-svc';
    const first = await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['developer'] });
    const issued = await postForm(`${rig.hub.url}/auth/token`, { grant_type: 'client_credentials' }, basic(id, first.clientSecret));
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const token = issued.body.access_token as string;
    await rig.hub.hub.serviceAccounts.delete(id);
    await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['admin'] });
    assert.equal((await get(`${rig.hub.url}/auth/me`, { authorization: `Bearer ${token}` })).status, 401, 'the hub refuses the old incarnation\'s token');
    assert.deepEqual(await introspect(token), { active: false }, 'introspection must agree');
  });
});
