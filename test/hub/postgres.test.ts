/**
 * Issue 18: several hubs on one PostgreSQL database, no Redis. Two real hubs (each with its own
 * store: its own pool and LISTEN connection) share a fresh database, MIMIR_JWT_SECRET (which seals
 * the signing keys) and one issuer; what one does, the other honours, and revocations and key
 * changes cross through LISTEN/NOTIFY within 1 s (measured from the answer of the hub that made them).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { freePort, serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { basic, get, login, postForm, postJson } from '../helpers/http.ts';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Polls until `check` holds; the milliseconds since `since`, failing after 5 s. */
async function until(since: number, what: string, check: () => Promise<boolean>): Promise<number> {
  for (;;) {
    if (await check()) return performance.now() - since;
    if (performance.now() - since > 5000) assert.fail(`${what}: not within 5 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function sharedEnv(url: string): Record<string, string> {
  return {
    MIMIR_TOKEN_STORAGE: 'postgres', MIMIR_DATABASE_URL: url,
    MIMIR_JWT_SECRET: randomBytes(32).toString('base64url'), MIMIR_JWT_ISSUER: 'http://mimir-hub.test',
  };
}

describe('two hubs on one PostgreSQL database', () => {
  let db: FreshDatabase;
  let a: TestHub;
  let b: TestHub;
  let adminKey: string;

  before(async () => {
    db = await freshDatabase();
    const env = sharedEnv(db.url);
    // Both start at once on the empty database: one creates the schema, the other waits for it.
    [a, b] = await Promise.all([startHub({ env }), startHub({ env })]);
    adminKey = (await a.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await db?.drop();
  });

  it('both hubs run on PostgreSQL, each with a store of its own', () => {
    assert.equal(a.hub.store.kind, 'postgres');
    assert.equal(b.hub.store.kind, 'postgres');
    assert.notEqual(a.hub.store, b.hub.store);
  });

  it('an API key created on A works on B; revoked on A, B refuses it within 1 s', async (t) => {
    const created = await postJson(`${a.url}/auth/admin/api-keys`, { name: 'k', roles: ['developer'] }, { 'x-api-key': adminKey });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const key = String(created.body.key);
    assert.equal((await get(`${b.url}/auth/me`, { 'x-api-key': key })).status, 200, 'B accepts the key (and caches it)');
    const res = await fetch(`${a.url}/auth/admin/api-keys/${String(created.body.id)}`, { method: 'DELETE', headers: { 'x-api-key': adminKey } });
    assert.equal(res.status, 200);
    const revokedAt = performance.now();
    const took = await until(revokedAt, 'B refuses the revoked API key', async () => (await get(`${b.url}/auth/me`, { 'x-api-key': key })).status === 401);
    t.diagnostic(`API key revocation seen by B after ${took.toFixed(0)} ms`);
    assert.ok(took < 1000, `B refused it only after ${took.toFixed(0)} ms`);
  });

  it('an access token revoked on A is refused by B within 1 s', async (t) => {
    const svc = await serviceAccountToken(a, ['developer']);
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${svc.token}` })).status, 200, 'B accepts it before');
    const revoke = await postForm(`${a.url}/auth/revoke`, { token: svc.token, token_type_hint: 'access_token' }, basic(svc.clientId, svc.secret));
    assert.equal(revoke.status, 200);
    const revokedAt = performance.now();
    const took = await until(revokedAt, 'B refuses the revoked token', async () => (await get(`${b.url}/auth/me`, { authorization: `Bearer ${svc.token}` })).status === 401);
    t.diagnostic(`access-token revocation seen by B after ${took.toFixed(0)} ms`);
    assert.ok(took < 1000, `B refused it only after ${took.toFixed(0)} ms`);
  });

  it('a refresh token used on both hubs at once has exactly one winner, and the family is then revoked everywhere', async () => {
    const refresh = await login(a);
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => postJson(`${i % 2 ? b.url : a.url}/auth/refresh`, { refresh_token: refresh })));
    const wins = results.filter((r) => r.status === 200);
    assert.equal(wins.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`);
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 400);
      assert.equal(r.body.error, 'invalid_grant');
    }
    // The losers were reuse of a rotated-out token: the whole family is revoked, the winner's share too.
    const winner = wins[0]!.body;
    for (const hub of [a, b]) {
      const again = await postJson(`${hub.url}/auth/refresh`, { refresh_token: winner.refresh_token });
      assert.equal(again.body.error, 'invalid_grant');
    }
    const since = performance.now();
    await until(since, 'the winner\'s access token refused on both hubs', async () =>
      (await get(`${a.url}/auth/me`, { authorization: `Bearer ${winner.access_token}` })).status === 401
      && (await get(`${b.url}/auth/me`, { authorization: `Bearer ${winner.access_token}` })).status === 401);
  });

  it('a signing-key rotation on A is honoured by B within 1 s: B publishes and signs with the new key, and accepts A\'s new tokens', async (t) => {
    const rotated = await postJson(`${a.url}/auth/admin/signing-keys/rotate`, {}, { 'x-api-key': adminKey });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const rotatedAt = performance.now();
    const kid = String(rotated.body.kid);
    // B's key set changes only through the message: nothing has shown it a token with the new kid yet.
    const took = await until(rotatedAt, 'B publishes the new key', async () => {
      const jwks = (await get(`${b.url}/.well-known/jwks.json`)).body as { keys: Array<{ kid: string }> };
      return jwks.keys.some((k) => k.kid === kid);
    });
    t.diagnostic(`signing-key rotation seen by B after ${took.toFixed(0)} ms`);
    assert.ok(took < 1000, `B published the new key only after ${took.toFixed(0)} ms`);
    assert.equal(b.hub.keys.currentKid, kid, 'B signs with the new key');
    const fromA = await serviceAccountToken(a, ['developer']);
    assert.equal(decodeProtectedHeader(fromA.token).kid, kid);
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${fromA.token}` })).status, 200);
    const fromB = await serviceAccountToken(b, ['developer']);
    assert.equal(decodeProtectedHeader(fromB.token).kid, kid);
    assert.equal((await get(`${a.url}/auth/me`, { authorization: `Bearer ${fromB.token}` })).status, 200);
  });
});

