import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { me, startRig, type Rig } from './setup.ts';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const INTROSPECTION = '/token/introspection';
const USERINFO = '/me';

describe('opaque IdP access tokens (introspection and userinfo)', () => {
  let rig: Rig;
  before(async () => {
    // ok: introspection; gg: userinfo (Google's default); kc: opaque tokens off.
    rig = await startRig({ ok: 'okta', gg: 'google', kc: 'keycloak' }, {
      storage: 'memory',
      settings: { ok: { opaqueTokens: 'introspection' } },
    });
  });
  after(async () => { await rig?.close(); });

  it('an opaque token of an introspection provider is accepted, and introspected once for repeated use', async () => {
    const { access_token: token } = await rig.idps.ok!.userTokens('jane');
    assert.doesNotMatch(token, /^ey/); // opaque, not a JWT
    const before = rig.idps.ok!.requests(INTROSPECTION);
    for (let i = 0; i < 3; i++) {
      const { status, body } = await me(rig.hub, bearer(token));
      assert.equal(status, 200);
      assert.equal(body.sub, 'jane');
      assert.equal(body.provider, 'ok');
      assert.equal(body.auth_method, 'oauth');
    }
    assert.equal(rig.idps.ok!.requests(INTROSPECTION), before + 1);
  });

  it('an opaque token of a userinfo provider is accepted after its introspection providers say no, and userinfo is called once', async () => {
    const { access_token: token } = await rig.idps.gg!.userTokens('ada');
    const before = rig.idps.gg!.requests(USERINFO);
    for (let i = 0; i < 3; i++) {
      const { status, body } = await me(rig.hub, bearer(token));
      assert.equal(status, 200);
      assert.equal(body.sub, 'ada');
      assert.equal(body.provider, 'gg');
      assert.equal(body.tenant, 'example.com'); // Google hd
    }
    assert.equal(rig.idps.gg!.requests(USERINFO), before + 1);
  });

  it('a token the IdP revoked is refused', async () => {
    const { access_token: token } = await rig.idps.ok!.userTokens('bob');
    await rig.idps.ok!.revoke(token, 'access_token');
    assert.equal((await me(rig.hub, bearer(token))).status, 401);
  });

  it('an opaque token is never sent to a provider not configured for opaque tokens', async () => {
    const kcBefore = rig.idps.kc!.requests(INTROSPECTION) + rig.idps.kc!.requests(USERINFO);
    const { access_token: token } = await rig.idps.ok!.userTokens('carol');
    assert.equal((await me(rig.hub, bearer(token))).status, 200);
    assert.equal((await me(rig.hub, bearer('not-a-token-anyone-issued'))).status, 401);
    assert.equal(rig.idps.kc!.requests(INTROSPECTION) + rig.idps.kc!.requests(USERINFO), kcBefore);
  });

  it('a token the introspecting provider recognises goes to no userinfo endpoint', async () => {
    const { access_token: token } = await rig.idps.ok!.userTokens('dave');
    const ggBefore = rig.idps.gg!.requests(USERINFO);
    assert.equal((await me(rig.hub, bearer(token))).status, 200);
    assert.equal(rig.idps.gg!.requests(USERINFO), ggBefore);
  });
});

describe('an introspection answer naming another issuer', () => {
  let rig: Rig;
  before(async () => {
    // Two IdPs sharing one client registration. `x` is misconfigured: its introspection endpoint
    // is y's, so y answers "active, iss = y" for y's token. That token must not pass as x's,
    // and must travel on to no other provider (y's own introspection included).
    rig = await startRig({ x: 'keycloak', y: 'generic' }, {
      storage: 'memory',
      idp: { clientId: 'shared-client', clientSecret: 'shared-secret-shared-secret-000' },
      settings: {
        x: (_x, all) => ({ opaqueTokens: 'introspection', endpoints: { introspection: `${all.y!.issuer}/token/introspection` } }),
        y: { opaqueTokens: 'introspection' },
      },
    });
  });
  after(async () => { await rig?.close(); });

  it('is refused, and the token is sent to no other provider', async () => {
    const y = rig.idps.y!;
    const { access_token: token } = await y.userTokens('mallory');
    const introspected = y.requests(INTROSPECTION);
    const userinfo = y.requests(USERINFO);
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_token');
    assert.equal(y.requests(INTROSPECTION), introspected + 1); // asked once, through x's endpoint, not again as y's
    assert.equal(y.requests(USERINFO), userinfo); // and nowhere else
  });
});
