/**
 * Issue 18, item 6: one SQLite data directory, one server. A second `mimir-auth serve` on the same
 * MIMIR_DATA_DIR is refused (before: it started silently, generated its own signing key and
 * refused the first one's tokens); the lock does not outlive a killed server; the CLI still works
 * beside a running server, and what it changes reaches that server within 1 s through the change
 * feed (before: revocations crossed only at the 30 s resync, a rotated key never).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { freePort } from '../helpers/hub.ts';
import { startSlowUpstream, type SlowUpstream } from '../helpers/slow-upstream.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));

function cli(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

interface Served {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<number | null>;
}

/** `mimir-auth serve`, resolved once it answers /health (or rejected with what it printed if it exits first). */
async function serve(cwd: string, env: Record<string, string>): Promise<Served> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, MIMIR_LOG_LEVEL: 'warn', MIMIR_LOG_AUTH_EVENTS: 'false', ...env, MIMIR_AUTH_PORT: String(port) },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${out}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`serve did not start: ${out}`); }
    await sleep(50);
  }
  return { child, url, output: () => out, exited };
}

async function stop(s: Served | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill(signal);
  await s.exited;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 20 ms until it returns true; the milliseconds that took, or Infinity after `limitMs`. */
async function within(limitMs: number, probe: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < limitMs) {
    if (await probe()) return performance.now() - start;
    await sleep(20);
  }
  return Infinity;
}

async function clientCredentials(url: string, clientId: string, secret: string): Promise<string> {
  const res = await fetch(`${url}/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { access_token: string }).access_token;
}

describe('one SQLite data directory, one server (issue 18)', () => {
  it('a second serve on the same data directory is refused, naming it and the stores for several instances; after kill -9 of the first, a new one starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-one-server-'));
    const data = join(dir, 'data');
    const env = { MIMIR_DATA_DIR: data };
    let first: Served | undefined;
    let third: Served | undefined;
    try {
      first = await serve(dir, env);
      const second = await cli(['serve'], { ...env, MIMIR_AUTH_PORT: String(await freePort()) }, dir);
      assert.notEqual(second.code, 0, 'the second server must not start');
      assert.ok(second.stderr.includes(data), `names the directory: ${second.stderr}`);
      assert.match(second.stderr, /Redis or PostgreSQL/);
      assert.equal((await fetch(`${first.url}/health`)).status, 200, 'the first one keeps serving');

      first.child.kill('SIGKILL');
      await first.exited;
      third = await serve(dir, env);
      assert.equal((await fetch(`${third.url}/health`)).status, 200, 'the lock died with the killed server');
    } finally {
      await stop(first);
      await stop(third);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two directories, two servers: the lock is per directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-one-server-'));
    let a: Served | undefined;
    let b: Served | undefined;
    try {
      a = await serve(dir, { MIMIR_DATA_DIR: join(dir, 'a') });
      b = await serve(dir, { MIMIR_DATA_DIR: join(dir, 'b') });
      assert.equal((await fetch(`${b.url}/health`)).status, 200);
    } finally {
      await stop(a);
      await stop(b);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('the CLI beside a running server', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-beside-'));
    const env = { MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_AUTH_EVENTS: 'false' };
    let upstream: SlowUpstream;
    let server: Served | undefined;
    let account: { client_id: string; client_secret: string };

    before(async () => {
      upstream = await startSlowUpstream();
      const sa = await cli(['service-accounts', 'create', '--id', 'beside', '--roles', 'admin', '--json'], env, dir);
      assert.equal(sa.code, 0, sa.stderr);
      account = JSON.parse(sa.stdout) as typeof account;
      server = await serve(dir, { ...env, MIMIR_UPSTREAM_URL: upstream.url });
    });
    after(async () => {
      await stop(server);
      await upstream?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('an API key revoked by the CLI is refused by the server, and its open event stream closed, within 1 s', async () => {
      const created = await cli(['keys', 'create', '--name', 'streamer', '--roles', 'admin', '--json'], env, dir);
      assert.equal(created.code, 0, created.stderr);
      const key = JSON.parse(created.stdout) as { id: string; key: string };
      assert.equal((await fetch(`${server!.url}/auth/me`, { headers: { 'x-api-key': key.key } })).status, 200);
      const stream = await fetch(`${server!.url}/api/events`, { headers: { 'x-api-key': key.key } });
      assert.equal(stream.status, 200);
      const reader = stream.body!.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /hello/);
      let streamEnded = Infinity;
      const revokedAt = { t: 0 };
      const watching = (async () => {
        try {
          for (;;) if ((await reader.read()).done) break;
        } catch { /* cut off: ended too */ }
        streamEnded = performance.now();
      })();

      const revoked = await cli(['keys', 'revoke', key.id], env, dir);
      assert.equal(revoked.code, 0, revoked.stderr);
      revokedAt.t = performance.now();
      const refusedAfter = await within(1000, async () => (await fetch(`${server!.url}/auth/me`, { headers: { 'x-api-key': key.key } })).status === 401);
      assert.ok(refusedAfter <= 1000, 'the server refuses the revoked key within 1 s');
      await Promise.race([watching, sleep(1500)]);
      assert.ok(streamEnded - revokedAt.t <= 1000, `the key's open stream ends within 1 s (after ${(streamEnded - revokedAt.t).toFixed(0)} ms)`);
    });

    it('an access token revoked by the CLI is refused by the server within 1 s', async () => {
      const token = await clientCredentials(server!.url, account.client_id, account.client_secret);
      assert.equal((await fetch(`${server!.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      const revoked = await cli(['revoke', 'access_token', String(decodeJwt(token).jti)], env, dir);
      assert.equal(revoked.code, 0, revoked.stderr);
      const refusedAfter = await within(1000, async () => (await fetch(`${server!.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status === 401);
      assert.ok(refusedAfter <= 1000, 'refused within 1 s (before: at the next 30 s resync)');
      // A jti is base64url: one in 64 begins with "-", which is an id, not an option.
      const dashed = await cli(['revoke', 'access_token', '-6K3RBr1OuaBtW3p6LMs4g'], env, dir);
      assert.equal(dashed.code, 0, dashed.stderr);
      assert.match(dashed.stdout, /Revoked access token -6K3RBr1OuaBtW3p6LMs4g/);
    });

    it('a signing key rotated by the CLI signs the server\'s tokens, which it accepts, within 1 s', async () => {
      const rotated = await cli(['signing-keys', 'rotate'], env, dir);
      assert.equal(rotated.code, 0, rotated.stderr);
      const kid = /New signing key (\S+)/.exec(rotated.stdout)?.[1];
      assert.ok(kid, rotated.stdout);
      let token = '';
      const signedAfter = await within(1000, async () => {
        token = await clientCredentials(server!.url, account.client_id, account.client_secret);
        return decodeProtectedHeader(token).kid === kid;
      });
      assert.ok(signedAfter <= 1000, 'the server signs with the rotated key within 1 s');
      assert.equal((await fetch(`${server!.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      const jwks = await (await fetch(`${server!.url}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string }> };
      assert.equal(jwks.keys[0]?.kid, kid, 'and publishes it first');
    });
  });
});
