import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { startRig, type Rig } from './setup.ts';

describe('the sign-in in a real browser (Chromium)', () => {
  let rig: Rig;
  let browser: Browser;
  before(async () => {
    rig = await startRig({ kc: 'keycloak', az: 'azure' }, { storage: 'redis' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('login page → provider button → IdP login form → back → /auth/me shows the user → sign out → 401', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${rig.hub.url}/auth/login?returnTo=%2Fauth%2Faccount`);
      await page.click('a[data-provider="az"]');
      await page.waitForURL((u) => u.href.startsWith(rig.idps.az!.origin));
      await page.fill('input[name="login"]', 'ada');
      await page.fill('input[name="password"]', 'correct horse');
      await page.click('button[type="submit"]');
      await page.waitForURL(`${rig.hub.url}/auth/account`);
      assert.equal(await page.textContent('[data-field="user-id"]'), 'ada');
      assert.match(await page.textContent('[data-field="roles"]') ?? '', /developer/);

      const meRes = await page.goto(`${rig.hub.url}/auth/me`);
      assert.equal(meRes!.status(), 200);
      const body = await meRes!.json() as Record<string, unknown>;
      assert.equal(body.sub, 'ada');
      assert.equal(body.auth_method, 'session');
      assert.equal(body.provider, 'az');
      assert.equal(body.tenant, '00000000-0000-0000-0000-000000000001');

      await page.goto(`${rig.hub.url}/auth/account`);
      await page.click('button[type="submit"]');
      await page.waitForURL((u) => u.href.startsWith(rig.idps.az!.origin)); // RP-initiated logout at the IdP
      const after = await page.goto(`${rig.hub.url}/auth/me`);
      assert.equal(after!.status(), 401);
    } finally {
      await context.close();
    }
  });
});
