/**
 * The admin console's test rig: a hub with a real loopback IdP and secure (`__Host-`) session
 * cookies, Chromium signed in through the IdP, and an admin API key (made with the CLI actor) to
 * check through the JSON admin API what the pages did.
 */
import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { cliActor } from '../../src/admin/service.ts';
import { startRig, type Rig, type RigOptions } from '../oidc/setup.ts';

/** Login names of the IdP and the roles their sign-in gives. */
export const USERS = {
  root: { roles: ['admin'] },
  dev: { roles: ['developer'] },
  ana: { roles: ['analyst'] },
  op: { roles: ['operator'] },
};

/** Mimir's rbac.json plus an operator: admin:manage, but not everything (the privilege ceiling bites). */
export const RBAC = (() => {
  const rbac = JSON.parse(readFileSync(new URL('../fixtures/mimir-rbac.json', import.meta.url), 'utf8'));
  rbac.roleMappings.operator = { description: 'Runs the hub, reads the graph', permissions: ['admin:manage', 'nodes:read'] };
  return rbac;
})();

export interface ConsoleRig extends Rig {
  /** An admin API key for checking effects through the admin API. */
  apiKey: string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export async function startConsoleRig(options: RigOptions = {}): Promise<ConsoleRig> {
  const rig = await startRig({ corp: 'generic' }, {
    storage: 'sqlite', ...options,
    idp: { users: USERS, ...options.idp },
    env: { MIMIR_SESSION_COOKIE_SECURE: 'true', MIMIR_RBAC_CONFIG: JSON.stringify(RBAC), ...options.env },
  });
  const { key } = await rig.hub.hub.admin.createApiKey(cliActor('console-test'), { name: 'checker', roles: ['admin'] });
  return {
    ...rig, apiKey: key,
    async api(method, path, body) {
      const res = await fetch(`${rig.hub.url}${path}`, {
        method, headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: await res.json() };
    },
  };
}

/** A new browser context signed in as `login` (through the IdP's login form), on `path`. */
export async function signedIn(browser: Browser, rig: Rig, login: string, path = '/auth/admin/'): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${rig.hub.url}${path}`);
  await page.waitForURL((u) => u.href.startsWith(rig.idps.corp!.origin));
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
  await page.waitForURL(`${rig.hub.url}${path}`);
  return { context, page };
}
