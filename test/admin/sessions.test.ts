/**
 * Issue 19 (one admin service): ending a sign-in session by id is the same change from the CLI as
 * over HTTP (`POST /auth/admin/revocations {type: "session"}`): the session itself ends, so its
 * cookie stops working on the running hub, and the change is audited with the CLI's actor.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { me, sessionCookie, signIn, startRig, type Rig } from '../oidc/setup.ts';
import { auditLines, cli, OS_USER } from './support.ts';

describe('ending a sign-in session from the CLI', () => {
  let rig: Rig;
  before(async () => { rig = await startRig({ corp: 'generic' }, { storage: 'sqlite' }); });
  after(async () => rig.close());

  it('mimir-auth revoke session SID ends the session on the running hub, audited as cli:<os user>', async () => {
    const { session } = await signIn(rig, 'corp');
    const cookie = { cookie: sessionCookie(rig.hub, session) };
    const before = await me(rig.hub, cookie);
    assert.equal(before.status, 200);
    const sid = before.body.sid as string;
    assert.ok(sid, 'a session principal names its session');

    const audit = join(rig.hub.dataDir, 'cli-audit.log');
    const env = { MIMIR_DATA_DIR: rig.hub.dataDir, MIMIR_TOKEN_STORAGE: 'sqlite', MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file', MIMIR_AUDIT_LOG_FILE: audit };
    const r = await cli(['revoke', 'session', sid], env, rig.hub.dataDir);
    assert.equal(r.code, 0, r.stderr);

    assert.equal((await me(rig.hub, cookie)).status, 401, 'the cookie no longer signs anyone in');
    const event = auditLines(audit).find((e) => e.type === 'revocation');
    assert.deepEqual(
      { token_type: event?.token_type, target: event?.target, principal: event?.principal },
      { token_type: 'session', target: sid, principal: { sub: `cli:${OS_USER}`, auth_method: 'cli' } },
    );
  });
});
