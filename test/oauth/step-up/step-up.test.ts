/**
 * Issue 17 item 14: step-up authentication (RFC 9470). Route rules with `maxAge` / `acr` are decided
 * by the one authorization rule (src/authz); a token whose `auth_time` is too old or whose `acr`
 * differs gets 401 `insufficient_user_authentication` with `max_age` / `acr_values`; the hub's
 * /auth/authorize honours `max_age` and `acr_values` by sending the user back to the IdP (a real
 * oidc-provider: `prompt=login`, `max_age`, `acr_values` upstream) and its tokens carry `auth_time`
 * and `acr`. openid-client 6 is the client; the upstream is a real Mimir-shaped server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { approve, callback, cookieFrom, sessionCookie, signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { register } from '../../helpers/authorize-flow.ts';
import { RBAC_FIXTURE } from '../../proxy/setup.ts';
import { startUpstream, type Upstream } from '../../proxy/upstream.ts';

const REDIRECT = 'http://127.0.0.1:7793/callback';
const GOLD = 'urn:mimir:acr:gold';
const STEP_UP_ROUTES = [
  { method: 'GET', path: '/api/nodes/recent', permission: 'nodes:read', maxAge: 300 },
  { method: 'GET', path: '/api/nodes/gold', permission: 'nodes:read', acr: GOLD },
  { method: 'GET', path: '/api/nodes/**', permission: 'nodes:read' },
  { method: '*', path: '/**', permission: 'upstream:access' },
];

function rbacFile(routes: unknown[]): string {
  const rbac = JSON.parse(readFileSync(RBAC_FIXTURE, 'utf8')) as Record<string, unknown>;
  const file = join(mkdtempSync(join(tmpdir(), 'mimir-step-up-')), 'rbac.json');
  writeFileSync(file, JSON.stringify({ ...rbac, routes }));
  return file;
}


/**
 * A step-up as a browser goes through it: the hub's redirect to /auth/login, that one's to the IdP
 * (returned for inspection), the IdP's login form, the callback; returns the new session and where
 * the continue page leads.
 */
async function stepUp(rig: Rig, loginPath: string): Promise<{ idpUrl: URL; session: string | undefined; returnTo: string | undefined; callbackStatus: number; body: string }> {
  const login = await fetch(new URL(loginPath, rig.hub.url), { redirect: 'manual' });
  assert.equal(login.status, 302, await login.text());
  const idpUrl = new URL(login.headers.get('location')!);
  const binding = cookieFrom(login, rig.hub.config.session.cookie.loginName)!;
  const back = await rig.idps.corp!.loginByHttp(idpUrl.href, 'jane');
  const res = await callback(rig.hub, back, binding);
  const body = await res.text();
  const returnTo = /http-equiv="refresh" content="0;url=([^"]+)"/.exec(body)?.[1]?.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
  return { idpUrl, session: cookieFrom(res, rig.hub.config.session.cookie.name), returnTo, callbackStatus: res.status, body };
}

