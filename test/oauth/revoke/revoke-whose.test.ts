/**
 * RFC 7009 §2.1: "the authorization server ... verifies whether the token was issued to the client
 * making the revocation request. If this validation fails, the request is refused". Found by a
 * standards review; each test failed at 8f29cfc:
 * - a public client that names itself by `client_id` revoked another public client's refresh token;
 * - one user's token obtained by a service account (token exchange) revoked another user's token
 *   obtained by the same account: a user's credential for a confidential client is not that
 *   client's authentication.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { basic, postForm } from '../../helpers/http.ts';
import { authorize, pkce, register, tokenRequest } from '../../helpers/authorize-flow.ts';
import { signIn, startRig, type Rig } from '../../oidc/setup.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

describe('revocation: only the client a token was issued to (RFC 7009 §2.1)', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_DEVELOPMENT_MODE: 'true' }, idpById: { corp: { users: { ada: { roles: ['developer'] }, bob: { roles: ['developer'] } } } } });
  });
  after(async () => rig?.close());

  async function publicClient(name: string, redirect: string): Promise<string> {
    const reg = await register(rig.hub, { client_name: name, redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    return reg.body.client_id as string;
  }

  const revoke = (body: Record<string, string>, headers: Record<string, string> = {}) => postForm(`${rig.hub.url}/auth/revoke`, body, headers);

  it('a public client naming itself cannot revoke another client\'s refresh token; the client it was issued to can', async () => {
    const session = (await signIn(rig, 'corp', { login: 'ada' })).session!;
    const redirect = 'https://victim.example/cb';
    const victim = await publicClient('Victim', redirect);
    const attacker = await publicClient('Attacker', 'https://attacker.example/cb');
    const { verifier, challenge } = pkce();
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: victim, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', scope: 'nodes:read' });
    const t = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: new URL(r.location!).searchParams.get('code')!, redirect_uri: redirect, code_verifier: verifier, client_id: victim });
    assert.equal(t.status, 200, JSON.stringify(t.body));

    const refused = await revoke({ token: t.body.refresh_token, token_type_hint: 'refresh_token', client_id: attacker });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'unauthorized_client');
    const still = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: victim });
    assert.equal(still.status, 200, `the victim's token still refreshes: ${JSON.stringify(still.body)}`);

    const own = await revoke({ token: still.body.refresh_token, client_id: victim });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const gone = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: still.body.refresh_token, client_id: victim });
    assert.equal(gone.body.error, 'invalid_grant');
  });

  it('one user\'s token through a service account does not revoke another user\'s; the user\'s own and the account\'s own do', async () => {
    const id = 'revoke-actor';
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['developer'], allowTokenExchange: true });
    const through = async (login: string) => {
      const user = await (await signIn(rig, 'corp', { login, accept: 'application/json' })).res.json() as { access_token: string };
      const exchanged = await postForm(`${rig.hub.url}/auth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: user.access_token, subject_token_type: ACCESS_TOKEN }, basic(id, clientSecret));
      assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
      return exchanged.body.access_token as string;
    };
    const ada = await through('ada');
    const bob = await through('bob');
    const admin = (await rig.hub.hub.apiKeys.create({ name: 'ops', roles: ['admin'] })).key;
    const active = async (token: string) => (await postForm(`${rig.hub.url}/auth/introspect`, { token }, { 'x-api-key': admin })).body.active;

    const refused = await revoke({ token: bob }, { authorization: `Bearer ${ada}` });
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'invalid_client');
    assert.equal(await active(bob), true, 'bob\'s token was not revoked by ada\'s');

    const adaAgain = await through('ada');
    assert.equal((await revoke({ token: adaAgain }, { authorization: `Bearer ${ada}` })).status, 200, 'ada revokes her own');
    assert.equal(await active(adaAgain), false);

    const accountToken = (await postForm(`${rig.hub.url}/auth/token`, { grant_type: 'client_credentials' }, basic(id, clientSecret))).body.access_token as string;
    assert.equal((await revoke({ token: bob }, { authorization: `Bearer ${accountToken}` })).status, 200, 'the account revokes a token it obtained');
    assert.equal(await active(bob), false);
  });
});
