/**
 * Attacker review, L1: revoking a signing key (every token it signed stops working, `*` holders'
 * too) and ending the session of a user who holds `*` need `*` themselves. A key admin
 * (admin:manage and nodes:read, no `*`) is refused 403 for both, audited; it still ends a
 * developer's session; a `*` holder does all of it. Over HTTP, through the admin API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '../../src/admin/service.ts';
import { startConsoleRig, type ConsoleRig } from '../console/support.ts';
import { me, sessionCookie, signIn } from '../oidc/setup.ts';

describe('the * ceiling of revocations and sessions (attacker review L1)', () => {
  let rig: ConsoleRig;
  let keyAdmin: string;
  const call = async (key: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${rig.hub.url}${path}`, {
      method, headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() as any };
  };
  const session = async (login: string) => {
    const { session: s } = await signIn(rig, 'corp', { login });
    const cookie = { cookie: sessionCookie(rig.hub, s) };
    const who = await me(rig.hub, cookie);
    assert.equal(who.status, 200);
    return { cookie, sid: who.body.sid as string };
  };
  before(async () => {
    rig = await startConsoleRig();
    // The console rig's operator role: admin:manage and nodes:read, not *.
    keyAdmin = (await rig.hub.hub.admin.createApiKey(cliActor('l1-test'), { name: 'keyadmin', roles: ['operator'] })).key;
  });
  after(async () => {
    await rig?.close();
  });

  it('a key admin without * is refused (403, audited) revoking a signing key and ending a * holder\'s session', async () => {
    const kid = (await rig.api('GET', '/auth/admin/signing-keys')).body.current as string;
    const root = await session('root');
    const refusedKey = await call(keyAdmin, 'POST', '/auth/admin/revocations', { type: 'signing_key', id: kid });
    assert.equal(refusedKey.status, 403, JSON.stringify(refusedKey.body));
    assert.match(refusedKey.body.error_description, /\*/);
    assert.equal((await rig.api('GET', '/auth/admin/signing-keys')).body.current, kid, 'not rotated');
    const refusedSession = await call(keyAdmin, 'POST', '/auth/admin/revocations', { type: 'session', id: root.sid });
    assert.equal(refusedSession.status, 403);
    const refusedEnd = await call(keyAdmin, 'DELETE', `/auth/admin/sessions/${root.sid}`);
    assert.equal(refusedEnd.status, 403);
    assert.equal((await me(rig.hub, root.cookie)).status, 200, 'the * holder is still signed in');
    await rig.hub.hub.auditLog!.flush();
    const denied = (await rig.hub.hub.auditLog!.query({ type: 'access_denied', perPage: 500 })).events
      .filter((e) => e.details.permission === '*' && e.reason === 'privilege_ceiling' && e.principal?.sub.startsWith('api-key:'));
    assert.ok(denied.length >= 1 && denied.reduce((a, e) => a + Number(e.details.count ?? 1), 0) >= 3, JSON.stringify(denied));

    // What is not a * holder's stays the key admin's to end.
    const dev = await session('dev');
    assert.equal((await call(keyAdmin, 'DELETE', `/auth/admin/sessions/${dev.sid}`)).status, 200);
    assert.equal((await me(rig.hub, dev.cookie)).status, 401);
  });

  it('a * holder revokes the signing key and ends a * holder\'s session', async () => {
    const kid = (await rig.api('GET', '/auth/admin/signing-keys')).body.current as string;
    const root = await session('root');
    assert.equal((await rig.api('DELETE', `/auth/admin/sessions/${root.sid}`)).status, 200);
    assert.equal((await me(rig.hub, root.cookie)).status, 401);
    const revoked = await rig.api('POST', '/auth/admin/revocations', { type: 'signing_key', id: kid });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.notEqual((await rig.api('GET', '/auth/admin/signing-keys')).body.current, kid, 'rotated first');
  });
});
