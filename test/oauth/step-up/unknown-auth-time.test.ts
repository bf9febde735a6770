/**
 * Issue 17 review F2: a sign-in is not an authentication. A plain /auth/login sends no
 * prompt=login, so the IdP may answer from its own session of days ago, and many IdPs say nothing
 * of `auth_time` unless `max_age` was asked. The hub recorded "now" for such sign-ins, so any of
 * them met every `maxAge` route. Now `auth_time` is only what the IdP asserted: unknown stays
 * unknown (no claim in the session, the access and ID tokens, introspection or a refresh), and a
 * `maxAge` rule is unmet until a step-up, where the hub sends `max_age` and uses the IdP's answer.
 * A real oidc-provider that leaves `auth_time` out of its ID tokens; openid-client as the client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { callback, cookieFrom, sessionCookie, signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { register } from '../../helpers/authorize-flow.ts';
import { RBAC_FIXTURE } from '../../proxy/setup.ts';
import { startUpstream, type Upstream } from '../../proxy/upstream.ts';

const REDIRECT = 'http://127.0.0.1:7796/callback';
const ROUTES = [
  { method: 'GET', path: '/api/nodes/recent', permission: 'nodes:read', maxAge: 300 },
  { method: 'GET', path: '/api/nodes/**', permission: 'nodes:read' },
  { method: '*', path: '/**', permission: 'upstream:access' },
];

/** An ID token as many IdPs send it when max_age was not asked: no auth_time. */
const withoutAuthTime = (c: Record<string, unknown>) => {
  const { auth_time: _dropped, ...rest } = c;
  return rest;
};

