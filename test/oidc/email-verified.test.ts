/**
 * Issue 15, finding C: an email the IdP has not verified never becomes the Principal's email,
 * so it is neither sent upstream as X-User-Email nor put in the hub's tokens; the sign-in itself
 * succeeds. Azure never sends `email_verified` and is trusted as documented; a provider with
 * `trustEmail: true` is trusted as configured.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { RBAC_FIXTURE } from '../proxy/setup.ts';
import { startUpstream, type Upstream } from '../proxy/upstream.ts';
import { me, signIn, startRig, type Rig } from './setup.ts';

/** Users whose IdP says their address is unverified, or says nothing about it. */
const USERS = { mallory: { email_verified: false }, silent: { email_verified: undefined } };

/** A hub in front of a test upstream, with these IdPs; `through` signs in and follows the identity. */
function frontOf(kinds: Parameters<typeof startRig>[0], settings: NonNullable<Parameters<typeof startRig>[1]>['settings'] = {}) {
  const ctx = { rig: undefined as Rig | undefined, upstream: undefined as Upstream | undefined };
  before(async () => {
    ctx.upstream = await startUpstream();
    ctx.rig = await startRig(kinds, {
      storage: 'memory',
      idp: { users: USERS },
      settings,
      env: { MIMIR_UPSTREAM_URL: ctx.upstream.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE },
    });
  });
  after(async () => {
    await ctx.rig?.close();
    await ctx.upstream?.close();
  });

  /** Signs in and returns the session's /auth/me and the identity headers the upstream received. */
  async function through(provider: string, login: string) {
    const rig = ctx.rig!;
    const { res, session } = await signIn(rig, provider, { login });
    assert.equal(res.status, 200);
    assert.ok(session);
    const cookie = { cookie: `mimir_session=${session}` };
    const principal = await me(rig.hub, cookie);
    assert.equal(principal.status, 200);
    const proxied = await fetch(`${rig.hub.url}/api/nodes/n-1`, { headers: cookie });
    assert.equal(proxied.status, 200);
    const { identity } = await proxied.json() as { identity: Record<string, string | undefined> };
    return { principal: principal.body, identity };
  }
  return { ctx, through };
}

describe('issue 15: unverified emails are not forwarded', () => {
  const { ctx, through } = frontOf({ gen: 'generic', az: 'azure', kc: 'keycloak' });

  it('email_verified false: the sign-in succeeds, /auth/me has no email and the upstream gets no X-User-Email', async () => {
    const { principal, identity } = await through('gen', 'mallory');
    assert.equal(principal.sub, 'mallory');
    assert.equal(principal.email, undefined);
    assert.ok(identity['x-user-id']); // the request did go upstream as this user
    assert.equal(identity['x-user-email'], undefined);
  });

  it('email_verified false: the hub access token carries no email', async () => {
    const rig = ctx.rig!;
    const { res } = await signIn(rig, 'kc', { login: 'mallory', accept: 'application/json' });
    assert.equal(res.status, 200);
    const { access_token: token } = await res.json() as { access_token: string };
    assert.equal(decodeJwt(token).email, undefined);
    const { status, body } = await me(rig.hub, { authorization: `Bearer ${token}` });
    assert.equal(status, 200);
    assert.equal(body.email, undefined);
  });

  it('email_verified true: the email is kept and forwarded', async () => {
    const { principal, identity } = await through('gen', 'jane');
    assert.equal(principal.email, 'jane@example.com');
    assert.equal(identity['x-user-email'], 'jane@example.com');
  });

  it('generic without email_verified: no email', async () => {
    const { principal, identity } = await through('gen', 'silent');
    assert.equal(principal.email, undefined);
    assert.equal(identity['x-user-email'], undefined);
  });

  it('azure (never sends email_verified): the email is kept', async () => {
    const { principal, identity } = await through('az', 'silent');
    assert.equal(principal.email, 'silent@example.com');
    assert.equal(identity['x-user-email'], 'silent@example.com');
  });
});

describe('issue 15: a provider configured with trustEmail: true', () => {
  const { through } = frontOf({ trusting: 'generic' }, { trusting: { trustEmail: true } });

  it('keeps an email sent without email_verified', async () => {
    const { principal, identity } = await through('trusting', 'silent');
    assert.equal(principal.email, 'silent@example.com');
    assert.equal(identity['x-user-email'], 'silent@example.com');
  });
});
