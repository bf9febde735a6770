import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { callback, me, sessionCookie, signIn, startLogin, startRig, type Rig } from './setup.ts';

describe('sign-in through two real OpenID providers at once (keycloak + auth0 shaped)', () => {
  let rig: Rig;
  let clock = 0;
  before(async () => {
    rig = await startRig({ kc: 'keycloak', a0: 'auth0' }, { now: () => Date.now() + clock, storage: 'memory' });
  });
  after(async () => { await rig?.close(); });

  it('the login page lists one button per provider', async () => {
    const res = await fetch(`${rig.hub.url}/auth/login`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /data-provider="kc"/);
    assert.match(html, /data-provider="a0"/);
  });

  it('login redirects to the IdP with PKCE S256, state and nonce', async () => {
    const { authorizationUrl } = await startLogin(rig.hub, 'kc');
    const u = new URL(authorizationUrl);
    assert.ok(u.href.startsWith(rig.idps.kc!.issuer));
    assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(u.searchParams.get('code_challenge'));
    assert.ok(u.searchParams.get('state'));
    assert.ok(u.searchParams.get('nonce'));
  });

  it('a keycloak sign-in creates a session whose /auth/me shows the user with auth_method session', async () => {
    const { res, session } = await signIn(rig, 'kc', { returnTo: '/api/nodes' });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /url=\/api\/nodes"/);
    assert.ok(session);
    const { status, body } = await me(rig.hub, { cookie: sessionCookie(rig.hub, session) });
    assert.equal(status, 200);
    assert.equal(body.sub, 'jane');
    assert.equal(body.auth_method, 'session');
    assert.equal(body.provider, 'kc');
    // realm_access.roles + resource_access.<client>.roles
    assert.ok((body.roles as string[]).includes('developer'));
    assert.ok((body.roles as string[]).includes('analyst'));
  });

  it('an auth0 sign-in with Accept: application/json returns a Mimir access token and refresh token', async () => {
    const { res } = await signIn(rig, 'a0', { accept: 'application/json' });
    assert.equal(res.status, 200);
    const body = await res.json() as Record<string, unknown>;
    assert.equal(body.token_type, 'Bearer');
    assert.equal(typeof body.refresh_token, 'string');
    assert.equal(typeof body.expires_in, 'number');
    const claims = decodeJwt(String(body.access_token));
    assert.equal(claims.iss, rig.hub.config.jwt.issuer);
    assert.equal(claims.provider, 'a0');
    assert.deepEqual(claims.roles, ['developer']); // from the namespaced https://…/roles claim
    const viaJwt = await me(rig.hub, { authorization: `Bearer ${String(body.access_token)}` });
    assert.equal(viaJwt.status, 200);
    assert.equal(viaJwt.body.sub, 'jane');
  });

  it('sign-out ends the session: /auth/me answers 401 afterwards', async () => {
    const { session } = await signIn(rig, 'kc');
    const out = await fetch(`${rig.hub.url}/auth/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session), origin: rig.hub.url } });
    assert.equal(out.status, 303);
    assert.ok(out.headers.get('location')!.startsWith(rig.idps.kc!.issuer)); // RP-initiated logout at the IdP
    assert.equal((await me(rig.hub, { cookie: sessionCookie(rig.hub, session) })).status, 401);
  });

  it('a cross-site POST with only the session cookie is refused (403)', async () => {
    const { session } = await signIn(rig, 'kc');
    const res = await fetch(`${rig.hub.url}/auth/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session), origin: 'https://evil.example' } });
    assert.equal(res.status, 403);
    assert.equal((await me(rig.hub, { cookie: sessionCookie(rig.hub, session) })).status, 200);
  });

  it('state missing is refused with 400 invalid_request', async () => {
    const { authorizationUrl, binding } = await startLogin(rig.hub, 'kc');
    const back = await rig.idps.kc!.loginByHttp(authorizationUrl);
    back.searchParams.delete('state');
    const res = await callback(rig.hub, back, binding, 'application/json');
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_request');
  });

  it('a wrong state is refused and sets no session', async () => {
    const { authorizationUrl, binding } = await startLogin(rig.hub, 'kc');
    const back = await rig.idps.kc!.loginByHttp(authorizationUrl);
    back.searchParams.set('state', 'not-the-state');
    const res = await callback(rig.hub, back, binding);
    assert.equal(res.status, 400);
    assert.match(res.headers.get('content-type')!, /text\/html/);
    assert.equal(res.headers.getSetCookie().some((c) => c.startsWith(`${rig.hub.config.session.cookie.name}=`) && !c.startsWith(`${rig.hub.config.session.cookie.name}=;`)), false);
  });

  it('a replayed state (and its code) is refused', async () => {
    const { res, back, started } = await signIn(rig, 'kc');
    assert.equal(res.status, 200);
    const again = await callback(rig.hub, back, started.binding, 'application/json');
    assert.equal(again.status, 400);
    assert.equal((await again.json() as { reason: string }).reason, 'state_used');
  });

  it('an expired state is refused', async () => {
    const { authorizationUrl, binding } = await startLogin(rig.hub, 'kc');
    const back = await rig.idps.kc!.loginByHttp(authorizationUrl);
    clock = (rig.hub.config.security.stateTimeout + 5) * 1000;
    try {
      const res = await callback(rig.hub, back, binding, 'application/json');
      assert.equal(res.status, 400);
      assert.equal((await res.json() as { reason: string }).reason, 'state_expired');
    } finally {
      clock = 0;
    }
  });

  it('a callback from another browser (no binding cookie) is refused', async () => {
    const { authorizationUrl } = await startLogin(rig.hub, 'kc');
    const back = await rig.idps.kc!.loginByHttp(authorizationUrl);
    const res = await callback(rig.hub, back, undefined, 'application/json');
    assert.equal(res.status, 400);
  });

  it('a replayed authorization code under a fresh state is refused by the code exchange', async () => {
    const first = await signIn(rig, 'kc');
    assert.equal(first.res.status, 200);
    const fresh = await startLogin(rig.hub, 'kc');
    const state = new URL(fresh.authorizationUrl).searchParams.get('state')!;
    const replay = new URL(first.back.href);
    replay.searchParams.set('state', state);
    const res = await callback(rig.hub, replay, fresh.binding, 'application/json');
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_grant');
  });

  it('a nonce mismatch is refused', async () => {
    const { authorizationUrl, binding } = await startLogin(rig.hub, 'kc');
    const tampered = new URL(authorizationUrl);
    tampered.searchParams.set('nonce', 'a-different-nonce');
    const back = await rig.idps.kc!.loginByHttp(tampered.href);
    const res = await callback(rig.hub, back, binding, 'application/json');
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_grant');
  });

  it('an ID token for another audience is refused', async () => {
    rig.idps.kc!.tamperIdToken((c) => ({ ...c, aud: 'some-other-client' }));
    try {
      const { res, session } = await signIn(rig, 'kc', { accept: 'application/json' });
      assert.equal(res.status, 400);
      assert.equal((await res.json() as { error: string }).error, 'invalid_grant');
      assert.equal(session, undefined);
    } finally {
      rig.idps.kc!.tamperIdToken(undefined);
    }
  });

  it('an ID token from another issuer is refused', async () => {
    rig.idps.kc!.tamperIdToken((c) => ({ ...c, iss: rig.idps.a0!.issuer }));
    try {
      const { res } = await signIn(rig, 'kc', { accept: 'application/json' });
      assert.equal(res.status, 400);
      assert.equal((await res.json() as { error: string }).error, 'invalid_grant');
    } finally {
      rig.idps.kc!.tamperIdToken(undefined);
    }
  });

  for (const evil of ['//evil.example', 'https://evil.example', '/\\evil.example']) {
    it(`returnTo ${evil} leads to /`, async () => {
      const { res } = await signIn(rig, 'kc', { returnTo: evil });
      assert.equal(res.status, 200);
      const html = await res.text();
      assert.match(html, /content="0;url=\/"/);
      assert.doesNotMatch(html, /evil/);
    });
  }

  it('a new sign-in never reuses the earlier session id (no fixation)', async () => {
    const a = await signIn(rig, 'kc');
    const b = await signIn(rig, 'kc');
    assert.notEqual(a.session, b.session);
  });
});

