/**
 * The attacker review of the admin console and the personal API-keys page: each finding replayed
 * over real HTTP against a real hub (signed in through the IdP in Chromium where a session is needed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { signedIn, startConsoleRig, type ConsoleRig } from './support.ts';
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
    rig = await startConsoleRig();
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
      assert.match(await res.text(), /expires_in: .*accepted is 1 second to 3650d/);
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
});