describe('MIMIR_TOKEN_STORAGE=database with a postgres MIMIR_DATABASE_URL', () => {
  let db: FreshDatabase;
  let a: TestHub;
  before(async () => {
    db = await freshDatabase();
  });
  after(async () => {
    await a?.close();
    await db?.drop();
  });

  it('uses PostgreSQL: a second hub (`mimir-auth serve`) on the database sees the first\'s API key, and its start banner names PostgreSQL without the password', async () => {
    const url = new URL(db.url);
    // The test server trusts loopback, so a password is accepted and ignored: enough to see it is masked.
    const password = url.password || `pw-${randomBytes(6).toString('hex')}`;
    url.password = password;
    const env = { ...sharedEnv(url.toString()), MIMIR_TOKEN_STORAGE: 'database' };
    a = await startHub({ env });
    assert.equal(a.hub.store.kind, 'postgres');
    const { key } = await a.hub.apiKeys.create({ name: 'from-a', roles: ['developer'] });

    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'mimir-hub-pg-b-'));
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'mimir-auth.js'), 'serve'], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH ?? '', ...env, MIMIR_LOG_LEVEL: 'warn', MIMIR_LOG_AUTH_EVENTS: 'false',
        MIMIR_AUTH_PORT: String(port), MIMIR_AUTH_HOST: '127.0.0.1', MIMIR_DATA_DIR: dataDir, MIMIR_PUBLIC_URL: `http://127.0.0.1:${port}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    try {
      for (const deadline = Date.now() + 30_000; !output.includes('storage:');) {
        if (child.exitCode !== null) assert.fail(`hub B exited (${child.exitCode}): ${output}`);
        if (Date.now() > deadline) assert.fail(`hub B did not start within 30 s: ${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const banner = output.split('\n').find((l) => l.includes('storage:')) ?? '';
      assert.match(banner, /storage:\s+postgres \(postgres:\/\/[^ ]*:\*\*\*@127\.0\.0\.1:\d+\//);
      assert.match(banner, /MIMIR_TOKEN_STORAGE=database/);
      assert.doesNotMatch(output, new RegExp(password));
      assert.equal((await get(`http://127.0.0.1:${port}/auth/me`, { 'x-api-key': key })).status, 200, 'B reads the key A wrote');
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
