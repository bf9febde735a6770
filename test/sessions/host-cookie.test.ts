/**
 * Issue 15, finding 18: with secure cookies (the default) the session cookie is `__Host-` prefixed,
 * so a browser keeps it only as Secure, Path=/ and host-only: a sibling subdomain or a plain-http
 * page cannot set or shadow it (RFC 6265bis §4.1.3.2). The sign-in binding cookie, whose path is
 * /auth/callback, is `__Secure-` (§4.1.3.1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { launchChromium } from '../helpers/browser.ts';
import { me, signIn, startRig, type Rig } from '../oidc/setup.ts';

function setCookie(res: Response, name: string): string {
  const line = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  assert.ok(line, `Set-Cookie ${name} in ${JSON.stringify(res.headers.getSetCookie())}`);
  return line;
}

const attributes = (line: string) => line.split(';').slice(1).map((a) => a.trim().toLowerCase());

describe('secure session cookies are __Host- prefixed (issue 15, finding 18)', () => {
  let rig: Rig;
  let browser: Browser;
  before(async () => {
    rig = await startRig({ corp: 'generic' }, { storage: 'memory', env: { MIMIR_SESSION_COOKIE_SECURE: 'true' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('the effective names are computed once in the configuration', () => {
    const names = (env: Record<string, string>) => {
      const c = loadConfig(env, { dotenv: false }).session.cookie;
      return [c.name, c.loginName];
    };
    assert.deepEqual(names({}), ['__Host-mimir_session', '__Secure-mimir_session_login']);
    assert.deepEqual(names({ MIMIR_SESSION_COOKIE_NAME: 'sid' }), ['__Host-sid', '__Secure-sid_login']);
    assert.deepEqual(names({ MIMIR_SESSION_COOKIE_NAME: '__Host-sid' }), ['__Host-sid', '__Secure-sid_login'], 'already prefixed: kept');
    assert.deepEqual(names({ MIMIR_SESSION_COOKIE_SECURE: 'false' }), ['mimir_session', 'mimir_session_login']);
    assert.throws(() => loadConfig({ MIMIR_SESSION_COOKIE_SECURE: 'false', MIMIR_SESSION_COOKIE_NAME: '__Host-sid' }, { dotenv: false }),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('MIMIR_SESSION_COOKIE_NAME:')));
  });

  it('a sign-in sets __Host-mimir_session=…; Path=/; Secure, without Domain, and the binding cookie __Secure-', async () => {
    const started = await fetch(`${rig.hub.url}/auth/login?provider=corp`, { redirect: 'manual' });
    const binding = attributes(setCookie(started, '__Secure-mimir_session_login'));
    assert.ok(binding.includes('secure') && binding.includes('path=/auth/callback'), binding.join('; '));

    const { res, session } = await signIn(rig, 'corp');
    const line = setCookie(res, '__Host-mimir_session');
    const attrs = attributes(line);
    assert.ok(attrs.includes('path=/'), line);
    assert.ok(attrs.includes('secure'), line);
    assert.ok(attrs.includes('httponly'), line);
    assert.ok(!attrs.some((a) => a.startsWith('domain=')), line);
    assert.ok(session);

    assert.equal((await me(rig.hub, { cookie: `__Host-mimir_session=${session}` })).status, 200);
    // The unprefixed name, which any subdomain or http page could set, is not the session cookie.
    assert.equal((await me(rig.hub, { cookie: `mimir_session=${session}` })).status, 401);
    // The CSRF check follows the name: a cross-site sign-out with it is refused.
    const crossSite = await fetch(`${rig.hub.url}/auth/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: `__Host-mimir_session=${session}`, origin: 'https://evil.example' } });
    assert.equal(crossSite.status, 403);
  });

  it('Chromium keeps the __Host- cookie and signs in (loopback http counts as a secure context)', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${rig.hub.url}/auth/login?returnTo=%2Fauth%2Faccount`);
      await page.waitForURL((u) => u.href.startsWith(rig.idps.corp!.origin));
      await page.fill('input[name="login"]', 'ada');
      await page.fill('input[name="password"]', 'pw');
      await page.click('button[type="submit"]');
      await page.waitForURL(`${rig.hub.url}/auth/account`);
      assert.equal(await page.textContent('[data-field="user-id"]'), 'ada');
      const cookies = await context.cookies(rig.hub.url);
      const session = cookies.find((c) => c.name === '__Host-mimir_session');
      assert.ok(session, JSON.stringify(cookies.map((c) => c.name)));
      assert.equal(session.secure, true);
      assert.equal(session.path, '/');
      const meRes = await page.goto(`${rig.hub.url}/auth/me`);
      assert.equal(meRes!.status(), 200);
    } finally {
      await context.close();
    }
  });
});
