import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { decodeJwt } from 'jose';
import { startRig, type Rig } from '../oidc/setup.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));

function cli(args: string[], home: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: home, env: { PATH: process.env.PATH ?? '', HOME: home } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('mimir-auth login, whoami, token, logout (RFC 8252 loopback flow, scripted browser)', () => {
  let rig: Rig;
  let browser: Browser;
  const home = mkdtempSync(join(tmpdir(), 'mimir-home-'));

  before(async () => {
    rig = await startRig({ corp: 'okta' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('signs in end to end and stores encrypted credentials', async () => {
    const child = spawn(process.execPath, [BIN, 'login', '--url', rig.hub.url, '--no-browser', '--timeout', '90'], { cwd: home, env: { PATH: process.env.PATH ?? '', HOME: home } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${stderr}`)), 20_000);
      child.stderr.on('data', () => {
        const m = /(http:\/\/127\.0\.0\.1:\d+\/auth\/authorize\?\S+)/.exec(stderr);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      });
    });
    assert.match(url, /code_challenge_method=S256/);
    assert.match(url, /client_id=mimir-cli/);

    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      // One provider: straight to the IdP's login form.
      await page.waitForURL((u) => u.href.startsWith(rig.idps.corp!.origin));
      await page.fill('input[name="login"]', 'grace');
      await page.fill('input[name="password"]', 'pw');
      await page.click('button[type="submit"]');
      // Back at the hub: the consent page names the CLI.
      await page.waitForSelector('[data-field="client-name"]');
      assert.equal(await page.textContent('[data-field="client-name"]'), 'mimir-auth CLI');
      assert.match(await page.textContent('[data-field="redirect-host"]') ?? '', /^127\.0\.0\.1:\d+$/);
      await page.click('button[value="allow"]');
      await page.waitForURL(/127\.0\.0\.1:\d+\/callback/);
      assert.match(await page.textContent('body') ?? '', /Signed in/);
    } finally {
      await context.close();
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /Credentials saved \(encrypted\)/);
    assert.match(stderr, /Waiting for the browser|Sign in to/);

    const file = join(home, '.mimir', 'credentials');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, '.mimir', 'credentials.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, '.mimir')).mode & 0o777, 0o700);
    assert.ok(!readFileSync(file, 'utf8').includes('eyJ'), 'no token in clear in the file');
  });

  it('whoami and token use the stored credentials', async () => {
    const who = await cli(['whoami'], home);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^user\s+grace$/m);
    const token = await cli(['token'], home);
    assert.equal(token.code, 0, token.stderr);
    const jwt = token.stdout.trim();
    assert.equal(token.stdout, `${jwt}\n`, 'only the token is printed');
    const claims = decodeJwt(jwt);
    assert.equal(claims.sub, 'grace');
    assert.equal(claims.client_id, 'mimir-cli');
    assert.equal(claims.aud, rig.hub.url, 'the origin root (RFC 8707): good for the API, /auth/me and /mcp alike');
    const me = await fetch(`${rig.hub.url}/auth/me`, { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(me.status, 200);
  });

  it('a tampered credentials file gives a clear message', async () => {
    const file = join(home, '.mimir', 'credentials');
    const original = readFileSync(file, 'utf8');
    const parts = original.trim().split('.');
    parts[3] = parts[3]!.slice(0, -2) + (parts[3]!.endsWith('AA') ? 'BB' : 'AA');
    writeFileSync(file, parts.join('.'));
    const r = await cli(['whoami'], home);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /corrupt or has been tampered with; run `mimir-auth login`/);
    writeFileSync(file, original);
  });

  it('logout revokes at the hub and deletes the file', async () => {
    const token = (await cli(['token'], home)).stdout.trim();
    const out = await cli(['logout'], home);
    assert.equal(out.code, 0, out.stderr);
    assert.ok(!existsSync(join(home, '.mimir', 'credentials')));
    const me = await fetch(`${rig.hub.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 401, 'the access token was revoked at the hub');
    const who = await cli(['whoami'], home);
    assert.equal(who.code, 1);
    assert.match(who.stderr, /not signed in/);
  });
});
