import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { JWTPayload } from 'jose';
import { tmpdir } from 'node:os';
import { loadConfig } from '../../src/config/index.ts';
import { decodeJwt } from 'jose';
import { loadProviders } from '../../src/oidc/providers.ts';
import { AUDIENCE, me, sessionCookie, signIn, startRig, type Rig } from './setup.ts';

const TENANT = '11111111-2222-3333-4444-555555555555';
const OTHER_TENANT = '99999999-8888-7777-6666-555555555555';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('Azure multi-tenant providers ({tenantid} issuer template)', () => {
  it('MIMIR_AZURE_TENANT_ID=organizations (or providers-file tenant: common) yields the issuer template', () => {
    const [env] = loadProviders(loadConfig({ MIMIR_DATA_DIR: tmpdir(), MIMIR_AUTH_PROVIDER: 'azure', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_AZURE_TENANT_ID: 'organizations' }, { dotenv: false }));
    assert.equal(env!.issuer, 'https://login.microsoftonline.com/organizations/v2.0');
    assert.equal(env!.issuerTemplate, 'https://login.microsoftonline.com/{tenantid}/v2.0');
    const [single] = loadProviders(loadConfig({ MIMIR_DATA_DIR: tmpdir(), MIMIR_AUTH_PROVIDER: 'azure', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_AZURE_TENANT_ID: TENANT }, { dotenv: false }));
    assert.equal(single!.issuerTemplate, undefined);
  });

  describe('with an allowed-tenants list', () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig({ az: 'azure' }, {
        storage: 'memory',
        idp: { tenantId: TENANT, multiTenant: true },
        settings: { az: (idp) => ({ issuer: idp.commonIssuer, tenant: 'organizations', allowedTenants: [TENANT] }) },
      });
    });
    after(async () => { await rig?.close(); });

    it('a user of an allowed tenant signs in; the ID token iss is the template with its own tid', async () => {
      const { res, session } = await signIn(rig, 'az', { login: 'ada' });
      assert.equal(res.status, 200, await res.clone().text());
      const { status, body } = await me(rig.hub, { cookie: sessionCookie(rig.hub, session) });
      assert.equal(status, 200);
      assert.equal(body.sub, 'ada');
      assert.equal(body.tenant, TENANT);
    });

    /** Signs in with the IdP's ID tokens rewritten by `tamper`: refused, and no session is made. */
    async function refused(tamper: (c: JWTPayload) => JWTPayload, what: string): Promise<void> {
      rig.idps.az!.tamperIdToken(tamper);
      try {
        const { res, session } = await signIn(rig, 'az', { accept: 'application/json' });
        assert.equal(res.status, 400, what);
        assert.equal((await res.json() as { error: string }).error, 'invalid_grant', what);
        assert.equal(session, undefined, what);
      } finally {
        rig.idps.az!.tamperIdToken(undefined);
      }
    }

    it('an ID token whose iss names another tenant than its tid is refused', async () => {
      await refused((c) => ({ ...c, iss: `${rig.idps.az!.origin}/${OTHER_TENANT}/v2.0` }), 'iss of another tenant');
    });

    it('an ID token for another audience, or with a wrong nonce, is refused by the own validation', async () => {
      for (const bad of [{ aud: 'another-app' }, { nonce: 'not-the-nonce' }]) {
        await refused((c) => ({ ...c, ...bad }), JSON.stringify(bad));
      }
    });

    it('an iss response parameter of another tenant than the ID token is refused', async () => {
      await refused((c) => ({ ...c, iss: `${rig.idps.az!.origin}/${OTHER_TENANT}/v2.0`, tid: OTHER_TENANT }), 'iss parameter of another tenant');
    });

    it('access tokens: iss must be the template with the token tid, and the tenant must be allowed', async () => {
      const az = rig.idps.az!;
      const ok = await az.sign({ sub: 'ada', aud: AUDIENCE, tid: TENANT, iss: `${az.origin}/${TENANT}/v2.0`, roles: ['developer'] });
      const good = await me(rig.hub, bearer(ok));
      assert.equal(good.status, 200);
      assert.equal(good.body.tenant, TENANT);
      const mismatched = await az.sign({ sub: 'ada', aud: AUDIENCE, tid: TENANT, iss: `${az.origin}/${OTHER_TENANT}/v2.0` });
      assert.equal((await me(rig.hub, bearer(mismatched))).status, 401);
      const foreign = await az.sign({ sub: 'eve', aud: AUDIENCE, tid: OTHER_TENANT, iss: `${az.origin}/${OTHER_TENANT}/v2.0` });
      assert.equal((await me(rig.hub, bearer(foreign))).status, 403);
      const notATenant = await az.sign({ sub: 'eve', aud: AUDIENCE, tid: 'evil', iss: `${az.origin}/evil/v2.0` });
      assert.equal((await me(rig.hub, bearer(notATenant))).status, 401);
    });
  });

  it('a user of a tenant not in MIMIR_AZURE_ALLOWED_TENANTS is refused with 403', async () => {
    const rig = await startRig({ az: 'azure' }, {
      storage: 'memory',
      idp: { tenantId: OTHER_TENANT, multiTenant: true },
      settings: { az: (idp) => ({ issuer: idp.commonIssuer, tenant: 'organizations', allowedTenants: [TENANT] }) },
    });
    try {
      const { res, session } = await signIn(rig, 'az', { accept: 'application/json' });
      assert.equal(res.status, 403);
      assert.equal((await res.json() as { error: string }).error, 'access_denied');
      assert.equal(session, undefined);
    } finally {
      await rig.close();
    }
  });

  describe('without an allowed-tenants list', () => {
    let rig: Rig;
    let clock = 0;
    before(async () => {
      rig = await startRig({ az: 'azure' }, {
        storage: 'memory',
        now: () => Date.now() + clock,
        idp: { tenantId: OTHER_TENANT, multiTenant: true },
        settings: { az: (idp) => ({ issuer: idp.commonIssuer, tenant: 'common' }) },
      });
    });
    after(async () => { await rig?.close(); });

    it('any tenant may sign in, and renewing the IdP tokens on refresh works despite the templated issuer', async () => {
      const { res } = await signIn(rig, 'az', { accept: 'application/json' });
      assert.equal(res.status, 200);
      const body = await res.json() as { access_token: string; refresh_token: string };
      assert.equal((await me(rig.hub, bearer(body.access_token))).body.tenant, OTHER_TENANT);
      const sid = decodeJwt(body.access_token).sid as string;
      const sessions = rig.hub.hub.sessions;
      const before = (await sessions.idpTokens(sid))!;
      const calls = rig.idps.az!.requests('/token');
      clock = 3590_000;
      try {
        const r = await fetch(`${rig.hub.url}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: body.refresh_token }) });
        assert.equal(r.status, 200);
        assert.equal(rig.idps.az!.requests('/token'), calls + 1);
        // Renewed and stored: the refreshed ID token's templated issuer did not get in the way.
        assert.notEqual((await sessions.idpTokens(sid))!.accessToken, before.accessToken);
      } finally {
        clock = 0;
      }
    });
  });
});
