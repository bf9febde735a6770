/**
 * The attacker review of the admin console and the personal API-keys page: each finding replayed
 * over real HTTP against a real hub (signed in through the IdP in Chromium where a session is needed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { signedIn, startConsoleRig, USERS, type ConsoleRig } from './support.ts';
import { cli } from '../admin/support.ts';

describe('attacker review: console and personal keys', () => {
  let rig: ConsoleRig;
  let browser: Browser;
  let dev: { context: BrowserContext; page: Page };
  let admin: { context: BrowserContext; page: Page };
  const post = async (who: { page: Page }, path: string, form: Record<string, string>) => {
    await who.page.goto(`${rig.hub.url}/auth/account/api-keys`);
    const csrf = (await who.page.getAttribute('input[name="csrf"]', 'value'))!;
    return who.page.request.post(`${rig.hub.url}${path}`, { form: { csrf, ...form }, headers: { origin: rig.hub.url }, maxRedirects: 0 });
  };
  const cliEnv = () => ({ MIMIR_DATA_DIR: rig.hub.dataDir, MIMIR_TOKEN_STORAGE: 'sqlite', MIMIR_LOG_AUTH_EVENTS: 'false' });

  before(async () => {
    // ghosty's IdP also gives a role the RBAC configuration does not define.
    rig = await startConsoleRig({ idp: { users: { ...USERS, ghosty: { roles: ['developer', 'ghost'] }, 'api-key:zzz': { roles: ['developer'] } } } });
    browser = await launchChromium();
    dev = await signedIn(browser, rig, 'dev', '/auth/account/api-keys');
    admin = await signedIn(browser, rig, 'root', '/auth/admin/');
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('H1: a lifetime beyond 10 years is refused with 400 naming expires_in, on every path that parses one', async () => {
    for (const expires_in of ['99999999999d', '99999999999999999999999', '3651d']) {
      const res = await post(dev, '/auth/account/api-keys', { name: 'boom', expires_in });
      assert.equal(res.status(), 400, `personal page, ${expires_in}`);
      assert.match(await res.text(), /expires_in: .*accepted is 1 second to (3650|90)d/);
      const console = await post(admin, '/auth/admin/console/api-keys', { name: 'boom', role: 'viewer', expires_in });
      assert.equal(console.status(), 400, `console, ${expires_in}`);
      const api = await rig.api('POST', '/auth/admin/api-keys', { name: 'boom', roles: ['viewer'], expires_in });
      assert.deepEqual([api.status, api.body.error], [400, 'invalid_request'], `admin API, ${expires_in}`);
      assert.match(api.body.error_description, /^expires_in: .*accepted is 1 second to 3650d/);
    }
    const seconds = await rig.api('POST', '/auth/admin/api-keys', { name: 'boom', roles: ['viewer'], expires_in: 8.64e15 });
    assert.equal(seconds.status, 400, 'a number of seconds beyond the cap too');
    const viaCli = await cli(['keys', 'create', '--name', 'boom', '--roles', 'viewer', '--expires-in', '99999999999d'], cliEnv(), rig.hub.dataDir);
    assert.notEqual(viaCli.code, 0);
    assert.match(viaCli.stderr, /expires_in: .*3650d/);
    const listed = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys;
    assert.ok(!listed.some((k: any) => k.name === 'boom'), 'nothing was stored');
    const fine = await rig.api('POST', '/auth/admin/api-keys', { name: 'decade', roles: ['viewer'], expires_in: '3650d' });
    assert.equal(fine.status, 201);
  });

  it('H1: a stored expiry that is no date renders as "—" on both pages and in keys list, instead of failing them', async () => {
    const made = await post(dev, '/auth/account/api-keys', { name: 'legit', expires_in: '30d' });
    assert.ok(made.status() < 400, String(made.status()));
    const owner = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys.find((k: any) => k.name === 'legit').owner;
    // As data written before the cap was: an expiry of 8.64e15 seconds, beyond what a Date holds.
    await rig.hub.hub.apiKeys.create({ name: 'stored-boom', roles: ['developer'], expiresInSeconds: 8.64e15, owner });
    for (const [who, path] of [[dev, '/auth/account/api-keys'], [admin, '/auth/admin/console/api-keys']] as const) {
      const res = await who.page.goto(`${rig.hub.url}${path}`);
      assert.equal(res!.status(), 200, path);
      const row = (await who.page.textContent('tr:has-text("stored-boom")'))!;
      assert.match(row, /—/, path);
    }
    const list = await cli(['keys', 'list'], cliEnv(), rig.hub.dataDir);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /stored-boom.*—/);
  });

  it('M1: a personal key must expire, within 90 days; the form offers 30 days by default and nothing longer than 90', async () => {
    const none = await post(dev, '/auth/account/api-keys', { name: 'forever' });
    assert.equal(none.status(), 400);
    assert.match(await none.text(), /expires_in: a personal key must expire; accepted is 1 second to 90d/);
    const long = await post(dev, '/auth/account/api-keys', { name: 'forever', expires_in: '91d' });
    assert.equal(long.status(), 400);
    assert.match(await long.text(), /expires_in: .*accepted is 1 second to 90d/);
    const listed = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys;
    assert.ok(!listed.some((k: any) => k.name === 'forever'), 'nothing was stored');
    await dev.page.goto(`${rig.hub.url}/auth/account/api-keys`);
    const offered = await dev.page.$$eval('#f-expires_in option', (els) => els.map((e) => (e as any).value as string));
    assert.deepEqual(offered, ['7d', '30d', '90d']);
    assert.equal(await dev.page.inputValue('#f-expires_in'), '30d');
    const ok = await post(dev, '/auth/account/api-keys', { name: 'quarter', expires_in: '90d' });
    assert.ok(ok.status() < 400, String(ok.status()));
    const quarter = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys.find((k: any) => k.name === 'quarter');
    assert.ok(quarter.expiresAt - quarter.createdAt === 90 * 86400);
  });

  it('M1: a personal key keeps only the roles the RBAC configuration defines, not an unknown IdP role', async () => {
    const ghosty = await signedIn(browser, rig, 'ghosty', '/auth/account/api-keys');
    try {
      const res = await post(ghosty, '/auth/account/api-keys', { name: 'ghost key', expires_in: '7d' });
      assert.ok(res.status() < 400, String(res.status()));
      const made = (await rig.api('GET', '/auth/admin/api-keys')).body.api_keys.find((k: any) => k.name === 'ghost key');
      assert.deepEqual([made.owner.sub, made.roles], ['ghosty', ['developer']]);
    } finally {
      await ghosty.context.close();
    }
  });

  it('L3: a personal key of a user whose sub looks like an API key id is that user toward Mimir, never api-key:<id>', async () => {
    const odd = await signedIn(browser, rig, 'api-key:zzz', '/auth/account/api-keys');
    try {
      const res = await post(odd, '/auth/account/api-keys', { name: 'odd key', expires_in: '7d' });
      assert.ok(res.status() < 400, String(res.status()));
      const secret = /data-field="secret"[^>]*>\s*(mimir_[\w-]+)/.exec(await res.text())?.[1];
      assert.ok(secret, 'the new key is shown once');
      const session = await (await odd.page.request.get(`${rig.hub.url}/auth/me`)).json();
      const viaKey = await (await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': secret } })).json() as any;
      assert.match(viaKey.upstream.id, /^[a-z0-9-]+:api-key:zzz$/, viaKey.upstream.id);
      assert.equal(viaKey.upstream.id, session.upstream.id, 'the same id as the user\'s own session');
      // An owner-less key still is api-key:<its id>.
      const plain = await rig.api('POST', '/auth/admin/api-keys', { name: 'plain', roles: ['viewer'], expires_in: '1d' });
      const plainMe = await (await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': plain.body.key } })).json() as any;
      assert.equal(plainMe.upstream.id, `api-key:${plain.body.id}`);
    } finally {
      await odd.context.close();
    }
  });
});
