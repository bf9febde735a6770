/**
 * Issue 15, finding B (IdP side): role and group names from the IdP are looked up as own
 * properties only. A role named like an Object.prototype member is an unknown role: the sign-in,
 * the bearer path and opaque introspection all succeed (before the fix they answered 500).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIENCE, me, signIn, startRig, type Rig } from './setup.ts';

const JUNK = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
const ROLES = [...JUNK, 'developer'];

describe('issue 15: roles and groups named like object properties', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ gen: 'generic', okta: 'okta' }, {
      storage: 'memory',
      idp: { users: { junk: { roles: ROLES, groups: [...JUNK, 'Everyone', 'developer'] } } },
      settings: {
        gen: { opaqueTokens: 'introspection', roleMappings: { developer: ['developer'] }, groupsToRoles: { Engineering: 'analyst' } },
      },
    });
  });
  after(async () => { await rig?.close(); });

  const rolesOf = (body: Record<string, unknown>) => body.roles as string[];

  it('sign-in (callback) succeeds and the session works', async () => {
    const { res, session } = await signIn(rig, 'gen', { login: 'junk' });
    assert.equal(res.status, 200);
    assert.ok(session);
    const { status, body } = await me(rig.hub, { cookie: `mimir_session=${session}` });
    assert.equal(status, 200);
    assert.equal(body.sub, 'junk');
    assert.ok(rolesOf(body).includes('developer'));
  });

  it('sign-in returning hub tokens (Accept: application/json) succeeds', async () => {
    const { res } = await signIn(rig, 'gen', { login: 'junk', accept: 'application/json' });
    assert.equal(res.status, 200);
    const { access_token: token } = await res.json() as { access_token: string };
    const { status } = await me(rig.hub, { authorization: `Bearer ${token}` });
    assert.equal(status, 200);
  });

  it('an IdP JWT as a bearer token is accepted (200)', async () => {
    const token = await rig.idps.gen!.sign({ sub: 'junk', aud: AUDIENCE, roles: ROLES, groups: JUNK });
    const { status, body } = await me(rig.hub, { authorization: `Bearer ${token}` });
    assert.equal(status, 200);
    assert.ok(rolesOf(body).includes('developer'));
  });

  it('okta groups named like object properties are accepted as a bearer token (200)', async () => {
    const token = await rig.idps.okta!.sign({ sub: 'junk', aud: AUDIENCE, groups: ROLES });
    const { status, body } = await me(rig.hub, { authorization: `Bearer ${token}` });
    assert.equal(status, 200);
    assert.ok(rolesOf(body).includes('developer'));
  });

  it('an opaque token whose introspection carries them is accepted (200)', async () => {
    const { access_token: token } = await rig.idps.gen!.userTokens('junk');
    assert.doesNotMatch(token, /^ey/);
    const { status, body } = await me(rig.hub, { authorization: `Bearer ${token}` });
    assert.equal(status, 200);
    assert.equal(body.sub, 'junk');
    assert.ok(rolesOf(body).includes('developer'));
  });
});
