import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/hub.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));

function cli(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** `mimir-auth serve` in `dir`, resolved once its stdout contains `until`; `out()` is all it printed. */
async function serve(dir: string, env: Record<string, string>, until: string) {
  const server = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, MIMIR_LOG_LEVEL: 'warn', ...env } });
  let out = '';
  server.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner: ${out}`)), 20_000);
    server.stdout.on('data', () => { if (out.includes(until)) { clearTimeout(timer); resolve(); } });
    server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${out}`)); });
  }).catch((e: unknown) => { server.kill('SIGTERM'); throw e; });
  return { server, out: () => out };
}

describe('mimir-auth CLI', () => {
  it('routes prints the effective route table: Mimir\'s by default, the RBAC file\'s when it has one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-'));
    const table = await cli(['routes'], {}, dir);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /from the default: the real Mimir's routes/);
    assert.match(table.stdout, /DELETE\s+\/api\/nodes\/\*\s+nodes:delete/);
    const json = await cli(['routes', '--json'], { MIMIR_RBAC_CONFIG: JSON.stringify({ roleMappings: { a: { permissions: ['*'] } }, routes: [{ method: 'GET', path: '/x/**', permission: 'nodes:read' }] }) }, dir);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { source: string; routes: Array<{ path: string }> };
    assert.deepEqual(parsed.routes.map((r) => r.path), ['/x/**']);
    assert.match(parsed.source, /MIMIR_RBAC_CONFIG/);
  });

  it('doctor reports each check, and exits 1 on a problem (an upstream that cannot be reached)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-'));
    const port = await freePort();
    const res = await cli(['doctor', '--json'], { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${port}` }, dir);
    assert.equal(res.code, 1, res.stderr);
    const checks = JSON.parse(res.stdout) as Array<{ name: string; verdict: string; fix?: string }>;
    assert.equal(checks.find((c) => c.name === 'store')?.verdict, 'ok');
    const upstream = checks.find((c) => c.name === 'upstream')!;
    assert.equal(upstream.verdict, 'problem');
    assert.match(upstream.fix ?? '', /MIMIR_UPSTREAM_URL/);
  });

  it('bootstraps an admin key with no server running, and the server accepts it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-'));
    const port = await freePort();
    const env = { MIMIR_AUTH_PORT: String(port), MIMIR_LOG_AUTH_EVENTS: 'false' };
    const created = await cli(['keys', 'create', '--name', 'admin', '--roles', 'admin', '--json'], env, dir);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { id: string; key: string; roles: string[] };
    assert.match(key.key, /^mimir_/);
    assert.deepEqual(key.roles, ['admin']);

    const sa = await cli(['service-accounts', 'create', '--id', 'pctx-service', '--roles', 'developer', '--json'], env, dir);
    assert.equal(sa.code, 0, sa.stderr);
    const account = JSON.parse(sa.stdout) as { client_id: string; client_secret: string };
    assert.equal(account.client_id, 'pctx-service');

    const list = await cli(['keys', 'list'], env, dir);
    assert.match(list.stdout, new RegExp(key.id));
    assert.ok(!list.stdout.includes(key.key), 'keys list never shows the key');

    const { server, out } = await serve(dir, env, 'signing key:');
    try {
      assert.match(out(), /storage:\s+sqlite/);
      assert.doesNotMatch(out(), /No admin API key exists yet/, 'an admin key exists, so no bootstrap hint');
      const me = await fetch(`http://127.0.0.1:${port}/auth/me`, { headers: { 'x-api-key': key.key } });
      assert.equal(me.status, 200);
      const token = await fetch(`http://127.0.0.1:${port}/auth/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: account.client_id, client_secret: account.client_secret }).toString(),
      });
      assert.equal(token.status, 200);
      const revoked = await cli(['keys', 'revoke', key.id], env, dir);
      assert.equal(revoked.code, 0);
      const after = await fetch(`http://127.0.0.1:${port}/auth/me`, { headers: { 'x-api-key': key.key } });
      assert.equal(after.status, 401, 'a key revoked by the CLI stops working on the running server');
    } finally {
      const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
      server.kill('SIGTERM');
      assert.equal(await exited, 0, 'SIGTERM shuts down cleanly');
    }
  });

  it('prints the bootstrap command when no admin key exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-'));
    const port = await freePort();
    const { server, out } = await serve(dir, { MIMIR_AUTH_PORT: String(port), MIMIR_LOG_AUTH_EVENTS: 'false' }, 'keys create');
    try {
      assert.match(out(), /mimir-auth keys create --name admin --roles admin/);
      assert.ok(existsSync(join(dir, 'data', 'mimir-auth.db')), 'the embedded default is sqlite under ./data');
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
  });

  it('a bad setting stops the start with one line naming the variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-'));
    const r = await cli(['serve'], { MIMIR_JWT_ALGORITHM: 'RS257' }, dir);
    assert.equal(r.code, 78);
    assert.match(r.stderr, /MIMIR_JWT_ALGORITHM: "RS257" is not one of RS256, ES256, EdDSA, HS256/);
  });

  it('config prints the effective configuration with secrets redacted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-'));
    const secret = 'q'.repeat(48);
    const r = await cli(['config'], { MIMIR_JWT_SECRET: secret, MIMIR_OAUTH_CLIENT_SECRET: 'idp-client-secret-xyz' }, dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^MIMIR_JWT_ALGORITHM=RS256$/m);
    assert.match(r.stdout, /^MIMIR_JWT_SECRET=<redacted>$/m);
    assert.ok(!r.stdout.includes(secret));
    assert.ok(!r.stdout.includes('idp-client-secret-xyz'));
  });

  it('refuses a Node older than 22.19 with a clear message', () => {
    // The machine's system Node (20 here) is the old runtime this guards against.
    const candidates = ['/usr/bin/node', '/usr/local/bin/node'].filter(existsSync);
    const old = candidates.find((bin) => {
      const v = spawnSync(bin, ['-p', 'process.versions.node']).stdout?.toString().trim() ?? '';
      const [major = 0, minor = 0] = v.split('.').map(Number);
      return major < 22 || (major === 22 && minor < 19);
    });
    const runtime = old ?? process.execPath;
    const r = spawnSync(runtime, [BIN, 'version']);
    if (old) {
      assert.equal(r.status, 1);
      assert.match(r.stderr.toString(), /too old.*22\.19/s);
    } else {
      // No old Node on this machine: the current one must pass the guard.
      assert.equal(r.status, 0, r.stderr.toString());
      assert.match(r.stdout.toString(), /^\d+\.\d+\.\d+/);
    }
  });
});
