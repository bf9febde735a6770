/**
 * Attacker's review (after issue 19): a service account gone rogue is disabled (or deleted) by
 * an administrator. Its own tokens stop working at once, but the tokens it already obtained for
 * users by token exchange (`act.sub` = the account) are never checked against the account: the
 * rogue service keeps acting as those users until the tokens expire (up to an access-token
 * lifetime, an hour by default).
 *
 * Introspection says the same (RFC 7662 §2.2: `active` is whether the hub would accept the token
 * now; one rule, src/authn/service-account-tokens.ts): the exchanged token, and a client_credentials
 * token of an account deleted and re-created under its id, are `{active: false}`. Found by a
 * standards review; those assertions failed at 8f29cfc.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { basic, get, postForm } from '../../helpers/http.ts';
import { signIn, startRig, type Rig } from '../../oidc/setup.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

describe('a disabled or deleted service account stops acting for users at once', () => {
  let rig: Rig;
  let admin: string;
  before(async () => {
    rig = await startRig({ corp: 'generic' }, { storage: 'memory', idpById: { corp: { users: { ada: { roles: ['developer'] } } } } });
    admin = (await rig.hub.hub.apiKeys.create({ name: 'ops', roles: ['admin'] })).key;
  });
  after(async () => rig.close());

  const introspect = async (token: string) => (await postForm(`${rig.hub.url}/auth/introspect`, { token }, { 'x-api-key': admin })).body;

  for (const action of ['disable', 'delete'] as const) {
    it(`after "${action}", the tokens it obtained by token exchange are refused`, async () => {
      const { res } = await signIn(rig, 'corp', { login: 'ada', accept: 'application/json' });
      const user = await res.json() as { access_token: string };
      const id = `rogue-${action}`;
      const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['developer'], allowTokenExchange: true });
      const delegated = await postForm(`${rig.hub.url}/auth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: user.access_token, subject_token_type: ACCESS_TOKEN }, basic(id, clientSecret));
      assert.equal(delegated.status, 200, JSON.stringify(delegated.body));
      const token = delegated.body.access_token as string;
      assert.equal((await get(`${rig.hub.url}/auth/me`, { authorization: `Bearer ${token}` })).status, 200);

      const stop = action === 'disable'
        ? await fetch(`${rig.hub.url}/auth/admin/service-accounts/${id}/disable`, { method: 'POST', headers: { 'x-api-key': admin } })
        : await fetch(`${rig.hub.url}/auth/admin/service-accounts/${id}`, { method: 'DELETE', headers: { 'x-api-key': admin } });
      assert.equal(stop.status, 200);

      const after = await get(`${rig.hub.url}/auth/me`, { authorization: `Bearer ${token}` });
      assert.equal(after.status, 401, `the ${action}d service still acts as ${String(after.body.sub)}`);
      assert.deepEqual(await introspect(token), { active: false }, 'introspection agrees with the hub');
    });
  }

  it('a client_credentials token of a service account deleted and re-created under its id is refused, and inactive', async () => {
    const id = 'recreated-svc';
    const first = await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['developer'] });
    const issued = await postForm(`${rig.hub.url}/auth/token`, { grant_type: 'client_credentials' }, basic(id, first.clientSecret));
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const token = issued.body.access_token as string;
    assert.equal((await introspect(token)).active, true);
    await rig.hub.hub.serviceAccounts.delete(id);
    await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['admin'] });
    assert.equal((await get(`${rig.hub.url}/auth/me`, { authorization: `Bearer ${token}` })).status, 401, 'the old incarnation\'s token is refused');
    assert.deepEqual(await introspect(token), { active: false }, 'introspection agrees with the hub');
  });
});
