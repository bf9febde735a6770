/**
 * Issue 21, "sign-in that shows who you are", read in a real browser (Chromium): the account
 * page names the person, their roles and what those roles let them do; dates are written for
 * people and never broken inside a word; consent says each permission in words; an error page
 * says what to do next and shows the request id its log line carries; the pages wear the
 * configured brand, and their CSP lets in the logo's origin and nothing else.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { contentSecurityPolicy } from '../../src/pages/respond.ts';
import { describePermission } from '../../src/rbac/describe.ts';
import { launchChromium } from '../helpers/browser.ts';
import { authorizeUrl, pkce, register } from '../helpers/authorize-flow.ts';
import { startRig, type Rig } from '../oidc/setup.ts';

// What the functions given to page.$eval use, run in the page (tsconfig has no DOM library).
declare const document: { createRange(): { setStart(n: unknown, o: number): void; setEnd(n: unknown, o: number): void; getClientRects(): Iterable<{ top: number }> } };
declare function getComputedStyle(el: unknown): { fontSize: string; backgroundColor: string };
type HTMLImageElement = { src: string; naturalWidth: number };

const LOGO = 'https://cdn.acme.example/brand/logo.svg';
const LOGO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="32"><rect width="64" height="32" fill="#a30"/></svg>';

function directives(csp: string): Map<string, string[]> {
  return new Map(csp.split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
    const [name, ...values] = d.split(/\s+/);
    return [name!, values];
  }));
}

describe('the pages show who you are and what you may do (issue 21)', () => {
  let rig: Rig;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    rig = await startRig({ corp: 'generic' }, {
      storage: 'memory',
      // A conformant IdP: name and email come from userinfo.
      idp: { conformIdTokenClaims: true },
      logDestination: { write: (line: string) => { logLines.push(JSON.parse(line) as Record<string, unknown>); } },
      env: { MIMIR_LOG_LEVEL: 'info', MIMIR_BRAND_NAME: 'Acme Memory', MIMIR_BRAND_LOGO_URL: LOGO, MIMIR_BRAND_ACCENT: '#aa3300' },
    });
    browser = await launchChromium();
    // Narrow, as on a phone: at 320 px the old 'Sun, 06 Dec 2026 14:05:00 GMT' broke inside '2026' and 'GMT'.
    context = await browser.newContext({ viewport: { width: 320, height: 900 } });
    // The logo's host is on the public internet, which the tests cannot reach: answered here.
    await context.route('https://cdn.acme.example/**', (route) => route.fulfill({ status: 200, contentType: 'image/svg+xml', body: LOGO_SVG }));
    page = await context.newPage();
    await page.goto(`${rig.hub.url}/auth/account`);
    await page.waitForURL((u) => u.href.startsWith(rig.idps.corp!.origin));
    await page.fill('input[name="login"]', 'ada');
    await page.fill('input[name="password"]', 'any password');
    await page.click('button[type="submit"]');
    await page.waitForURL(`${rig.hub.url}/auth/account`);
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await rig?.close();
  });

  it('the account page shows name, email and roles, and each permission the roles grant in words with its code in small print', async () => {
    assert.equal(await page.innerText('[data-field="name"]'), 'ada Doe');
    assert.equal(await page.innerText('[data-field="email"]'), 'ada@example.com');
    assert.equal(await page.innerText('[data-field="roles"]'), 'developer');
    const shown = await page.$$eval('[data-field="permissions"] li', (items) => items.map((li) => ({
      words: li.querySelector('span')?.textContent ?? '',
      code: li.querySelector('code')?.textContent ?? '',
      wordsSize: parseFloat(getComputedStyle(li.querySelector('span')!).fontSize),
      codeSize: parseFloat(getComputedStyle(li.querySelector('code')!).fontSize),
    })));
    // Exactly what the one authorization rule says a session with these roles holds.
    const expected = rig.hub.hub.authorizer.permissions({ roles: ['developer'], scopes: [], auth_method: 'session' });
    assert.deepEqual(shown.map((p) => p.code).sort(), [...expected].sort());
    for (const p of shown) {
      assert.equal(p.words, describePermission(p.code));
      assert.notEqual(p.words, p.code, `${p.code} is described in words`);
      assert.ok(p.codeSize < p.wordsSize, `${p.code}: the code is in smaller print (${p.codeSize}px < ${p.wordsSize}px)`);
    }
    assert.ok(shown.some((p) => p.code === 'nodes:read' && /memory graph/.test(p.words)));
  });

  it('dates read "6 Dec 2026, 14:05 UTC" and no word of them is broken across lines', async () => {
    for (const field of ['session-ends', 'signed-in-at']) {
      const text = await page.innerText(`[data-field="${field}"]`);
      assert.match(text, /^\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}, \d{2}:\d{2} UTC$/, field);
      // As rendered: each word of the date lies on one line (a word broken across lines has boxes on two).
      const broken = await page.$eval(`[data-field="${field}"]`, (el) => {
        const out: string[] = [];
        const texts: Array<{ textContent: string | null }> = [];
        const walk = (n: { nodeType: number; textContent: string | null; childNodes: ArrayLike<unknown> }) => {
          if (n.nodeType === 3) texts.push(n);
          for (const c of Array.from(n.childNodes)) walk(c as typeof n);
        };
        walk(el as unknown as Parameters<typeof walk>[0]);
        for (const node of texts) {
          for (const m of (node.textContent ?? '').matchAll(/\S+/g)) {
            const range = document.createRange();
            range.setStart(node, m.index);
            range.setEnd(node, m.index + m[0].length);
            const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            if (lines.size > 1) out.push(m[0]);
          }
        }
        return out;
      });
      assert.deepEqual(broken, [], `${field}: words broken across lines`);
    }
  });

  it('consent describes each permission asked for in words, with the code in small print', async () => {
    const redirectUri = 'http://127.0.0.1:7777/callback';
    const reg = await register(rig.hub, { client_name: 'Notebook', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' });
    assert.equal(reg.status, 201);
    const scopes = ['nodes:read', 'search:execute', 'mcp:tool:memory_node'];
    await page.goto(authorizeUrl(rig.hub, {
      response_type: 'code', client_id: reg.body.client_id as string, redirect_uri: redirectUri, code_challenge: pkce().challenge,
      code_challenge_method: 'S256', scope: scopes.join(' '), state: 's1',
    }));
    assert.equal(await page.innerText('[data-field="client-name"]'), 'Notebook');
    const shown = await page.$$eval('[data-field="scopes"] li', (items) => items.map((li) => ({
      words: li.querySelector('span')?.textContent ?? '', code: li.querySelector('code')?.textContent ?? '',
      small: parseFloat(getComputedStyle(li.querySelector('code')!).fontSize) < parseFloat(getComputedStyle(li.querySelector('span')!).fontSize),
    })));
    assert.ok(shown.every((s) => s.small), 'every code in smaller print than its words');
    assert.deepEqual(shown.map((s) => s.code), scopes);
    assert.deepEqual(shown.map((s) => s.words), [
      'Read the memory graph: nodes, their types and details',
      'Search the memory graph (semantic vector search)',
      'Use the MCP tool memory_node',
    ]);
  });

  it('/auth/authorize?client_id=nope: the error page says what to do and shows the request id, which is in the hub\'s log line', async () => {
    const res = await page.goto(`${rig.hub.url}/auth/authorize?client_id=nope`);
    assert.equal(res!.status(), 400);
    assert.match(await page.innerText('[data-field="next-step"]'), /^What to do: .*(application|administrator)/);
    const id = await page.innerText('[data-field="request-id"]');
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(res!.headers()['x-request-id'], id);
    const line = logLines.find((l) => l.reqId === id);
    assert.ok(line, `a log line carries request id ${id}`);
    assert.equal(line.status, 400);
  });

  it('branding: the name, logo and accent colour are on the pages; the CSP lets in the logo\'s origin and nothing else new', async () => {
    const account = await page.goto(`${rig.hub.url}/auth/account`);
    assert.match(await page.title(), /· Acme Memory$/);
    assert.equal(await page.innerText('[data-field="brand"]'), 'Acme Memory');
    const logo = await page.$eval('[data-field="brand"] img', (img) => ({ src: (img as HTMLImageElement).src, width: (img as HTMLImageElement).naturalWidth }));
    assert.equal(logo.src, LOGO);
    assert.ok(logo.width > 0, 'the logo loaded under the page\'s CSP');
    assert.equal(await page.$eval('button.primary', (b) => getComputedStyle(b).backgroundColor), 'rgb(170, 51, 0)');

    const csp = directives(account!.headers()['content-security-policy'] ?? '');
    assert.deepEqual(csp.get('img-src'), ["'self'", 'https://cdn.acme.example']);
    const plain = directives(contentSecurityPolicy({ formAction: 'unrestricted' }));
    for (const [name, values] of plain) if (name !== 'img-src') assert.deepEqual(csp.get(name), values, `${name} unchanged`);
    assert.deepEqual([...csp.keys()].sort(), [...plain.keys()].sort(), 'no directive added');

    // The other pages too: the error page and the login chooser of this hub.
    const error = await page.goto(`${rig.hub.url}/auth/authorize?client_id=nope`);
    assert.equal(await page.innerText('[data-field="brand"]'), 'Acme Memory');
    assert.deepEqual(directives(error!.headers()['content-security-policy'] ?? '').get('img-src'), ["'self'", 'https://cdn.acme.example']);
  });

  it('every permission of the vocabulary has words: Mimir\'s (from its routes) and the hub\'s', () => {
    const facts = JSON.parse(readFileSync(new URL('../fixtures/mimir-http-surface.json', import.meta.url), 'utf8')) as { routes: Array<{ permission: string | null }> };
    const vocabulary = new Set([...facts.routes.map((r) => r.permission).filter((p): p is string => p !== null),
      'mcp:*', 'orchestration:cancel', '*', 'admin:manage', 'metrics:read', 'upstream:access', 'introspect']);
    const unknown = describePermission('made:up');
    for (const p of vocabulary) assert.notEqual(describePermission(p), unknown, `${p} has no words`);
    assert.equal(describePermission('mcp:tool:todo_list'), 'Use the MCP tool todo_list');
    assert.match(describePermission('orchestration:*'), /^Everything about workflows/);
  });

  it('a logo on the hub\'s own origin adds nothing to the CSP', () => {
    assert.deepEqual(directives(contentSecurityPolicy({ brand: { logoUrl: '/brand/logo.svg' } })).get('img-src'), ["'self'"]);
    assert.deepEqual(directives(contentSecurityPolicy({})).get('img-src'), ["'self'"]);
  });
});
