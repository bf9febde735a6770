/**
 * Issue 21, the demo: `npm run demo` as a person runs it. It prints the URL and the users; a
 * person signs in as the developer in a browser (Chromium), sees who they are on the account
 * page, runs the printed command that creates an API key, calls the Mimir-shaped upstream
 * through the hub with the printed curl commands, and stops it all with Ctrl-C (SIGINT to the
 * process group, as a terminal sends it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';

const root = join(import.meta.dirname, '..', '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sh(command: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Whether something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

describe('npm run demo: sign in, see your roles, create a key, call Mimir through the hub, Ctrl-C', () => {
  let demo: ChildProcess;
  let output = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let browser: Browser;
  let url: string;
  let secondsToUrl: number;
  let key: string;

  before(async () => {
    const started = performance.now();
    // Its own process group, so that SIGINT reaches npm and everything under it, as Ctrl-C does.
    demo = spawn('npm', ['run', 'demo'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
    exited = new Promise((resolve) => demo.once('exit', (code, signal) => resolve({ code, signal })));
    demo.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
    demo.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed within 120 s:\n${output}`)), 120_000);
      const look = () => {
        const m = /^Open (http:\/\/127\.0\.0\.1:\d+\/auth\/account) and sign in as:$/m.exec(output);
        if (m && /Press Ctrl-C to stop\./.test(output)) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      demo.stdout!.on('data', look);
      void exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`the demo exited (${code}) before printing its URL:\n${output}`)); });
    });
    secondsToUrl = (performance.now() - started) / 1000;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      process.kill(-demo.pid!, 'SIGKILL');
      await exited;
    }
  });

  it('prints its progress, the URL, both users with passwords, the key command and the calls', (t) => {
    t.diagnostic(`from npm run demo to the printed URL: ${secondsToUrl.toFixed(1)} s`);
    for (const step of ['the identity provider', 'the Mimir-shaped upstream', 'the hub']) {
      assert.match(output, new RegExp(`starting ${step}… ok `), step);
    }
    assert.match(output, /a local OpenID provider, for development only/);
    assert.match(output, /^ {2}developer +password \S+/m);
    assert.match(output, /^ {2}admin +password \S+/m);
    assert.match(output, /^ {2}MIMIR_DATA_DIR=\S+ MIMIR_PUBLIC_URL=\S+ npx mimir-auth keys create /m);
    assert.match(output, /^ {2}curl .*\/mcp$/m);
  });

  it('the developer signs in in Chromium and sees their name, email, role and permissions', async () => {
    const password = /^ {2}developer +password (\S+)/m.exec(output)![1]!;
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      // The demo's IdP checks the password.
      await page.fill('input[name="login"]', 'developer');
      await page.fill('input[name="password"]', `${password}-wrong`);
      await page.click('button[type="submit"]');
      assert.match(await page.innerText('[role="alert"]'), /Wrong user name or password/);
      await page.fill('input[name="password"]', password);
      await page.click('button[type="submit"]');
      await page.waitForURL(url);
      assert.equal(await page.innerText('[data-field="name"]'), 'Dana Developer');
      assert.equal(await page.innerText('[data-field="email"]'), 'developer@example.com');
      assert.equal(await page.innerText('[data-field="roles"]'), 'developer');
      assert.match(await page.innerText('[data-field="permissions"]'), /Use every MCP tool of Mimir\s+mcp:\*/);
    } finally {
      await context.close();
    }
  });

  it('the developer creates a key of their own on the printed page, and the upstream sees them when it is used', async () => {
    const password = /^ {2}developer +password (\S+)/m.exec(output)![1]!;
    const keysPage = /^ {2}(http:\/\/\S+\/auth\/account\/api-keys)$/m.exec(output)?.[1];
    assert.ok(keysPage, 'the demo prints the personal keys page');
    assert.match(output, /^ {2}http:\/\/\S+\/auth\/admin\/$/m, 'and the admin console');
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(keysPage);
      await page.fill('input[name="login"]', 'developer');
      await page.fill('input[name="password"]', password);
      await page.click('button[type="submit"]');
      await page.waitForURL(keysPage);
      await page.fill('#f-name', 'demo laptop');
      await page.click('form[data-form="create-personal-key"] button[type="submit"]');
      const own = (await page.textContent('[data-field="secret"]'))!.trim();
      assert.match(own, /^mimir_/);
      const res = await fetch(keysPage.replace('/auth/account/api-keys', '/api/nodes/types'), { headers: { 'x-api-key': own } });
      assert.equal(res.status, 200);
      const answer = await res.json() as { seen_as: { user: string } };
      assert.doesNotMatch(answer.seen_as.user, /^api-key:/, 'the upstream is told the user, not an anonymous key');
    } finally {
      await context.close();
    }
  });

  it('the printed command creates an API key in the demo\'s data directory', async () => {
    const command = /^ {2}(MIMIR_DATA_DIR=.* npx mimir-auth keys create .*)$/m.exec(output)![1]!;
    const run = await sh(command);
    assert.equal(run.code, 0, run.stderr);
    key = /\b(mimir_[A-Za-z0-9]+_[A-Za-z0-9_-]+)\b/.exec(run.stdout)?.[1] ?? '';
    assert.ok(key, `a key in:\n${run.stdout}`);
  });

  it('the printed curl commands reach the upstream through the hub with the key: a route answer and the MCP tool list', async () => {
    const [routeCall, mcpCall] = [...output.matchAll(/^ {2}(curl .*)$/gm)].map((m) => m[1]!);
    const route = await sh(`${routeCall} --silent --show-error --fail`, { KEY: key });
    assert.equal(route.code, 0, route.stderr);
    const answer = JSON.parse(route.stdout) as { route: string; seen_as: { user: string; roles: string } };
    assert.equal(answer.route, 'GET /api/nodes/types');
    assert.match(answer.seen_as.user, /^api-key:/, 'the upstream was told who called');
    assert.equal(answer.seen_as.roles, 'developer');

    const mcp = await sh(`${mcpCall} --silent --show-error --fail`, { KEY: key });
    assert.equal(mcp.code, 0, mcp.stderr);
    const tools = (JSON.parse(mcp.stdout) as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name);
    assert.deepEqual(tools, ['memory_node', 'vector_search_nodes', 'list_folders']);

    // Without the key the hub refuses, so the upstream answered because of it.
    const bare = await sh(routeCall!.replace(/-H "X-API-Key: \$KEY" /, '') + ' --silent --output /dev/null --write-out "%{http_code}"');
    assert.equal(bare.stdout, '401');
  });

  it('Ctrl-C stops all three: exit code 0, their ports closed, the temporary data gone', async () => {
    const ports = [...output.matchAll(/starting [^…]+… ok {2}http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    assert.equal(ports.length, 3);
    for (const port of ports) assert.equal(await listening(port), true, `port ${port} open while running`);
    const dataDir = /MIMIR_DATA_DIR=(\S+)/.exec(output)![1]!;
    assert.ok(existsSync(dataDir));

    process.kill(-demo.pid!, 'SIGINT');
    const { code, signal } = await exited;
    assert.equal(signal, null, output);
    assert.equal(code, 0, output);
    assert.match(output, /stopping the hub, the upstream and the identity provider… stopped/);
    for (const port of ports) assert.equal(await listening(port), false, `port ${port} closed`);
    assert.equal(existsSync(dataDir), false, 'the temporary data directory is removed');
  });
});