describe('a sign-in whose IdP did not say when the user authenticated meets no max_age (issue 17 review F2)', () => {
  let rig: Rig;
  let upstream: Upstream;
  let config: client.Configuration;
  let session: string;

  before(async () => {
    upstream = await startUpstream();
    const rbac = JSON.parse(readFileSync(RBAC_FIXTURE, 'utf8')) as Record<string, unknown>;
    const file = join(mkdtempSync(join(tmpdir(), 'mimir-auth-time-')), 'rbac.json');
    writeFileSync(file, JSON.stringify({ ...rbac, routes: ROUTES }));
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_UPSTREAM_URL: upstream.url, MIMIR_RBAC_CONFIG: file } });
    rig.idps.corp!.tamperIdToken(withoutAuthTime);
    const signedIn = await signIn(rig, 'corp');
    assert.equal(signedIn.res.status, 200);
    session = signedIn.session!;
    const reg = await register(rig.hub, { client_name: 'auth_time RP', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    config = await client.discovery(new URL(rig.hub.config.jwt.issuer), reg.body.client_id, { redirect_uris: [REDIRECT] }, client.None(), { execute: [client.allowInsecureRequests] });
  });
  after(async () => {
    await rig?.close();
    await upstream?.close();
  });

  const cookie = () => ({ cookie: sessionCookie(rig.hub, session) });

  it('the session says no auth_time, and its request to a maxAge route is refused before the upstream', async () => {
    const me = await fetch(`${rig.hub.url}/auth/me`, { headers: cookie() });
    assert.equal(me.status, 200);
    const body = await me.json() as Record<string, unknown>;
    assert.equal(body.sub !== undefined, true);
    assert.equal('auth_time' in body, false, `auth_time ${String(body.auth_time)} was invented`);

    const plain = await fetch(`${rig.hub.url}/api/nodes/7`, { headers: cookie() });
    assert.notEqual(plain.status, 401, 'no step-up on this route');
    const recent = await fetch(`${rig.hub.url}/api/nodes/recent`, { headers: cookie() });
    assert.equal(recent.status, 401);
    assert.match(recent.headers.get('www-authenticate') ?? '', /error="insufficient_user_authentication".*max_age="300"/);
    assert.equal(upstream.find('/api/nodes/recent').length, 0, 'nothing reached the upstream');
  });

  it('the code flow\'s access and ID tokens, introspection and a refresh carry no auth_time; the token meets no max_age', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid nodes:read', state, nonce: 'n-2', resource: rig.hub.url,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    let res = await fetch(url, { redirect: 'manual', headers: cookie() });
    if (res.status === 200) {
      const id = /name="request" value="([^"]+)"/.exec(await res.text())![1]!;
      res = await fetch(`${rig.hub.url}/auth/authorize/decision`, {
        method: 'POST', redirect: 'manual', headers: { ...cookie(), 'content-type': 'application/x-www-form-urlencoded', origin: rig.hub.url },
        body: new URLSearchParams({ request: id, decision: 'allow' }).toString(),
      });
    }
    const back = new URL(res.headers.get('location')!, rig.hub.url);
    assert.ok(back.href.startsWith(REDIRECT), back.href);
    const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: 'n-2' });
    assert.equal('auth_time' in decodeJwt(tokens.access_token), false, 'access token');
    assert.equal('auth_time' in tokens.claims()!, false, 'ID token');

    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'rs-auth-time', roles: ['introspector'] });
    const introspected = await (await fetch(`${rig.hub.url}/auth/introspect`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`rs-auth-time:${clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: tokens.access_token }).toString(),
    })).json() as Record<string, unknown>;
    assert.equal(introspected.active, true);
    assert.equal('auth_time' in introspected, false, 'introspection');

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal('auth_time' in decodeJwt(refreshed.access_token), false, 'refreshed access token');
    const recent = await fetch(`${rig.hub.url}/api/nodes/recent`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(recent.status, 401);
    assert.equal(upstream.find('/api/nodes/recent').length, 0);
  });

  it('the CLI\'s JSON sign-in gets an access token without auth_time', async () => {
    const json = await signIn(rig, 'corp', { accept: 'application/json' });
    const body = await json.res.json() as { access_token: string };
    assert.equal('auth_time' in decodeJwt(body.access_token), false);
  });

  it('the step-up asks the IdP for max_age; the auth_time it then asserts is the one kept, and the route passes', async () => {
    rig.idps.corp!.tamperIdToken(undefined); // asked for max_age, the IdP states auth_time (OIDC Core §3.1.2.1)
    try {
      const login = await fetch(`${rig.hub.url}/auth/login?provider=corp&max_age=300&prompt=login&returnTo=%2F`, { redirect: 'manual' });
      const idpUrl = new URL(login.headers.get('location')!);
      assert.equal(idpUrl.searchParams.get('max_age'), '300');
      const binding = cookieFrom(login, rig.hub.config.session.cookie.loginName)!;
      const before = Math.floor(Date.now() / 1000);
      const res = await callback(rig.hub, await rig.idps.corp!.loginByHttp(idpUrl.href, 'jane'), binding);
      assert.equal(res.status, 200);
      const stepped = cookieFrom(res, rig.hub.config.session.cookie.name)!;
      const me = await (await fetch(`${rig.hub.url}/auth/me`, { headers: { cookie: sessionCookie(rig.hub, stepped) } })).json() as { auth_time?: number };
      assert.ok(typeof me.auth_time === 'number' && me.auth_time >= before - 5 && me.auth_time <= before + 30, `auth_time ${me.auth_time}`);
      const recent = await fetch(`${rig.hub.url}/api/nodes/recent`, { headers: { cookie: sessionCookie(rig.hub, stepped) } });
      assert.notEqual(recent.status, 401);
      assert.equal(upstream.find('/api/nodes/recent').length, 1);
    } finally {
      rig.idps.corp!.tamperIdToken(withoutAuthTime);
    }
  });

  it('an IdP that leaves auth_time out even when asked for max_age ends the step-up with access_denied, never a loop', async () => {
    const login = await fetch(`${rig.hub.url}/auth/login?provider=corp&max_age=300&prompt=login&returnTo=%2F`, { redirect: 'manual' });
    const binding = cookieFrom(login, rig.hub.config.session.cookie.loginName)!;
    const res = await callback(rig.hub, await rig.idps.corp!.loginByHttp(login.headers.get('location')!, 'jane'), binding);
    assert.equal(res.status, 403);
    assert.equal(cookieFrom(res, rig.hub.config.session.cookie.name), undefined);
  });
});
