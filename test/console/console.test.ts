/**
 * Issue 21, item 3: the admin console at /auth/admin/, driven in Chromium. Every action is made
 * through the page and its effect checked through the JSON admin API (or the credential it
 * touched); each screen is photographed into docs/images/ for docs/admin-console.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { startMimir, type Mimir } from '../helpers/mimir.ts';
import { signedIn, startConsoleRig, type ConsoleRig } from './support.ts';

const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${IMAGES}console-${name}.png`, fullPage: true });
}

/** The copy button puts the shown secret on the clipboard, and says so. */
async function copied(page: Page): Promise<string> {
  const shown = (await page.textContent('[data-field="secret"]'))!.trim();
  await page.click('button[data-copy="secret"]');
  await page.waitForFunction(() => (globalThis as any).document.getElementById('secret-copied').textContent !== '');
  const clip = await page.evaluate(() => (globalThis as any).navigator.clipboard.readText() as Promise<string>);
  assert.equal(clip, shown, 'the clipboard holds the secret shown');
  return shown;
}

describe('admin console (issue 21, item 3)', () => {
  let rig: ConsoleRig;
  let mimir: Mimir;
  let browser: Browser;
  let admin: { context: BrowserContext; page: Page };

  before(async () => {
    mimir = await startMimir();
    rig = await startConsoleRig({ env: { MIMIR_UPSTREAM_URL: mimir.url } });
    browser = await launchChromium();
    admin = await signedIn(browser, rig, 'root');
    await admin.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: rig.hub.url });
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
    await mimir?.close();
  });

  it('signs in through the IdP with a __Host- session cookie and shows the overview', async () => {
    const { page, context } = admin;
    const cookies = await context.cookies(rig.hub.url);
    const session = cookies.find((c) => c.name === '__Host-mimir_session');
    assert.ok(session && session.secure && session.path === '/' && session.httpOnly, JSON.stringify(cookies.map((c) => c.name)));
    assert.equal(await page.textContent('h1'), 'Admin console');
    const csp = (await page.request.get(`${rig.hub.url}/auth/admin/`)).headers()['content-security-policy']!;
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline script');
  });

  it('API keys: create (shown once, copied), listed, used, revoked — checked through the admin API', async () => {
    const { page } = admin;
    await page.click('nav >> text=API keys');
    await page.fill('#f-name', 'ci-bot');
    await page.selectOption('#f-role', 'analyst');
    await page.fill('#f-scopes', 'nodes:read');
    await page.click('form[data-form="create-api-key"] button[type="submit"]');
    const key = await copied(page);
    assert.match(key, /^mimir_[a-z0-9]{16}_[\w-]{43}$/);
    await shoot(page, 'api-keys');
    // Shown once: the listing (page and API) never carries it again.
    await page.goto(`${rig.hub.url}/auth/admin/console/api-keys`);
    assert.equal(await page.locator('[data-field="secret"]').count(), 0);
    assert.ok(!(await page.content()).includes(key));
    const listed = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys.find((k: any) => k.name === 'ci-bot');
    assert.deepEqual([listed.roles, listed.scopes, listed.status], [['analyst'], ['nodes:read'], 'active']);
    assert.ok(listed.expiresAt > listed.createdAt, 'expires (90 days by default)');
    assert.equal((await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': key } })).status, 200);

    await page.click('button[aria-label="Revoke API key ci-bot"]');
    await page.waitForURL(/done=api_key_revoked/);
    assert.match((await page.textContent('[data-field="notice"]'))!, /revoked/);
    const after = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys.find((k: any) => k.name === 'ci-bot');
    assert.equal(after.status, 'revoked');
    assert.equal((await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': key } })).status, 401);
  });

  it('the privilege ceiling is the admin API\'s: an unknown role or scope is refused on the page as by the API', async () => {
    const { page } = admin;
    await page.goto(`${rig.hub.url}/auth/admin/console/api-keys`);
    await page.fill('#f-name', 'bad');
    await page.fill('#f-scopes', 'has space"quote');
    await page.click('form[data-form="create-api-key"] button[type="submit"]');
    assert.match((await page.textContent('[data-field="error"]'))!, /scopes/);
    const byApi = await rig.api('POST', '/auth/admin/api-keys', { name: 'bad', scopes: ['has space"quote'] });
    assert.equal(byApi.status, 400);
  });

  it('a user without admin:manage gets 403 on every screen and form, and the refusal is audited', async () => {
    const dev = await signedIn(browser, rig, 'dev', '/auth/account');
    try {
      for (const path of ['/auth/admin/', '/auth/admin/console/api-keys', '/auth/admin/console/audit', '/auth/admin/console/sessions']) {
        const res = await dev.page.goto(`${rig.hub.url}${path}`);
        assert.equal(res!.status(), 403, path);
        assert.match((await dev.page.textContent('[data-field="message"]'))!, /admin:manage/);
      }
      // A form posted anyway (its CSRF token is the dev's own, taken from their personal page).
      await dev.page.goto(`${rig.hub.url}/auth/account/api-keys`);
      const csrf = await dev.page.getAttribute('input[name="csrf"]', 'value');
      const res = await dev.page.request.post(`${rig.hub.url}/auth/admin/console/signing-keys/rotate`, { form: { csrf: csrf! }, headers: { origin: rig.hub.url } });
      assert.equal(res.status(), 403);
      await rig.hub.hub.auditLog!.flush();
      const denied = await rig.api('GET', '/auth/admin/api-keys');
      assert.equal(denied.status, 200);
      const events = await rig.hub.hub.auditLog!.query({ principal: 'dev', type: 'access_denied' });
      assert.ok(events.events.some((e) => e.details.permission === 'admin:manage'), 'the refusal is in the audit log');
    } finally {
      await dev.context.close();
    }
  });

  it('a form without the session\'s CSRF token is refused, and so is one from another origin', async () => {
    const { page } = admin;
    const before = (await rig.api('GET', '/auth/admin/signing-keys')).body.current;
    const noToken = await page.request.post(`${rig.hub.url}/auth/admin/console/signing-keys/rotate`, { form: { csrf: 'forged' }, headers: { origin: rig.hub.url } });
    assert.equal(noToken.status(), 403);
    await page.goto(`${rig.hub.url}/auth/admin/console/signing-keys`);
    const csrf = await page.getAttribute('input[name="csrf"]', 'value');
    const crossSite = await page.request.post(`${rig.hub.url}/auth/admin/console/signing-keys/rotate`, { form: { csrf: csrf! }, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } });
    assert.equal(crossSite.status(), 403);
    assert.equal((await rig.api('GET', '/auth/admin/signing-keys')).body.current, before, 'nothing rotated');
  });

  it('personal page: any signed-in user creates a key bounded by their permissions, which reaches Mimir as them, and revokes it', async () => {
    const dev = await signedIn(browser, rig, 'dev', '/auth/account/api-keys');
    await dev.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: rig.hub.url });
    try {
      const { page } = dev;
      // The nav offers no admin screen to a non-admin.
      assert.equal(await page.locator('nav a[href="/auth/admin/console/api-keys"]').count(), 0);
      const offered = await page.$$eval('input[name="scopes"]', (els) => els.map((e) => (e as any).value as string));
      assert.deepEqual(offered.sort(), rig.hub.hub.authorizer.permissions({ roles: ['developer'], scopes: [], auth_method: 'session' }).sort());
      await page.fill('#f-name', 'my laptop');
      await page.check('input[name="scopes"][value="nodes:read"]');
      await page.click('form[data-form="create-personal-key"] button[type="submit"]');
      const key = await copied(page);
      await shoot(page, 'personal');

      // It is the user toward Mimir: X-User-ID is theirs, not api-key:<id>.
      const me = await (await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': key } })).json() as any;
      assert.equal(me.upstream.id, 'dev');
      const read = await fetch(`${rig.hub.url}/api/nodes/types`, { headers: { 'x-api-key': key } });
      assert.equal(read.status, 200);
      const seen = mimir.find('/api/nodes/types').at(-1)!;
      assert.equal(seen.identity.headers['x-user-id'], 'dev');
      // Narrowed to what was ticked: writing is refused though the developer role may write.
      const write = await fetch(`${rig.hub.url}/api/nodes`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(write.status, 403);

      // Bounded by the user's permissions: a permission they do not hold is refused (form tampered with).
      const csrf = await page.getAttribute('input[name="csrf"]', 'value');
      const over = await page.request.post(`${rig.hub.url}/auth/account/api-keys`, { form: { csrf: csrf!, name: 'grab', scopes: 'admin:manage' }, headers: { origin: rig.hub.url } });
      assert.equal(over.status(), 403);
      const listed = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys;
      assert.ok(!listed.some((k: any) => k.name === 'grab'));
      const mine = listed.find((k: any) => k.name === 'my laptop');
      assert.equal(mine.owner.sub, 'dev');

      // Someone else's key cannot be revoked from here (not found), their own can.
      const other = listed.find((k: any) => k.name === 'checker');
      const foreign = await page.request.post(`${rig.hub.url}/auth/account/api-keys/revoke`, { form: { csrf: csrf!, id: other.id }, headers: { origin: rig.hub.url } });
      assert.equal(foreign.status(), 404);
      assert.equal((await rig.api('GET', '/auth/admin/api-keys')).status, 200, 'the checker key still works');
      await page.click('button[aria-label="Revoke API key my laptop"]');
      await page.waitForURL(/done=api_key_revoked/);
      assert.equal((await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': key } })).status, 401);
    } finally {
      await dev.context.close();
    }
  });
});
