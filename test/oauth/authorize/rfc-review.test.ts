/**
 * The authorization code grant where RFC 6749 and RFC 8707 say exactly what to answer, found by a
 * standards review (each test failed at 8f29cfc): §4.1.3 redirect_uri at the token endpoint only
 * when the authorization request had one; §4.1.2.1 errors after the client and its redirect URI
 * are known good go back to the client (a repeated parameter, a missing response_type are
 * invalid_request); RFC 8707 §2.2 a refresh naming another resource is invalid_target, and several
 * resources are refused as invalid_target.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { signIn, sessionCookie, startRig, type Rig } from '../../oidc/setup.ts';
import { authorize, authorizeUrl, pkce, register, tokenRequest } from '../../helpers/authorize-flow.ts';

describe('authorization code grant: RFC 6749 §4.1 and RFC 8707 answers', () => {
  let rig: Rig;
  let session: string;

  before(async () => {
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_DEVELOPMENT_MODE: 'true' } });
    session = (await signIn(rig, 'corp')).session!;
  });
  after(async () => { await rig?.close(); });

  async function publicClient(name: string, redirect: string): Promise<string> {
    const reg = await register(rig.hub, { client_name: name, redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    return reg.body.client_id as string;
  }
  const codeOf = (location: string | null) => {
    const code = new URL(location!).searchParams.get('code');
    assert.ok(code, `a code came back: ${location}`);
    return code!;
  };
  const redirected = async (url: string) => {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session) } });
    return { status: res.status, location: res.headers.get('location') };
  };

  it('§4.1.3: redirect_uri left out of the authorization request need not be sent for the token; sent, it must be the one used', async () => {
    const redirect = 'https://one-uri.example/cb';
    const clientId = await publicClient('One redirect URI', redirect);
    for (const sent of [undefined, redirect, 'https://one-uri.example/other']) {
      const { verifier, challenge } = pkce();
      const r = await authorize(rig.hub, session, { response_type: 'code', client_id: clientId, code_challenge: challenge, code_challenge_method: 'S256', scope: 'nodes:read' });
      const token = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: codeOf(r.location), code_verifier: verifier, client_id: clientId, ...(sent ? { redirect_uri: sent } : {}) });
      if (sent === 'https://one-uri.example/other') assert.equal(token.body.error, 'invalid_grant', JSON.stringify(token.body));
      else assert.equal(token.status, 200, `redirect_uri ${sent ?? '(none)'}: ${JSON.stringify(token.body)}`);
    }
  });

  it('OIDC Core §3.1.2.1: an OpenID Connect request without redirect_uri goes back as invalid_request', async () => {
    const redirect = 'https://oidc-one-uri.example/cb';
    const clientId = await publicClient('OIDC one redirect URI', redirect);
    const { challenge } = pkce();
    const r = await redirected(authorizeUrl(rig.hub, { response_type: 'code', client_id: clientId, code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid nodes:read', state: 's1' }));
    assert.ok(r.location?.startsWith(redirect), `${r.status} ${r.location}`);
    assert.equal(new URL(r.location!).searchParams.get('error'), 'invalid_request');
    assert.equal(new URL(r.location!).searchParams.get('state'), 's1');
  });

  it('§4.1.3: redirect_uri in the authorization request is required at the token endpoint', async () => {
    const redirect = 'https://two-step.example/cb';
    const clientId = await publicClient('Sent redirect URI', redirect);
    const { verifier, challenge } = pkce();
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', scope: 'nodes:read' });
    const token = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: codeOf(r.location), code_verifier: verifier, client_id: clientId });
    assert.equal(token.status, 400);
    assert.equal(token.body.error, 'invalid_grant');
  });

  it('§4.1.2.1: a repeated parameter once the client is known good goes back as invalid_request, with state', async () => {
    const redirect = 'https://dup.example/cb';
    const clientId = await publicClient('Dup', redirect);
    const { challenge } = pkce();
    const base = authorizeUrl(rig.hub, { response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', state: 'st' });
    const r = await redirected(`${base}&scope=nodes:read&scope=nodes:write`);
    assert.ok(r.location?.startsWith(redirect), `expected a redirect to the client, got ${r.status} ${r.location ?? '(page)'}`);
    const back = new URL(r.location!).searchParams;
    assert.equal(back.get('error'), 'invalid_request');
    assert.equal(back.get('state'), 'st');
    // Before the redirect URI is known good, a repeated one is still a page, never a redirect.
    const page = await redirected(`${base}&redirect_uri=${encodeURIComponent('https://attacker.example/cb')}`);
    assert.equal(page.status, 400);
    assert.equal(page.location, null);
  });

  it('§4.1.2.1: a missing response_type is invalid_request; several resources are invalid_target (RFC 8707 §2.2)', async () => {
    const redirect = 'https://noresp.example/cb';
    const clientId = await publicClient('NoResp', redirect);
    const { challenge } = pkce();
    const missing = await redirected(authorizeUrl(rig.hub, { client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256' }));
    assert.equal(new URL(missing.location!).searchParams.get('error'), 'invalid_request');
    const two = await redirected(`${authorizeUrl(rig.hub, { response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256' })}&resource=${encodeURIComponent(`${rig.hub.url}/mcp`)}&resource=${encodeURIComponent(rig.hub.url)}`);
    assert.equal(new URL(two.location!).searchParams.get('error'), 'invalid_target');
  });

  it('RFC 8707 §2.2: a refresh naming another resource than the grant\'s is invalid_target and uses nothing up; naming its own works', async () => {
    const redirect = 'https://res.example/cb';
    const clientId = await publicClient('Resource refresh', redirect);
    const { verifier, challenge } = pkce();
    const mcp = `${rig.hub.url}/mcp`;
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', resource: mcp, scope: 'nodes:read' });
    const t = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: codeOf(r.location), redirect_uri: redirect, code_verifier: verifier, client_id: clientId });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    const wider = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: clientId, resource: rig.hub.url });
    assert.equal(wider.status, 400, JSON.stringify(wider.body));
    assert.equal(wider.body.error, 'invalid_target');
    const same = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: clientId, resource: `${mcp}/` });
    assert.equal(same.status, 200, `the refused request used nothing up: ${JSON.stringify(same.body)}`);
    assert.equal(JSON.parse(Buffer.from(same.body.access_token.split('.')[1], 'base64url').toString()).aud, mcp);
  });
});
