/**
 * Issue 15, finding 4: an opaque IdP access token is accepted only when the IdP says it was
 * issued to the hub's client (Google: tokeninfo `aud`/`azp`; others: RFC 7662 introspection).
 * A token the same IdP issued to another application never signs in.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { me, signIn, startRig, type Rig } from './setup.ts';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const TOKENINFO = '/tokeninfo';
const USERINFO = '/me';
const INTROSPECTION = '/token/introspection';

describe('issue 15: Google opaque access tokens are checked at tokeninfo for our client', () => {
  let rig: Rig;
  before(async () => {
    // gg: the IdP publishes tokeninfo_endpoint in its discovery document, as a Google-compatible one would.
    rig = await startRig({ gg: 'google' }, { storage: 'memory' });
  });
  after(async () => { await rig?.close(); });

  it('a token the IdP issued to another application is refused with 401 invalid_token, and its userinfo is never asked', async () => {
    const gg = rig.idps.gg!;
    const { access_token: token } = await gg.userTokens('eve', { client: 'other' });
    assert.doesNotMatch(token, /^ey/); // opaque
    const asked = gg.requests(TOKENINFO);
    const userinfo = gg.requests(USERINFO);
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_token');
    assert.equal(gg.requests(TOKENINFO), asked + 1);
    assert.equal(gg.requests(USERINFO), userinfo);
  });

  it("the hub's own client's token is accepted after tokeninfo, with the profile from userinfo", async () => {
    const gg = rig.idps.gg!;
    const { access_token: token } = await gg.userTokens('ada');
    const asked = gg.requests(TOKENINFO);
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 200);
    assert.equal(body.sub, 'ada');
    assert.equal(body.provider, 'gg');
    assert.equal(body.tenant, 'example.com'); // hd, from userinfo
    assert.equal(body.email, 'ada@example.com'); // verified
    assert.equal(gg.requests(TOKENINFO), asked + 1);
  });

  it('a token the IdP revoked is refused (tokeninfo answers 400 invalid_token)', async () => {
    const gg = rig.idps.gg!;
    const { access_token: token } = await gg.userTokens('bob');
    await gg.revoke(token, 'access_token');
    const probe = await fetch(`${gg.issuer}${TOKENINFO}?access_token=${encodeURIComponent(token)}`);
    assert.equal(probe.status, 400);
    assert.deepEqual((await probe.json() as { error: string }).error, 'invalid_token');
    assert.equal((await me(rig.hub, bearer(token))).status, 401);
  });
});

describe("issue 15: a provider's `audiences` lists the other applications whose opaque tokens are accepted", () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ gg: 'google', ok: 'okta' }, {
      storage: 'memory',
      settings: {
        gg: (idp) => ({ audiences: [idp.otherClient.clientId] }),
        ok: (idp) => ({ opaqueTokens: 'introspection', audiences: [idp.otherClient.clientId] }),
      },
    });
  });
  after(async () => { await rig?.close(); });

  it('google: a token of an application named in `audiences` is accepted', async () => {
    const { access_token: token } = await rig.idps.gg!.userTokens('carol', { client: 'other' });
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 200);
    assert.equal(body.sub, 'carol');
  });

  it('introspection: a token of an application named in `audiences` is accepted', async () => {
    const ok = rig.idps.ok!;
    const { access_token: token } = await ok.userTokens('dave', { client: 'other' });
    const asked = ok.requests(INTROSPECTION);
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 200);
    assert.equal(body.sub, 'dave');
    assert.equal(body.provider, 'ok');
    assert.equal(ok.requests(INTROSPECTION), asked + 1);
  });
});

describe('issue 15: introspection refuses a token issued to another application', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ ok: 'okta' }, { storage: 'memory', settings: { ok: { opaqueTokens: 'introspection' } } });
  });
  after(async () => { await rig?.close(); });

  it('is 401 invalid_token', async () => {
    const { access_token: token } = await rig.idps.ok!.userTokens('eve', { client: 'other' });
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_token');
  });
});

describe('issue 15: a Google provider with no tokeninfo endpoint refuses opaque tokens (fail closed)', () => {
  let rig: Rig;
  before(async () => {
    // Every endpoint given explicitly: no discovery, so no tokeninfo_endpoint is learnt either.
    rig = await startRig({ gg: 'google' }, {
      storage: 'memory',
      settings: {
        gg: (idp) => ({
          endpoints: { authorization: `${idp.issuer}/auth`, token: `${idp.issuer}/token`, jwks: `${idp.issuer}/jwks`, userinfo: `${idp.issuer}${USERINFO}` },
        }),
      },
    });
  });
  after(async () => { await rig?.close(); });

  it("even the hub's own client's token is refused, and it goes to no userinfo endpoint", async () => {
    const gg = rig.idps.gg!;
    const { access_token: token } = await gg.userTokens('ada');
    const userinfo = gg.requests(USERINFO);
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_token');
    assert.equal(gg.requests(USERINFO), userinfo);
    assert.equal(gg.requests(TOKENINFO), 0);
  });

  it('signing in through the browser flow still works (ID tokens need no tokeninfo)', async () => {
    const { res, session } = await signIn(rig, 'gg');
    assert.equal(res.status, 200);
    assert.ok(session);
  });
});
