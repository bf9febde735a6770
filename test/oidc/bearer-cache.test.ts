/**
 * Issue 7: verified IdP JWTs are cached (by SHA-256 of the token). The cache must never be more
 * lenient than verification: not past `exp`, not for a token whose payload was swapped.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIENCE, me, startRig, type Rig } from './setup.ts';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('cached IdP bearer tokens', () => {
  let rig: Rig;
  let clock = Date.now();
  before(async () => {
    rig = await startRig({ okta: 'okta' }, { storage: 'memory', now: () => clock, settings: { okta: { jwksCooldownSeconds: 1 } } });
  });
  after(async () => { await rig?.close(); });

  it('a cached IdP JWT is refused once it has expired (past the verifier\'s 5 s clock tolerance)', async () => {
    const now = Math.floor(clock / 1000);
    const token = await rig.idps.okta!.sign({ sub: 'jane', aud: AUDIENCE, groups: ['developer'], iat: now, exp: now + 60 });
    for (let i = 0; i < 3; i++) assert.equal((await me(rig.hub, bearer(token))).status, 200);
    clock = (now + 66) * 1000;
    const { status, body } = await me(rig.hub, bearer(token));
    assert.equal(status, 401);
    assert.equal(body.error, 'token_expired');
  });

  it('a token with another payload and the genuine signature never hits the genuine entry', async () => {
    const now = Math.floor(clock / 1000);
    const token = await rig.idps.okta!.sign({ sub: 'jane', aud: AUDIENCE, groups: ['developer'], iat: now, exp: now + 600 });
    assert.equal((await me(rig.hub, bearer(token))).status, 200);
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const swapped = `${header}.${Buffer.from(JSON.stringify({ ...claims, groups: ['admin'] })).toString('base64url')}.${signature}`;
    assert.equal((await me(rig.hub, bearer(swapped))).status, 401);
  });

  it('each request gets its own Principal: what one caller sees cannot change what the next sees', async () => {
    const now = Math.floor(clock / 1000);
    const token = await rig.idps.okta!.sign({ sub: 'joe', aud: AUDIENCE, groups: ['viewer'], iat: now, exp: now + 600 });
    const first = await me(rig.hub, bearer(token));
    const second = await me(rig.hub, bearer(token));
    assert.equal(first.status, 200);
    assert.deepEqual(second.body, first.body);
    assert.equal(second.body.sub, 'joe');
    assert.deepEqual(second.body.groups, ['viewer']);
  });

  it('a cached IdP JWT stops working once its key has left the IdP\'s JWKS', async () => {
    const okta = rig.idps.okta!;
    const now = () => Math.floor(clock / 1000);
    const old = await okta.sign({ sub: 'jane', aud: AUDIENCE, groups: ['developer'], iat: now(), exp: now() + 600 });
    for (let i = 0; i < 3; i++) assert.equal((await me(rig.hub, bearer(old))).status, 200);
    await okta.rotateKeys();
    await new Promise((r) => setTimeout(r, 1100)); // past jose's refetch cooldown (real time)
    // A token under the new key makes the hub fetch the JWKS again: the old key is gone from it.
    const fresh = await okta.sign({ sub: 'jane', aud: AUDIENCE, groups: ['developer'], iat: now(), exp: now() + 600 });
    assert.equal((await me(rig.hub, bearer(fresh))).status, 200);
    clock += 1001; // the hub re-reads the key ids of a JWKS at most once a second
    assert.equal((await me(rig.hub, bearer(old))).status, 401);
    assert.equal((await me(rig.hub, bearer(fresh))).status, 200);
  });
});
