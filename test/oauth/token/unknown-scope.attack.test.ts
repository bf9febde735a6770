/**
 * Issue 17 item 3: unknown scopes never grant everything. `scope=bogus:unknown` in the code flow
 * gave a token with all of the user's permissions (nothing the hub knew was asked, so "nothing
 * asked"), and an admin service account asking for it got a token with that scope (its `*`
 * covers any string). The rule now: an unknown scope is `invalid_scope` in every grant
 * (RFC 6749 §4.1.2.1, §5.2); no scope asked → the client's registered scope, else the resource's
 * default (for /mcp: what MCP needs), never more than the user holds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { authorize, pkce, register, tokenRequest } from '../../helpers/authorize-flow.ts';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

describe('unknown scopes are refused, never read as "nothing asked"', () => {
  let rig: Rig;
  let session: string;
  /** An administrator's session (roles: admin, whose `*` covers any string). */
  let adminSession: string;
  let redirectUri: string;
  let clientId: string;

  /** The authorization code flow through the hub; the redirect back (error or code). */
  const codeFlow = async (params: Record<string, string>, client = clientId, as = session) => {
    const { verifier, challenge } = pkce();
    const r = await authorize(rig.hub, as, { response_type: 'code', client_id: client, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 's', ...params });
    const back = new URL(r.location!);
    const code = back.searchParams.get('code');
    if (!code) return { error: back.searchParams.get('error'), state: back.searchParams.get('state') };
    const token = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: client });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    return { error: null, token: token.body };
  };

  before(async () => {
    rig = await startRig({ corp: 'generic' }, { idp: { users: { root: { roles: ['admin'] } } } });
    // jane is a developer: nodes:*, search, orchestration, files, chat:use, mcp:* — not admin:manage.
    session = (await signIn(rig, 'corp')).session!;
    adminSession = (await signIn(rig, 'corp', { login: 'root' })).session!;
    redirectUri = 'http://127.0.0.1:7801/callback';
    const reg = await register(rig.hub, { client_name: 'Scoped', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    clientId = reg.body.client_id;
  });
  after(async () => { await rig?.close(); });

  it('code flow: scope=bogus:unknown goes back to the client as invalid_scope (RFC 6749 §4.1.2.1), with its state', async () => {
    for (const scope of ['bogus:unknown', 'nodes:read bogus:unknown', 'read write']) {
      const r = await codeFlow({ scope, resource: rig.hub.url });
      assert.equal(r.error, 'invalid_scope', scope);
      assert.equal(r.state, 's');
    }
  });

  it('code flow: known permissions the user lacks are dropped, never replaced by everything', async () => {
    const r = await codeFlow({ scope: 'admin:manage nodes:read', resource: rig.hub.url });
    assert.equal(r.token!.scope, 'nodes:read');
    const only = await codeFlow({ scope: 'admin:manage', resource: rig.hub.url });
    assert.equal(only.error, 'access_denied', 'a user holding none of the permissions asked gets no token');
  });

  it('code flow: OpenID Connect scopes are known (MCP clients send openid profile email offline_access)', async () => {
    const r = await codeFlow({ scope: 'openid profile email offline_access' });
    assert.equal(r.error, null);
    assert.deepEqual(r.token!.scope.split(' '), ['mcp:*', 'openid', 'profile', 'email', 'offline_access']);
  });

  it('code flow, no scope: for /mcp what MCP needs (mcp:*), for the origin root everything the user holds', async () => {
    const mcp = await codeFlow({ resource: `${rig.hub.url}/mcp` });
    assert.equal(mcp.token!.scope, 'mcp:*');
    const root = await codeFlow({ resource: rig.hub.url });
    const all = root.token!.scope.split(' ');
    assert.ok(all.includes('nodes:write') && all.includes('mcp:*'), root.token!.scope);
  });

  it('code flow, no scope: a client registered with a scope gets that, narrowed to what the user holds', async () => {
    const reg = await register(rig.hub, { client_name: 'Registered scope', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', scope: 'nodes:read admin:manage openid' });
    assert.equal(reg.status, 201);
    const r = await codeFlow({ resource: rig.hub.url }, reg.body.client_id);
    assert.equal(r.token!.scope, 'nodes:read');
  });

  it('client_credentials: an admin service account asking for bogus:unknown gets invalid_scope, not a token', async () => {
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'admin-svc', roles: ['admin'] });
    for (const scope of ['bogus:unknown', 'nodes:read bogus:unknown', 'openid']) {
      const r = await tokenRequest(rig.hub, { grant_type: 'client_credentials', scope }, { authorization: basic('admin-svc', clientSecret) });
      assert.equal(r.status, 400, `${scope}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'invalid_scope', scope);
    }
    // Known permissions still narrow as before, and namespace wildcards of known namespaces are known.
    const ok = await tokenRequest(rig.hub, { grant_type: 'client_credentials', scope: 'nodes:* mcp:tool:search' }, { authorization: basic('admin-svc', clientSecret) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(decodeJwt(ok.body.access_token).scope, 'nodes:* mcp:tool:search');
  });

  it('token exchange and refresh of an administrator\'s grant (scope *): an unknown scope is invalid_scope', async () => {
    const r = await codeFlow({ scope: '* offline_access', resource: rig.hub.url }, clientId, adminSession);
    assert.ok(r.token!.scope.split(' ').includes('*'), r.token!.scope);
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'exchanger-17', roles: ['admin'], allowTokenExchange: true });
    const exchanged = await tokenRequest(rig.hub, {
      grant_type: EXCHANGE, subject_token: r.token!.access_token, subject_token_type: ACCESS_TOKEN, scope: 'bogus:unknown',
    }, { authorization: basic('exchanger-17', clientSecret) });
    assert.equal(exchanged.body.error, 'invalid_scope', JSON.stringify(exchanged.body));
    const refreshed = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: r.token!.refresh_token, client_id: clientId, scope: 'bogus:unknown' });
    assert.equal(refreshed.body.error, 'invalid_scope', JSON.stringify(refreshed.body));
    // A narrower known scope at refresh still works (RFC 6749 §6).
    const narrower = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: r.token!.refresh_token, client_id: clientId, scope: 'nodes:read' });
    assert.equal(narrower.status, 200, JSON.stringify(narrower.body));
    assert.equal(narrower.body.scope, 'nodes:read');
  });
});
