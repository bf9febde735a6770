/**
 * Issue 21, item 3: the admin console at /auth/admin/, driven in Chromium. Every action is made
 * through the page and its effect checked through the JSON admin API (or the credential it
 * touched); each screen is photographed into docs/images/ for docs/admin-console.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { startMimir, type Mimir } from '../helpers/mimir.ts';
import { register, tokenRequest } from '../helpers/authorize-flow.ts';
import { decodeJwt } from 'jose';
import { signedIn, startConsoleRig, type ConsoleRig } from './support.ts';
import { signIn } from '../oidc/setup.ts';
import { startHub } from '../helpers/hub.ts';
import { cliActor } from '../../src/admin/service.ts';

const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url));

/**
 * Photographs the screen; the file under docs/images/ is (re)written when it is missing or with
 * MIMIR_TEST_UPDATE_SCREENSHOTS=1, so an ordinary test run leaves the committed images alone.
 */
async function shoot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot({ fullPage: true });
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
  const file = `${IMAGES}console-${name}.png`;
  if (process.env.MIMIR_TEST_UPDATE_SCREENSHOTS === '1' || !existsSync(file)) writeFileSync(file, png);
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
    // Every screen goes out with the pages' headers; its CSP allows the hub's own script file and nothing else.
    for (const path of ['/auth/admin/', '/auth/admin/console/api-keys', '/auth/admin/console/service-accounts', '/auth/admin/console/clients',
      '/auth/admin/console/sessions', '/auth/admin/console/signing-keys', '/auth/admin/console/revocations', '/auth/admin/console/audit', '/auth/account/api-keys']) {
      const h = (await page.request.get(`${rig.hub.url}${path}`)).headers();
      assert.equal(h['content-type'], 'text/html; charset=utf-8', path);
      assert.equal(h['cache-control'], 'no-store', path);
      assert.equal(h['x-frame-options'], 'DENY', path);
      assert.deepEqual(h['content-security-policy']!.split('; ').sort(),
        ["base-uri 'none'", "default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "img-src 'self'", "script-src 'self'", "style-src 'self'"], path);
    }
    const script = await page.request.get(`${rig.hub.url}/auth/assets/console.js`);
    assert.match(script.headers()['content-type']!, /^text\/javascript/);
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

  it('what a page shows is escaped: a name with markup is text, and a notice is only one of the hub\'s own', async () => {
    const { page } = admin;
    await page.goto(`${rig.hub.url}/auth/admin/console/api-keys`);
    await page.fill('#f-name', '<img src=x onerror=alert(1)><script>alert(2)</script>');
    await page.click('form[data-form="create-api-key"] button[type="submit"]');
    assert.ok((await page.locator('[data-field="key-name"]').allTextContents()).includes('<img src=x onerror=alert(1)><script>alert(2)</script>'));
    assert.equal(await page.locator('main script, main img').count(), 0);
    for (const done of ['__proto__', 'constructor', '<b>hi</b>']) {
      await page.goto(`${rig.hub.url}/auth/admin/console/api-keys?done=${encodeURIComponent(done)}`);
      assert.equal(await page.locator('[data-field="notice"]').count(), 0, done);
    }
  });

  it('a field the admin API refuses is refused on the page too, naming the field', async () => {
    const { page } = admin;
    await page.goto(`${rig.hub.url}/auth/admin/console/api-keys`);
    await page.fill('#f-name', 'bad');
    await page.fill('#f-scopes', 'has space"quote');
    await page.click('form[data-form="create-api-key"] button[type="submit"]');
    assert.match((await page.textContent('[data-field="error"]'))!, /scopes/);
    const byApi = await rig.api('POST', '/auth/admin/api-keys', { name: 'bad', scopes: ['has space"quote'] });
    assert.equal(byApi.status, 400);
  });

  it('the privilege ceiling is the admin API\'s: an operator (admin:manage, nodes:read) cannot hand out a role beyond that', async () => {
    const op = await signedIn(browser, rig, 'op', '/auth/admin/console/api-keys');
    try {
      const { page } = op;
      await page.fill('#f-name', 'too strong');
      await page.selectOption('#f-role', 'developer');
      const res = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('form[data-form="create-api-key"] button[type="submit"]')]);
      assert.equal(res[0].status(), 403);
      assert.match((await page.textContent('[data-field="error"]'))!, /you do not hold yourself/);
      // Within the ceiling it works, as through the API.
      await page.fill('#f-name', 'reader');
      // (No role would mean the default role, viewer, whose search:execute the operator lacks.)
      await page.selectOption('#f-role', 'operator');
      await page.fill('#f-scopes', 'nodes:read');
      await page.click('form[data-form="create-api-key"] button[type="submit"]');
      assert.equal(await page.locator('[data-field="error"]').count(), 0, await page.locator('main').innerText());
      assert.match((await page.textContent('[data-field="secret"]'))!, /^mimir_/);
      const names = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys.map((k: any) => k.name);
      assert.ok(names.includes('reader') && !names.includes('too strong'));
      const events = await (async () => { await rig.hub.hub.auditLog!.flush(); return rig.hub.hub.auditLog!.query({ principal: 'op', type: 'access_denied' }); })();
      assert.ok(events.events.some((e) => e.reason === 'privilege_ceiling'));
    } finally {
      await op.context.close();
    }
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
      // Introspection (a downstream service asking the hub) names the user too.
      const intro = await fetch(`${rig.hub.url}/auth/introspect`, { method: 'POST', headers: { 'x-api-key': rig.apiKey, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: key }) });
      const introspected = await intro.json() as Record<string, unknown>;
      assert.deepEqual([intro.status, introspected.active, introspected.sub, introspected.username], [200, true, 'dev', 'dev@example.com']);
      const read = await fetch(`${rig.hub.url}/api/nodes/types`, { headers: { 'x-api-key': key } });
      assert.equal(read.status, 200);
      const seen = mimir.find('/api/nodes/types').at(-1)!;
      assert.equal(seen.identity.headers['x-user-id'], 'dev');
      // Narrowed to what was ticked: writing is refused though the developer role may write.
      const write = await fetch(`${rig.hub.url}/api/nodes`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(write.status, 403);

      // Bounded by the user's permissions: a permission they do not hold is refused (form tampered with).
      const csrf = await page.getAttribute('input[name="csrf"]', 'value');
      const over = await page.request.post(`${rig.hub.url}/auth/account/api-keys`, { form: { csrf: csrf!, name: 'grab', scopes: 'admin:manage', expires_in: '30d' }, headers: { origin: rig.hub.url } });
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
  it('service accounts: create (secret shown once), rotate the secret, disable — each checked by the token endpoint and the admin API', async () => {
    const { page } = admin;
    await page.click('nav >> text=Service accounts');
    await page.fill('#f-client_id', 'etl-job');
    await page.fill('#f-name', 'Nightly ETL');
    await page.selectOption('#f-role', 'analyst');
    await page.click('form[data-form="create-service-account"] button[type="submit"]');
    const first = await copied(page);
    const token = (secret: string) => tokenRequest(rig.hub, { grant_type: 'client_credentials', client_id: 'etl-job', client_secret: secret });
    assert.equal((await token(first)).status, 200);
    const listed = (await rig.api('GET', '/auth/admin/service-accounts')).body.service_accounts.find((a: any) => a.clientId === 'etl-job');
    assert.deepEqual([listed.name, listed.roles, listed.disabled], ['Nightly ETL', ['analyst'], false]);

    await page.click('button[aria-label="Rotate secret of etl-job"]');
    const second = await copied(page);
    assert.notEqual(second, first);
    await shoot(page, 'service-accounts');
    assert.equal((await token(second)).status, 200, 'the new secret works');

    await page.click('button[aria-label="Disable etl-job"]');
    await page.waitForURL(/done=service_account_disabled/);
    assert.equal(await page.textContent('[data-field="account-status"]'), 'disabled');
    const disabled = (await rig.api('GET', '/auth/admin/service-accounts')).body.service_accounts.find((a: any) => a.clientId === 'etl-job');
    assert.equal(disabled.disabled, true);
    assert.equal((await token(second)).status, 401, 'a disabled account gets no token');
    await page.click('button[aria-label="Enable etl-job"]');
    await page.waitForURL(/done=service_account_enabled/);
    assert.equal((await token(second)).status, 200);
  });

  it('OAuth clients: a registered (DCR) client is listed and revoked from the page; the API lists it revoked', async () => {
    const reg = await register(rig.hub, { client_name: 'Notebook', redirect_uris: ['http://127.0.0.1:7777/cb'], token_endpoint_auth_method: 'none' });
    assert.equal(reg.status, 201);
    const id = reg.body.client_id as string;
    const { page } = admin;
    await page.click('nav >> text=OAuth clients');
    assert.ok((await page.locator('[data-field="client-id"]').allTextContents()).includes(id));
    await page.click('button[aria-label="Revoke client Notebook"]');
    await page.waitForURL(/done=client_revoked/);
    const clients = (await rig.api('GET', '/auth/admin/clients')).body.clients as Array<{ client_id: string }>;
    assert.ok(!clients.some((c) => c.client_id === id), 'a revoked registration is gone');
    assert.ok(!(await page.locator('[data-field="client-id"]').allTextContents()).includes(id));
  });

  it('OAuth clients: the CIMD allowlist is set from the page; a metadata document URL of another host is refused at once', async () => {
    const authorize = async (clientId: string) => {
      const res = await fetch(`${rig.hub.url}/auth/authorize?${new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: 'https://x.example/cb', code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' })}`, { redirect: 'manual' });
      return res.text();
    };
    // A registered client in the listing (and the photograph).
    assert.equal((await register(rig.hub, { client_name: 'Team Notebook', redirect_uris: ['http://127.0.0.1:7777/cb'], token_endpoint_auth_method: 'none' })).status, 201);
    const { page } = admin;
    await page.goto(`${rig.hub.url}/auth/admin/console/clients`);
    assert.match((await page.textContent('[data-field="allowlist-state"]'))!, /No allowlist/);
    await page.fill('#f-host', '*.tools.example');
    await page.click('form[data-form="allow-host"] button');
    await page.waitForURL(/done=allowlist_changed/);
    await page.fill('#f-host', 'Apps.Partner.example');
    await page.click('form[data-form="allow-host"] button');
    await page.waitForURL(/done=allowlist_changed/);
    assert.deepEqual(await page.locator('[data-field="allowed-host"]').allTextContents(), ['*.tools.example', 'apps.partner.example']);
    assert.deepEqual((await rig.api('GET', '/auth/admin/cimd-allowlist')).body.hosts, ['*.tools.example', 'apps.partner.example']);
    await shoot(page, 'clients');
    // Another host is refused before anything is fetched; a listed one gets as far as fetching (unreachable here).
    assert.match(await authorize('https://evil.example/client.json'), /only from allowed hosts, and evil\.example is not one/);
    assert.doesNotMatch(await authorize('https://mcp.tools.example/client.json'), /allowed hosts/);
    // A bad entry is refused, naming what is accepted.
    await page.fill('#f-host', 'not a host/');
    await page.click('form[data-form="allow-host"] button');
    assert.match((await page.textContent('[data-field="error"]'))!, /host name/);
    await page.click('button[aria-label="Remove *.tools.example from the allowlist"]');
    await page.waitForURL(/done=allowlist_changed/);
    await page.click('button[aria-label="Remove apps.partner.example from the allowlist"]');
    await page.waitForURL(/done=allowlist_changed/);
    assert.deepEqual((await rig.api('GET', '/auth/admin/cimd-allowlist')).body.hosts, []);
    assert.doesNotMatch(await authorize('https://evil.example/client.json'), /allowed hosts/);
  });

  it('sessions: found by user and ended from the page; the user\'s cookie stops working', async () => {
    const ana = await signedIn(browser, rig, 'ana', '/auth/account');
    try {
      const cookie = (await ana.context.cookies(rig.hub.url)).find((c) => c.name === '__Host-mimir_session')!;
      const me = () => fetch(`${rig.hub.url}/auth/me`, { headers: { cookie: `${cookie.name}=${cookie.value}` } });
      assert.equal((await me()).status, 200);
      const { page } = admin;
      await page.click('nav >> text=Sessions');
      await page.fill('#f-user', 'ana');
      await page.click('form[role="search"] button');
      await page.waitForURL(/user=ana/);
      const rows = await page.locator('[data-field="sessions"] tbody tr').count();
      assert.equal(rows, 1, 'only ana\'s session');
      const listed = (await rig.api('GET', '/auth/admin/sessions?user=ana')).body.sessions;
      assert.deepEqual(listed.map((x: any) => [x.sub, x.sid]), [['ana', await page.textContent('[data-field="sid"]')]]);
      assert.ok(!JSON.stringify(listed).includes(cookie.value), 'never the cookie');
      await shoot(page, 'sessions');
      await page.click('[data-field="sessions"] tbody tr button');
      await page.waitForURL(/done=session_ended/);
      assert.equal((await me()).status, 401, 'the ended session no longer authenticates');
      assert.deepEqual((await rig.api('GET', '/auth/admin/sessions?user=ana')).body.sessions, []);
      // The same through the admin API: a session signed in by HTTP, listed and ended.
      const { session } = await signIn(rig, 'corp', { login: 'ana' });
      const byHttp = () => fetch(`${rig.hub.url}/auth/me`, { headers: { cookie: `${rig.hub.config.session.cookie.name}=${session}` } });
      assert.equal((await byHttp()).status, 200);
      const [live] = (await rig.api('GET', '/auth/admin/sessions?user=ana')).body.sessions;
      assert.deepEqual(await rig.api('DELETE', `/auth/admin/sessions/${live.sid}`), { status: 200, body: { sid: live.sid, ended: true } });
      assert.equal((await byHttp()).status, 401);
      assert.match((await page.textContent('[data-field="sessions"]'))!, /No live session/);
    } finally {
      await ana.context.close();
    }
  });

  it('signing keys: rotated from the page; the API names the new current key', async () => {
    const before = (await rig.api('GET', '/auth/admin/signing-keys')).body.current;
    const { page } = admin;
    await page.click('nav >> text=Signing keys');
    await page.click('form[data-form="rotate-signing-key"] button');
    await page.waitForURL(/done=signing_key_rotated/);
    const after = (await rig.api('GET', '/auth/admin/signing-keys')).body;
    assert.notEqual(after.current, before);
    assert.ok(after.keys.some((k: any) => k.kid === before), 'the previous key is still published');
    assert.equal(await page.locator('[data-field="kid"]').first().textContent() !== null, true);
    await shoot(page, 'signing-keys');
  });

  it('revocations: an access token revoked by its jti from the page stops working', async () => {
    const created = await rig.api('POST', '/auth/admin/service-accounts', { client_id: 'reporter', roles: ['viewer'] });
    const issued = await tokenRequest(rig.hub, { grant_type: 'client_credentials', client_id: 'reporter', client_secret: created.body.client_secret });
    const access = issued.body.access_token as string;
    const jti = decodeJwt(access).jti as string;
    const me = () => fetch(`${rig.hub.url}/auth/me`, { headers: { authorization: `Bearer ${access}` } });
    assert.equal((await me()).status, 200);
    const { page } = admin;
    await page.click('nav >> text=Revocations');
    await page.selectOption('#f-type', 'access_token');
    await page.fill('#f-id', jti);
    await shoot(page, 'revocations');
    await page.click('form[data-form="revoke"] button[type="submit"]');
    await page.waitForURL(/done=revoked/);
    assert.equal((await me()).status, 401);
    // A malformed id is refused with the field named, as by the API.
    await page.fill('#f-id', 'not an id!');
    await page.click('form[data-form="revoke"] button[type="submit"]');
    assert.match((await page.textContent('[data-field="error"]'))!, /^id:/);
  });

  it('audit log: every instance\'s events from the store, newest first, filtered by principal, event, outcome and time, paginated', async () => {
    // 60 refused authentications (for the overview): one stored event per second and reason, counted.
    const failures = async () => (await rig.hub.hub.auditLog!.query({ type: 'authentication_failed', perPage: 500 })).events.reduce((n, e) => n + Number(e.details.count ?? 1), 0);
    await rig.hub.hub.auditLog!.flush();
    const failedBefore = await failures();
    for (let i = 0; i < 60; i++) await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': `mimir_${'0'.repeat(16)}_${'A'.repeat(43)}` } });
    await rig.hub.hub.auditLog!.flush();
    assert.equal(await failures(), failedBefore + 60);
    // 60 changes made through the admin API with the checker key, so its events span two pages of 50.
    const checker = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys.find((k: any) => k.name === 'checker').id as string;
    const earlier = (await rig.hub.hub.auditLog!.query({ principal: checker, type: 'admin' })).total;
    const total = earlier + 60;
    assert.ok(total < 100);
    for (let i = 0; i < 60; i++) assert.equal((await rig.api('POST', '/auth/admin/api-keys', { name: `bulk-${i}`, roles: ['viewer'] })).status, 201);
    await rig.hub.hub.auditLog!.flush();
    const { page } = admin;
    await page.click('nav >> text=Audit log');
    await page.fill('#f-principal', checker);
    await page.selectOption('#f-type', 'admin');
    await page.selectOption('#f-outcome', 'success');
    await page.click('form[data-form="audit-filter"] button');
    await page.waitForURL(/type=admin/);
    assert.equal(await page.textContent('[data-field="page"]'), `Page 1 of 2 (${total} events)`);
    const types = await page.locator('[data-field="event-type"]').allTextContents();
    assert.equal(types.length, 50);
    assert.ok(types.every((t) => t === 'admin'));
    assert.ok((await page.locator('[data-field="event-principal"]').allTextContents()).every((p) => p === `api-key:${checker} (api-key)`));
    const times = await page.$$eval('[data-field="audit"] time', (els) => els.map((e) => Date.parse((e as any).getAttribute('datetime'))));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    assert.match((await page.locator('[data-field="audit"] tbody tr').first().textContent())!, /action=api_key_created/);
    await page.click('a[rel="next"]');
    await page.waitForURL(/page=2/);
    assert.equal(await page.locator('[data-field="event-type"]').count(), total - 50);
    await page.click('a[rel="prev"]');
    await page.waitForURL(/page=1/);

    // By principal: the admin's changes made through the console, the same events the admin API writes.
    await page.goto(`${rig.hub.url}/auth/admin/console/audit?principal=root&type=admin&outcome=success`);
    const actions = await page.locator('[data-field="audit"] tbody tr').allTextContents();
    for (const action of ['api_key_created', 'api_key_revoked', 'service_account_created', 'service_account_secret_rotated', 'service_account_disabled', 'oauth_client_revoked']) {
      assert.ok(actions.some((r) => r.includes(`action=${action}`)), action);
    }
    assert.ok((await page.locator('[data-field="event-principal"]').allTextContents()).every((p) => p.startsWith('root ')));
    await shoot(page, 'audit');
    // By time: nothing after the future.
    const future = new Date(Date.now() + 3600_000).toISOString().slice(0, 16);
    await page.goto(`${rig.hub.url}/auth/admin/console/audit?from=${future}`);
    assert.match((await page.textContent('[data-field="audit"]'))!, /No event matches/);
    // The admin API reads the same store as the page.
    const byApi = await rig.api('GET', `/auth/admin/audit?principal=${checker}&type=admin&outcome=success&per_page=50&page=2`);
    assert.deepEqual([byApi.status, byApi.body.total, byApi.body.pages, byApi.body.events.length], [200, total, 2, total - 50]);
    const bad = await rig.api('GET', '/auth/admin/audit?outcome=maybe');
    assert.deepEqual([bad.status, bad.body.error], [400, 'invalid_request']);
    assert.match(bad.body.error_description, /^outcome:/);
  });

  it('overview: requests, denials and tokens issued over the last hour, as an SVG chart drawn on the server', async () => {
    const { page } = admin;
    await page.click('nav >> text=Overview');
    const minutes = rig.hub.hub.metrics.recent.lastHour();
    const sum = (k: 'requests' | 'denials' | 'tokens') => minutes.reduce((a, m) => a + m[k], 0);
    assert.ok(sum('requests') > 60 && sum('denials') >= 60 && sum('tokens') >= 4, JSON.stringify([sum('requests'), sum('denials'), sum('tokens')]));
    for (const k of ['requests', 'denials', 'tokens'] as const) {
      assert.equal(Number(await page.textContent(`[data-field="total-${k}"]`)), sum(k), k);
      const points = (await page.getAttribute(`polyline[data-series="${k}"]`, 'points'))!.split(' ');
      assert.equal(points.length, 60, 'one point a minute');
    }
    assert.match((await page.textContent('svg[data-field="chart"] desc'))!, new RegExp(`Requests: ${sum('requests')}`));
    await shoot(page, 'overview');
  });
});

describe('admin console with cookie sessions', () => {
  it('says sessions cannot be listed, through the admin API and the admin service', async () => {
    const t = await startHub({ storage: 'memory', env: { MIMIR_SESSION_STORAGE: 'cookie' } });
    try {
      const { key } = await t.hub.admin.createApiKey(cliActor('test'), { name: 'a', roles: ['admin'] });
      const res = await fetch(`${t.url}/auth/admin/sessions`, { headers: { 'x-api-key': key } });
      assert.equal(res.status, 404);
      assert.match(((await res.json()) as { error_description: string }).error_description, /MIMIR_SESSION_STORAGE=cookie/);
      assert.equal(await t.hub.admin.listSessions(cliActor('test')), null);
    } finally {
      await t.close();
    }
  });
});
