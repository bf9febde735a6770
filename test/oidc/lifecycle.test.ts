import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import type { Sessions } from '../../src/sessions/sessions.ts';
import { AUDIENCE, me, sessionCookie, signIn, startRig, type Rig } from './setup.ts';

interface Login { access: string; refresh: string; sid: string; cookie: string }

async function jsonLogin(rig: Rig, provider = 'kc'): Promise<Login> {
  const { res, session } = await signIn(rig, provider, { accept: 'application/json' });
  assert.equal(res.status, 200);
  const body = await res.json() as { access_token: string; refresh_token: string };
  const sid = decodeJwt(body.access_token).sid;
  assert.equal(typeof sid, 'string');
  return { access: body.access_token, refresh: body.refresh_token, sid: sid as string, cookie: session! };
}

async function refresh(rig: Rig, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${rig.hub.url}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: token }) });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

const logout = (rig: Rig, cookie: string) => fetch(`${rig.hub.url}/auth/logout`, {
  method: 'POST', redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, cookie), origin: rig.hub.url, accept: 'application/json' },
});

describe('IdP token renewal on Mimir refresh (issue 4 hook)', () => {
  let rig: Rig;
  let sessions: Sessions;
  let clock = 0;
  before(async () => {
    rig = await startRig({ kc: 'keycloak' }, { storage: 'redis', now: () => Date.now() + clock });
    sessions = rig.hub.hub.sessions;
  });
  after(async () => { await rig?.close(); });

  it('sign-in stores the IdP access token expiry and the tokens sealed with the session', async () => {
    const login = await jsonLogin(rig);
    const tokens = await sessions.idpTokens(login.sid);
    assert.ok(tokens?.refreshToken && tokens.accessToken);
    const now = Math.floor((Date.now() + clock) / 1000);
    assert.ok(tokens.accessTokenExpiresAt! > now + 3000 && tokens.accessTokenExpiresAt! <= now + 3600);
    // Nothing readable in the store: the IdP tokens are sealed.
    const raw = JSON.stringify(await rig.hub.hub.store.list('session'));
    assert.ok(!raw.includes(tokens.refreshToken!) && !raw.includes(tokens.accessToken!));
  });

  it('a refresh before the IdP access token is due does not call the IdP', async () => {
    const login = await jsonLogin(rig);
    const calls = rig.idps.kc!.requests('/token');
    const r = await refresh(rig, login.refresh);
    assert.equal(r.status, 200);
    assert.equal(rig.idps.kc!.requests('/token'), calls);
  });

  it('a refresh when the IdP access token is due renews it at the IdP and stores the new one', async () => {
    const login = await jsonLogin(rig);
    const before = (await sessions.idpTokens(login.sid))!;
    const calls = rig.idps.kc!.requests('/token');
    clock += 3590_000; // within a minute of the IdP token's expiry
    try {
      const r = await refresh(rig, login.refresh);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(rig.idps.kc!.requests('/token'), calls + 1);
      const after = (await sessions.idpTokens(login.sid))!;
      assert.notEqual(after.accessToken, before.accessToken);
      assert.ok(after.accessTokenExpiresAt! > before.accessTokenExpiresAt!);
      assert.equal(decodeJwt(String(r.body.access_token)).sid, login.sid);
    } finally {
      clock = 0;
    }
  });

  it('an IdP invalid_grant ends the session: 401 session_ended, no loop, and the cookie no longer works', async () => {
    const login = await jsonLogin(rig);
    const idpRefresh = (await sessions.idpTokens(login.sid))!.refreshToken!;
    await rig.idps.kc!.revoke(idpRefresh, 'refresh_token'); // the user's IdP session is over
    assert.equal((await me(rig.hub, { cookie: sessionCookie(rig.hub, login.cookie) })).status, 200);
    clock += 3590_000;
    try {
      const r = await refresh(rig, login.refresh);
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_grant');
      assert.equal(r.body.session_ended, true);
      assert.equal((await me(rig.hub, { cookie: sessionCookie(rig.hub, login.cookie) })).status, 401);
      assert.equal((await me(rig.hub, { authorization: `Bearer ${login.access}` })).status, 401);
      // Retrying does not reach the IdP again and does not succeed.
      const calls = rig.idps.kc!.requests('/token');
      const again = await refresh(rig, login.refresh);
      assert.equal(again.body.error, 'invalid_grant');
      assert.notEqual(again.status, 200);
      assert.equal(rig.idps.kc!.requests('/token'), calls);
      assert.equal(await sessions.idpTokens(login.sid), null);
    } finally {
      clock = 0;
    }
  });
});

describe('sign-out revokes every Mimir token of the session', () => {
  let rig: Rig;
  before(async () => { rig = await startRig({ kc: 'keycloak' }, { storage: 'memory' }); });
  after(async () => { await rig?.close(); });

  it('after POST /auth/logout the sign-in access token, refreshed access tokens and other grants of the session all stop working', async () => {
    const login = await jsonLogin(rig);
    const refreshed = await refresh(rig, login.refresh);
    assert.equal(refreshed.status, 200);
    // Another client's grant made through this session (as /auth/authorize does for MCP clients).
    const other = await rig.hub.hub.refreshTokens.issue({ sub: 'jane', clientId: 'mcp-client', scope: '', roles: [], sid: login.sid, provider: 'kc', publicClient: true });
    for (const t of [login.access, String(refreshed.body.access_token)]) assert.equal((await me(rig.hub, { authorization: `Bearer ${t}` })).status, 200);

    const out = await logout(rig, login.cookie);
    assert.equal(out.status, 200);
    assert.equal((await out.json() as { signed_out: boolean }).signed_out, true);

    for (const t of [login.access, String(refreshed.body.access_token)]) {
      const r = await me(rig.hub, { authorization: `Bearer ${t}` });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_token');
    }
    assert.notEqual((await refresh(rig, String(refreshed.body.refresh_token))).status, 200);
    const viaOther = await refresh(rig, other.token);
    assert.equal(viaOther.status, 401);
    assert.equal(viaOther.body.session_ended, true);
  });
});

describe('sign-in metrics at /metrics/auth', () => {
  let rig: Rig;
  before(async () => { rig = await startRig({ kc: 'keycloak' }, { storage: 'sqlite' }); });
  after(async () => { await rig?.close(); });

  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${rig.hub.url}/metrics/auth`)).text();
    const line = text.split('\n').find((l) => l.startsWith(name));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };

  it('the active-sessions gauge follows sign-in and sign-out', async () => {
    const start = await metric('mimir_auth_active_sessions');
    const a = await jsonLogin(rig);
    const b = await jsonLogin(rig);
    assert.equal(await metric('mimir_auth_active_sessions'), start + 2);
    assert.equal((await logout(rig, a.cookie)).status, 200);
    assert.equal(await metric('mimir_auth_active_sessions'), start + 1);
    assert.equal((await logout(rig, b.cookie)).status, 200);
    assert.equal(await metric('mimir_auth_active_sessions'), start);
  });

  it('JWKS fetches of the IdP bearer verifier are counted', async () => {
    const kc = rig.idps.kc!;
    const before = await metric('mimir_auth_jwks_fetches_total{result="success"}');
    const fetchesBefore = kc.jwksRequests;
    assert.equal((await me(rig.hub, { authorization: `Bearer ${await kc.sign({ sub: 'jane', aud: AUDIENCE })}` })).status, 200);
    const fetched = kc.jwksRequests - fetchesBefore;
    assert.ok(fetched >= 1);
    assert.equal(await metric('mimir_auth_jwks_fetches_total{result="success"}'), before + fetched);
  });
});
