/**
 * Attacker's review (after issue 19): a requested `scope` made only of spaces is not "omitted"
 * (RFC 6749 §3.1 drops only empty parameters) yet narrows to nothing, and a hub token whose
 * `scope` is empty is not narrowed at all (src/authz `scopeLimit`). So a credential narrowed
 * when it was created, or a grant narrowed by the user's consent, asks `scope=+` and holds every
 * permission of its roles.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../../helpers/hub.ts';
import { signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { authorize, pkce, register, tokenRequest } from '../../helpers/authorize-flow.ts';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function me(url: string, token: string): Promise<{ status: number; permissions: string[] }> {
  const res = await fetch(`${url}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.json() as { permissions?: string[] };
  return { status: res.status, permissions: body.permissions ?? [] };
}

describe('client_credentials: a service account never gets more than the scopes it was created with', () => {
  let t: TestHub;
  let secret: string;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    // An operator gives a reporting service the admin role but narrows it to reading nodes.
    secret = (await t.hub.serviceAccounts.create({ clientId: 'reports', roles: ['admin'], scopes: ['nodes:read'] })).clientSecret;
  });
  after(async () => { await t.close(); });

  for (const [label, scope] of [['one space', ' '], ['several spaces', '   ']] as const) {
    it(`scope made of ${label} does not widen the token past nodes:read`, async () => {
      const res = await fetch(`${t.url}/auth/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('reports', secret) },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope }).toString(),
      });
      const body = await res.json() as { access_token?: string; error?: string };
      if (res.status !== 200) {
        assert.equal(body.error, 'invalid_scope');
        return;
      }
      const who = await me(t.url, body.access_token!);
      assert.equal(who.status, 200);
      assert.deepEqual(who.permissions, ['nodes:read']);
      const admin = await fetch(`${t.url}/auth/admin/api-keys`, {
        method: 'POST', headers: { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'backdoor', roles: ['admin'] }),
      });
      assert.equal(admin.status, 403, 'an admin key was minted by a service account narrowed to nodes:read');
    });
  }
});

describe('refresh and token exchange: a scope of spaces never widens a user\'s grant', () => {
  let rig: Rig;
  let session: string;
  before(async () => {
    rig = await startRig({ corp: 'generic' });
    // jane is a developer at the IdP (nodes:write, nodes:delete, mcp:*, …).
    session = (await signIn(rig, 'corp')).session!;
  });
  after(async () => { await rig.close(); });

  it('scope=" " at refresh keeps the consented nodes:read', async () => {
    const reg = await register(rig.hub, { client_name: 'Reader', redirect_uris: ['http://127.0.0.1:7777/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201);
    const clientId = reg.body.client_id as string;
    const { verifier, challenge } = pkce();
    const redirectUri = 'http://127.0.0.1:7777/callback';
    const result = await authorize(rig.hub, session, {
      response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256',
      resource: rig.hub.url, scope: 'nodes:read',
    });
    const code = new URL(result.location!).searchParams.get('code')!;
    const first = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.scope, 'nodes:read', 'the user consented to nodes:read only');

    const refreshed = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: clientId, scope: ' ' });
    if (refreshed.status !== 200) {
      assert.equal(refreshed.body.error, 'invalid_scope');
      return;
    }
    const who = await me(rig.hub.url, refreshed.body.access_token);
    assert.equal(who.status, 200);
    assert.deepEqual(who.permissions, ['nodes:read'], 'the refreshed token holds permissions the user never consented to');
  });
  it('token exchange with scope=" " gives no more than both the user and the service hold', async () => {
    // The service may exchange tokens but is narrowed to nodes:read; the user (jane) is a developer.
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'exchanger', roles: ['developer'], scopes: ['nodes:read'], allowTokenExchange: true });
    const reg = await register(rig.hub, { client_name: 'Full', redirect_uris: ['http://127.0.0.1:7778/callback'], token_endpoint_auth_method: 'none' });
    const { verifier, challenge } = pkce();
    const redirectUri = 'http://127.0.0.1:7778/callback';
    const result = await authorize(rig.hub, session, {
      response_type: 'code', client_id: reg.body.client_id, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', resource: rig.hub.url,
    });
    const code = new URL(result.location!).searchParams.get('code')!;
    const user = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: reg.body.client_id });
    assert.equal(user.status, 200, JSON.stringify(user.body));
    const exchanged = await tokenRequest(rig.hub, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: user.body.access_token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: ' ',
    }, { authorization: basic('exchanger', clientSecret) });
    if (exchanged.status !== 200) {
      assert.equal(exchanged.body.error, 'invalid_scope');
      return;
    }
    const who = await me(rig.hub.url, exchanged.body.access_token);
    assert.equal(who.status, 200);
    assert.deepEqual(who.permissions, ['nodes:read'], 'the delegated token holds more than the service may do');
  });
});
