import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIENCE, me, startRig, type Rig } from './setup.ts';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('IdP access tokens as bearer tokens', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ kc: 'keycloak', okta: 'okta', cog: 'cognito' }, {
      storage: 'memory',
      settings: { kc: { jwksCooldownSeconds: 1 }, cog: { audience: undefined } },
    });
  });
  after(async () => { await rig?.close(); });

  it('a real JWT access token from the IdP token endpoint is accepted with auth_method oauth', async () => {
    const token = await rig.idps.kc!.clientCredentialsToken();
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 200);
    assert.equal(body.auth_method, 'oauth');
    assert.equal(body.provider, 'kc');
  });

  it('a token from provider A never validates as provider B (B issuer, A key)', async () => {
    const forged = await rig.idps.kc!.sign({ iss: rig.idps.okta!.issuer, sub: 'mallory', aud: AUDIENCE });
    const { status, body } = await me(rig.hub, bearer(forged));
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_token');
  });

  it('a token for another audience is refused', async () => {
    const token = await rig.idps.okta!.sign({ sub: 'jane', aud: 'api://someone-else', groups: ['developer'] });
    assert.equal((await me(rig.hub, bearer(token))).status, 401);
  });

  it('an expired IdP token answers 401 token_expired', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await rig.idps.okta!.sign({ sub: 'jane', aud: AUDIENCE, iat: now - 7200, exp: now - 3600 });
    const res = await fetch(`${rig.hub.url}/auth/me`, { headers: bearer(token) });
    assert.equal(res.status, 401);
    assert.equal((await res.json() as { error: string }).error, 'token_expired');
    assert.match(res.headers.get('www-authenticate')!, /invalid_token/);
  });

  it('okta groups become roles', async () => {
    const token = await rig.idps.okta!.sign({ sub: 'jane', aud: AUDIENCE, groups: ['developer', 'Everyone'] });
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 200);
    assert.deepEqual(body.groups, ['developer', 'Everyone']);
    assert.ok((body.roles as string[]).includes('developer'));
  });

  it('cognito: an access token with client_id and no aud is accepted, an ID token is not', async () => {
    const cog = rig.idps.cog!;
    const access = await cog.sign({ sub: 'u-1', token_use: 'access', client_id: cog.clientId, 'cognito:groups': ['analyst'] });
    const ok = await me(rig.hub, bearer(access));
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.roles, ['analyst']);
    const id = await cog.sign({ sub: 'u-1', token_use: 'id', aud: cog.clientId });
    assert.equal((await me(rig.hub, bearer(id))).status, 401);
    const otherClient = await cog.sign({ sub: 'u-1', token_use: 'access', client_id: 'another-app' });
    assert.equal((await me(rig.hub, bearer(otherClient))).status, 401);
  });

  it('an HS256 token claiming an IdP issuer is refused', async () => {
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({ sub: 'x', aud: AUDIENCE }).setProtectedHeader({ alg: 'HS256', kid: rig.idps.kc!.kid })
      .setIssuer(rig.idps.kc!.issuer).setExpirationTime('5m').sign(new Uint8Array(32));
    assert.equal((await me(rig.hub, bearer(token))).status, 401);
  });

  it('JWKS rotated at the IdP: new tokens validate after one refetch; a flood of unknown kids refetches at most once per cooldown', async () => {
    const kc = rig.idps.kc!;
    const before = await kc.sign({ sub: 'jane', aud: AUDIENCE });
    assert.equal((await me(rig.hub, bearer(before))).status, 200);
    const fetchesBefore = kc.jwksRequests;
    await kc.rotateKeys();
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s cooldown of the last fetch
    const after = await kc.sign({ sub: 'jane', aud: AUDIENCE });
    assert.equal((await me(rig.hub, bearer(after))).status, 200);
    assert.equal(kc.jwksRequests, fetchesBefore + 1);
    const flood = await Promise.all(Array.from({ length: 20 }, (_, i) => kc.sign({ sub: 'x', aud: AUDIENCE }, { kid: `unknown-${i}` })));
    const statuses = await Promise.all(flood.map(async (t) => (await me(rig.hub, bearer(t))).status));
    assert.ok(statuses.every((s) => s === 401));
    assert.ok(kc.jwksRequests <= fetchesBefore + 2, `JWKS fetched ${kc.jwksRequests - fetchesBefore} times`);
    // The rotated-out key no longer verifies.
    assert.equal((await me(rig.hub, bearer(before))).status, 401);
  });
});
