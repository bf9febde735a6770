/**
 * Issue 15, finding 15: every HTML page the hub serves, error pages included, carries the same
 * protective headers: a Content-Security-Policy without script and with frame-ancestors 'none',
 * X-Frame-Options DENY, no-store, nosniff, and the HTML type.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { authorizeUrl, pkce } from '../helpers/authorize-flow.ts';
import { signIn, startRig, type Rig } from '../oidc/setup.ts';

function assertPageHeaders(res: Response, status: number, what: string): void {
  assert.equal(res.status, status, what);
  const h = res.headers;
  assert.equal(h.get('content-type'), 'text/html; charset=utf-8', what);
  assert.equal(h.get('cache-control'), 'no-store', what);
  assert.equal(h.get('x-frame-options'), 'DENY', what);
  assert.equal(h.get('x-content-type-options'), 'nosniff', what);
  const csp = h.get('content-security-policy') ?? '';
  for (const directive of ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"]) {
    assert.ok(csp.split(';').map((d) => d.trim()).includes(directive), `${what}: CSP ${JSON.stringify(csp)} lacks ${directive}`);
  }
  assert.doesNotMatch(csp, /script-src|unsafe/, what);
}

describe('every HTML page carries CSP, X-Frame-Options, no-store (issue 15, finding 15)', () => {
  let rig: Rig;
  let bare: TestHub;
  let session: string;
  let cookieName: string;
  before(async () => {
    rig = await startRig({ a: 'generic', b: 'keycloak' }, { storage: 'memory' });
    bare = await startHub({ storage: 'memory' });
    cookieName = rig.hub.config.session.cookie.name;
  });
  after(async () => {
    await rig?.close();
    await bare?.close();
  });

  it('the login chooser, and the login page of a hub without providers', async () => {
    assertPageHeaders(await fetch(`${rig.hub.url}/auth/login`), 200, 'chooser');
    assertPageHeaders(await fetch(`${bare.url}/auth/login`), 404, 'no provider');
  });

  it('the page after sign-in that moves on to returnTo, and the account page', async () => {
    const done = await signIn(rig, 'a', { returnTo: '/auth/account' });
    assertPageHeaders(done.res, 200, 'continue page');
    assert.ok(done.session);
    session = done.session;
    const account = await fetch(`${rig.hub.url}/auth/account`, { headers: { cookie: `${cookieName}=${session}` } });
    assertPageHeaders(account, 200, 'account page');
  });

  it('the signed-out page', async () => {
    const res = await fetch(`${rig.hub.url}/auth/logout`, { method: 'POST', redirect: 'manual', headers: { origin: rig.hub.url } });
    assertPageHeaders(res, 200, 'signed out');
  });

  it('error pages of /auth/login and /auth/callback', async () => {
    assertPageHeaders(await fetch(`${rig.hub.url}/auth/login?provider=nope`, { redirect: 'manual' }), 400, 'unknown provider');
    assertPageHeaders(await fetch(`${rig.hub.url}/auth/callback?code=x&state=y`, { redirect: 'manual' }), 400, 'callback without its state');
  });

  it('error pages of /auth/authorize and its decision', async () => {
    assertPageHeaders(await fetch(`${rig.hub.url}/auth/authorize?client_id=unknown-client`, { redirect: 'manual' }), 400, 'unknown client');
    assertPageHeaders(await fetch(authorizeUrl(rig.hub, { client_id: 'mimir-cli', redirect_uri: 'https://evil.example/cb' }), { redirect: 'manual' }), 400, 'unregistered redirect');
    const decision = await fetch(`${rig.hub.url}/auth/authorize/decision`, {
      method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, body: 'request=x&decision=allow',
    });
    assertPageHeaders(decision, 403, 'cross-origin decision');
    const expired = await fetch(`${rig.hub.url}/auth/authorize/decision`, {
      method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: rig.hub.url }, body: 'request=x&decision=allow',
    });
    assertPageHeaders(expired, 400, 'unknown consent request');
  });

  it('the consent page, whose form may post only to the hub and answer with a redirect to the client', async () => {
    const { session: fresh } = await signIn(rig, 'b');
    const res = await fetch(authorizeUrl(rig.hub, {
      client_id: 'mimir-cli', redirect_uri: 'http://127.0.0.1:4567/callback', response_type: 'code', state: 's',
      code_challenge: pkce().challenge, code_challenge_method: 'S256',
    }), { redirect: 'manual', headers: { cookie: `${cookieName}=${fresh}` } });
    assertPageHeaders(res, 200, 'consent page');
    assert.match(await res.text(), /name="decision"/);
    assert.match(res.headers.get('content-security-policy') ?? '', /form-action 'self' http:\/\/127\.0\.0\.1:4567(;|$)/);
  });
});
