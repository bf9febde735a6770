/**
 * Attacker's review (after issue 19): RFC 6749 §6 — a confidential client must authenticate to
 * refresh. The refresh grant demands it only of service accounts: a refresh token issued to a
 * confidential client registered by DCR (client_secret_basic) is redeemed by whoever holds it,
 * with no client authentication at all, so a leaked refresh token is enough without the secret.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../../helpers/hub.ts';
import { pkce } from '../../helpers/authorize-flow.ts';
import { basic, postForm, postJson } from '../../helpers/http.ts';

describe('a confidential OAuth client\'s refresh token needs the client\'s authentication', () => {
  let t: TestHub;
  let clientId: string;
  let secret: string;
  let cookieHeader: string;
  const redirectUri = 'https://app.example.com/cb';

  before(async () => {
    t = await startHub({ storage: 'memory', env: { MIMIR_SESSION_COOKIE_SECURE: 'false' } });
    const reg = await postJson(`${t.url}/auth/register`, { client_name: 'Web app', redirect_uris: [redirectUri], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    clientId = reg.body.client_id as string;
    secret = reg.body.client_secret as string;
    // A signed-in user (the IdP hop is not what is attacked here).
    const { cookie } = await t.hub.sessions.create({ sub: 'jane', roles: ['developer'], groups: [], provider: 'corp' });
    cookieHeader = `${t.config.session.cookie.name}=${cookie}`;
  });
  after(async () => { await t.close(); });

  /** The user authorizes the client; the client redeems the code with its secret: its refresh token. */
  async function confidentialRefreshToken(): Promise<string> {
    const { verifier, challenge } = pkce();
    const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', resource: t.url });
    const page = await fetch(`${t.url}/auth/authorize?${q}`, { redirect: 'manual', headers: { cookie: cookieHeader } });
    let location = page.headers.get('location');
    if (!location) {
      const pending = /name="request" value="([^"]+)"/.exec(await page.text())![1]!;
      const decided = await fetch(`${t.url}/auth/authorize/decision`, {
        method: 'POST', redirect: 'manual', headers: { cookie: cookieHeader, origin: t.url, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ request: pending, decision: 'allow' }).toString(),
      });
      location = decided.headers.get('location');
    }
    const code = new URL(location!).searchParams.get('code')!;
    const issued = await postForm(`${t.url}/auth/token`, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }, basic(clientId, secret));
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.ok(issued.body.refresh_token, 'the confidential client holds a refresh token');
    return issued.body.refresh_token as string;
  }

  it('the control: with the client\'s secret the refresh works', async () => {
    const res = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: await confidentialRefreshToken() }, basic(clientId, secret));
    assert.equal(res.status, 200);
  });

  it('a stolen refresh token with no client authentication is refused at /auth/token', async () => {
    const res = await postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: await confidentialRefreshToken() });
    assert.ok(!('access_token' in res.body), 'a token was issued without the client secret');
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
  });

  it('a stolen refresh token with no client authentication is refused at /auth/refresh', async () => {
    const res = await postJson(`${t.url}/auth/refresh`, { refresh_token: await confidentialRefreshToken() });
    assert.ok(!('access_token' in res.body), 'a token was issued without the client secret');
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
  });
});
