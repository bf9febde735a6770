/**
 * Attacker's review (after issue 19): consent is remembered per user and client for scopes and
 * redirect origin, but not for the RFC 8707 resource the consent page showed. A client the user
 * allowed to reach `<hub>/mcp` comes back for the origin root — a token good for every path of
 * the hub (the REST API, /auth/me) — and gets a code without the user being asked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { sessionCookie, signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { authorize, authorizeUrl, pkce, register, tokenRequest } from '../../helpers/authorize-flow.ts';

describe('remembered consent covers only the resource the user saw', () => {
  let rig: Rig;
  let session: string;
  before(async () => {
    rig = await startRig({ corp: 'generic' });
    session = (await signIn(rig, 'corp')).session!;
  });
  after(async () => { await rig.close(); });

  it('consent given for <hub>/mcp does not silently grant a token for the whole hub', async () => {
    const redirectUri = 'http://127.0.0.1:7777/callback';
    const reg = await register(rig.hub, { client_name: 'MCP only', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' });
    assert.equal(reg.status, 201);
    const clientId = reg.body.client_id as string;

    // The user sees the consent page for /mcp and allows it.
    const first = pkce();
    const mcp = await authorize(rig.hub, session, {
      response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: first.challenge, code_challenge_method: 'S256',
      resource: `${rig.hub.url}/mcp`,
    });
    assert.match(mcp.page ?? '', /\/mcp/, 'the consent page named /mcp');
    assert.equal(mcp.status, 303);

    // The same client now asks for the origin root, with nothing else changed.
    const second = pkce();
    const res = await fetch(authorizeUrl(rig.hub, {
      response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: second.challenge, code_challenge_method: 'S256',
      resource: rig.hub.url,
    }), { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session) } });
    if (res.status === 302) {
      const code = new URL(res.headers.get('location')!).searchParams.get('code');
      if (code) {
        const token = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: second.verifier, client_id: clientId });
        assert.notEqual(decodeJwt(token.body.access_token).aud, rig.hub.url, 'a token for the whole hub was issued without consent');
      }
    }
    assert.equal(res.status, 200, 'the user is asked again');
    assert.match(await res.text(), /name="request"/, 'with a consent page');
  });
});