describe('sign-in failure pages', () => {
  it('an unreachable IdP gives a clear 502 page and stores nothing', async () => {
    const { freePort } = await import('../helpers/hub.ts');
    const dead = await freePort();
    const rig = await startRig({}, {
      storage: 'memory',
      env: { MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_ISSUER: `http://127.0.0.1:${dead}`, MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_CLIENT_SECRET: 'x'.repeat(32) },
    });
    try {
      const res = await fetch(`${rig.hub.url}/auth/login`, { redirect: 'manual' });
      assert.equal(res.status, 502);
      assert.match(res.headers.get('content-type')!, /text\/html/);
      assert.match(await res.text(), /unreachable/i);
      assert.deepEqual(await rig.hub.hub.store.list('oidc_login_state'), []);
      assert.equal(res.headers.getSetCookie().length, 0);
    } finally {
      await rig.close();
    }
  });

  it('one configured provider: /auth/login redirects straight to it (302)', async () => {
    const rig = await startRig({ only: 'okta' });
    try {
      const res = await fetch(`${rig.hub.url}/auth/login`, { redirect: 'manual' });
      assert.equal(res.status, 302);
      assert.ok(res.headers.get('location')!.startsWith(rig.idps.only!.issuer));
    } finally {
      await rig.close();
    }
  });

  it('google hd mismatch is refused with 403', async () => {
    const rig = await startRig({ g: 'google' }, { settings: { g: { hostedDomain: 'mimir.example' } } });
    try {
      const { res, session } = await signIn(rig, 'g');
      assert.equal(res.status, 403);
      assert.match(await res.text(), /mimir\.example/);
      assert.equal(session, undefined);
    } finally {
      await rig.close();
    }
  });

  it('google hd match signs in with the domain as tenant', async () => {
    const rig = await startRig({ g: 'google' }, { settings: { g: { hostedDomain: 'example.com' } } });
    try {
      const { res, session } = await signIn(rig, 'g');
      assert.equal(res.status, 200);
      const { body } = await me(rig.hub, { cookie: sessionCookie(rig.hub, session) });
      assert.equal(body.tenant, 'example.com');
    } finally {
      await rig.close();
    }
  });
});