describe('step-up authentication (RFC 9470)', () => {
  let rig: Rig;
  let upstream: Upstream;
  let config: client.Configuration;
  let staleSession: string;
  const hour = 3600;

  /** Code flow through openid-client with this session; returns the token response. */
  async function tokensFor(session: string, extra: Record<string, string> = {}) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid nodes:read', state, nonce: 'n-1', resource: rig.hub.url,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
    });
    const back = await approve(rig, session, url);
    assert.ok(back.href.startsWith(REDIRECT), `expected the client's redirect, got ${back.href}`);
    return client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: 'n-1' });
  }

  const proxied = (path: string, token: string) => fetch(`${rig.hub.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    upstream = await startUpstream();
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_UPSTREAM_URL: upstream.url, MIMIR_RBAC_CONFIG: rbacFile(STEP_UP_ROUTES) } });
    // jane signed in an hour ago, with a password only (as far as the IdP says).
    rig.idps.corp!.tamperIdToken((c) => ({ ...c, auth_time: Math.floor(Date.now() / 1000) - hour, acr: 'urn:mimir:acr:silver' }));
    staleSession = (await signIn(rig, 'corp')).session!;
    rig.idps.corp!.tamperIdToken(undefined);
    const reg = await register(rig.hub, { client_name: 'Step-up RP', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    config = await client.discovery(new URL(rig.hub.config.jwt.issuer), reg.body.client_id, { redirect_uris: [REDIRECT] }, client.None(), { execute: [client.allowInsecureRequests] });
  });
  after(async () => {
    await rig?.close();
    await upstream?.close();
  });

  it('access and ID tokens carry the sign-in\'s auth_time and acr; an old one gets 401 insufficient_user_authentication with max_age', async () => {
    const tokens = await tokensFor(staleSession);
    const access = decodeJwt(tokens.access_token);
    assert.ok(typeof access.auth_time === 'number' && Math.abs(access.auth_time - (Date.now() / 1000 - hour)) < 30, `auth_time ${access.auth_time}`);
    assert.equal(access.acr, 'urn:mimir:acr:silver');
    assert.equal(tokens.claims()!.auth_time, access.auth_time);

    // No step-up on the route: the upstream answers.
    const plain = await proxied('/api/nodes/42', tokens.access_token);
    assert.notEqual(plain.status, 401);
    assert.equal(upstream.find('/api/nodes/42').length, 1);

    const recent = await proxied('/api/nodes/recent', tokens.access_token);
    assert.equal(recent.status, 401);
    const challenge = recent.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer /);
    assert.match(challenge, /error="insufficient_user_authentication"/);
    assert.match(challenge, /max_age="300"/);
    assert.equal(((await recent.json()) as { error: string }).error, 'insufficient_user_authentication');
    assert.equal(upstream.find('/api/nodes/recent').length, 0, 'nothing reached the upstream');

    const gold = await proxied('/api/nodes/gold', tokens.access_token);
    assert.equal(gold.status, 401);
    assert.match(gold.headers.get('www-authenticate') ?? '', /error="insufficient_user_authentication".*acr_values="urn:mimir:acr:gold"/);
  });

  it('introspection tells a resource server auth_time and acr (RFC 9470 §6.2)', async () => {
    const tokens = await tokensFor(staleSession);
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'rs-step-up', roles: ['introspector'] });
    const res = await fetch(`${rig.hub.url}/auth/introspect`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`rs-step-up:${clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: tokens.access_token }).toString(),
    });
    const body = await res.json() as Record<string, unknown>;
    assert.equal(body.active, true, JSON.stringify(body));
    assert.equal(body.auth_time, decodeJwt(tokens.access_token).auth_time);
    assert.equal(body.acr, 'urn:mimir:acr:silver');
  });

  it('a refreshed access token keeps the sign-in\'s auth_time: a refresh is no new authentication', async () => {
    const tokens = await tokensFor(staleSession);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal(decodeJwt(refreshed.access_token).auth_time, decodeJwt(tokens.access_token).auth_time);
    assert.equal((await proxied('/api/nodes/recent', refreshed.access_token)).status, 401);
  });

  it('credentials that do not say when their user authenticated never pass a step-up: a service account token', async () => {
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'svc-step-up', roles: ['developer'] });
    const res = await fetch(`${rig.hub.url}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc-step-up:${clientSecret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    const token = ((await res.json()) as { access_token: string }).access_token;
    assert.notEqual((await proxied('/api/nodes/7', token)).status, 401);
    const refused = await proxied('/api/nodes/recent', token);
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', /insufficient_user_authentication/);
  });

  it('/auth/authorize with max_age sends a stale session back to the IdP (prompt=login, max_age); the new tokens pass the route', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'nodes:read', state: 's-1', max_age: '300', resource: rig.hub.url,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const first = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, staleSession) } });
    assert.equal(first.status, 302);
    const toLogin = new URL(first.headers.get('location')!, rig.hub.url);
    assert.equal(toLogin.pathname, '/auth/login');
    assert.equal(toLogin.searchParams.get('provider'), 'corp');
    assert.equal(toLogin.searchParams.get('max_age'), '300');

    const before = Math.floor(Date.now() / 1000);
    const done = await stepUp(rig, `${toLogin.pathname}${toLogin.search}`);
    // Upstream, the IdP is asked for a new authentication (OIDC Core §3.1.2.1).
    assert.equal(done.idpUrl.searchParams.get('prompt'), 'login');
    assert.equal(done.idpUrl.searchParams.get('max_age'), '300');
    assert.equal(done.callbackStatus, 200, done.body.slice(0, 300));
    assert.ok(done.session && done.returnTo);
    const back = await approve(rig, done.session, new URL(done.returnTo, rig.hub.url));
    assert.ok(back.href.startsWith(REDIRECT), back.href);
    const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: 's-1' });
    const authTime = decodeJwt(tokens.access_token).auth_time as number;
    assert.ok(authTime >= before - 5, `auth_time ${authTime} is the new sign-in's`);
    const ok = await proxied('/api/nodes/recent', tokens.access_token);
    assert.notEqual(ok.status, 401);
    assert.equal(upstream.find('/api/nodes/recent').length, 1);
  });

  it('/auth/authorize with acr_values passes them to the IdP; the acr it answers goes into the tokens and passes the route', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'nodes:read', state: 's-2', acr_values: GOLD, resource: rig.hub.url,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const first = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, staleSession) } });
    const toLogin = new URL(first.headers.get('location')!, rig.hub.url);
    assert.equal(toLogin.searchParams.get('acr_values'), GOLD);
    rig.idps.corp!.tamperIdToken((c) => ({ ...c, acr: GOLD }));
    const done = await stepUp(rig, `${toLogin.pathname}${toLogin.search}`).finally(() => rig.idps.corp!.tamperIdToken(undefined));
    assert.equal(done.idpUrl.searchParams.get('prompt'), 'login');
    assert.equal(done.idpUrl.searchParams.get('acr_values'), GOLD);
    const back = await approve(rig, done.session!, new URL(done.returnTo!, rig.hub.url));
    const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: 's-2' });
    assert.equal(decodeJwt(tokens.access_token).acr, GOLD);
    assert.notEqual((await proxied('/api/nodes/gold', tokens.access_token)).status, 401);
  });

  it('an IdP that does not authenticate at the level asked for ends the sign-in with access_denied, never a loop', async () => {
    const done = await stepUp(rig, `/auth/login?provider=corp&acr_values=${encodeURIComponent(GOLD)}&returnTo=%2F`);
    assert.equal(done.callbackStatus, 403, done.body.slice(0, 300));
    assert.equal(done.session, undefined, 'no session for a sign-in that did not meet the step-up');
  });

  it('a browser whose session is too old for a page is sent to sign in again, with the step-up asked of the IdP', async () => {
    const res = await fetch(`${rig.hub.url}/api/nodes/recent`, { redirect: 'manual', headers: { accept: 'text/html', cookie: sessionCookie(rig.hub, staleSession) } });
    assert.equal(res.status, 302);
    const to = new URL(res.headers.get('location')!, rig.hub.url);
    assert.equal(to.pathname, '/auth/login');
    assert.equal(to.searchParams.get('returnTo'), '/api/nodes/recent');
    assert.equal(to.searchParams.get('prompt'), 'login');
    assert.equal(to.searchParams.get('max_age'), '300');
    // The same request as an API client: the RFC 9470 challenge.
    const api = await fetch(`${rig.hub.url}/api/nodes/recent`, { headers: { cookie: sessionCookie(rig.hub, staleSession) } });
    assert.equal(api.status, 401);
    assert.match(api.headers.get('www-authenticate') ?? '', /insufficient_user_authentication/);
  });

  it('metadata lists the acr values the route table asks for', async () => {
    assert.deepEqual(config.serverMetadata().acr_values_supported, [GOLD]);
  });

  it('malformed max_age or acr_values go back to the client as invalid_request', async () => {
    for (const extra of [{ max_age: '-1' }, { max_age: 'soon' }, { acr_values: 'a\u0001b' }] as Record<string, string>[]) {
      const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'nodes:read', state: 's', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', ...extra });
      const res = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, staleSession) } });
      assert.equal(res.status, 302, JSON.stringify(extra));
      assert.equal(new URL(res.headers.get('location')!).searchParams.get('error'), 'invalid_request', JSON.stringify(extra));
    }
  });
});
