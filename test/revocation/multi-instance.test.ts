/**
 * Two hub processes on one Redis: this test process runs instance A, a child process
 * (`node bin/mimir-auth.js serve`) runs instance B. They share the key prefix and MIMIR_JWT_SECRET
 * (which seals the signing keys), and one issuer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, newRedisPrefix, REDIS_URL, serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { basic, get, login, postForm, postJson } from '../helpers/http.ts';

const ROOT = join(import.meta.dirname, '..', '..');

async function startChildHub(env: Record<string, string>): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'mimir-hub-b-'));
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'mimir-auth.js'), 'serve'], {
    cwd: dataDir,
    env: { PATH: process.env.PATH ?? '', ...env, MIMIR_AUTH_PORT: String(port), MIMIR_AUTH_HOST: '127.0.0.1', MIMIR_DATA_DIR: dataDir, MIMIR_PUBLIC_URL: `http://127.0.0.1:${port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hub B exited (${child.exitCode}): ${output}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`hub B did not start: ${output}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('token lifecycle across two hub processes on one Redis', () => {
  let a: TestHub;
  let b: Awaited<ReturnType<typeof startChildHub>>;
  const shared = {
    MIMIR_TOKEN_STORAGE: 'redis', MIMIR_REDIS_URL: REDIS_URL, MIMIR_REDIS_KEY_PREFIX: newRedisPrefix(),
    MIMIR_JWT_SECRET: randomBytes(32).toString('base64url'), MIMIR_JWT_ISSUER: 'http://mimir-hub.test',
    MIMIR_LOG_LEVEL: 'silent', MIMIR_LOG_AUTH_EVENTS: 'false',
  };

  before(async () => {
    a = await startHub({ storage: 'redis', redisPrefix: shared.MIMIR_REDIS_KEY_PREFIX, env: shared });
    b = await startChildHub(shared);
  });
  after(async () => {
    await b?.stop();
    await a?.close();
  });

  it('a concurrent refresh race with one token, over both processes, has exactly one winner', async () => {
    const refresh = await login(a);
    const attempts = Array.from({ length: 24 }, (_, i) => postJson(`${i % 2 ? b.url : a.url}/auth/refresh`, { refresh_token: refresh }));
    const results = await Promise.all(attempts);
    const wins = results.filter((r) => r.status === 200);
    assert.equal(wins.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`);
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 400);
      assert.equal(r.body.error, 'invalid_grant');
    }
  });

  it('an access token revoked at one instance is rejected by the other within 100 ms', async () => {
    const svc = await serviceAccountToken(a, ['developer']);
    assert.equal((await get(`${b.url}/auth/me`, { authorization: `Bearer ${svc.token}` })).status, 200, 'B accepts it before');
    const revoke = await postForm(`${a.url}/auth/revoke`, { token: svc.token, token_type_hint: 'access_token' }, basic(svc.clientId, svc.secret));
    assert.equal(revoke.status, 200);
    const revokedAt = performance.now();
    // Requests to B launched every 10 ms; the one launched at the 100 ms mark must be refused, and
    // once B refuses the token it never accepts it again. (Launch times, not answer times, count:
    // how long a request then takes is not propagation.)
    const probes: Array<{ at: number; status: Promise<number> }> = [];
    for (let i = 0; i <= 10; i++) {
      const wait = revokedAt + i * 10 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      probes.push({ at: performance.now() - revokedAt, status: get(`${b.url}/auth/me`, { authorization: `Bearer ${svc.token}` }).then((r) => r.status) });
    }
    const statuses = await Promise.all(probes.map((p) => p.status));
    const last = statuses.at(-1);
    assert.equal(last, 401, `the request launched ${probes.at(-1)!.at.toFixed(0)} ms after the revocation was accepted`);
    const firstRefused = statuses.indexOf(401);
    assert.ok(statuses.slice(firstRefused).every((s) => s === 401), `statuses over time: ${statuses.join(',')}`);
    assert.ok(statuses.every((s) => s === 200 || s === 401), `statuses over time: ${statuses.join(',')}`);
  });

  it('a refresh token introspected at one instance (its family cached there) is inactive there within 100 ms of its revocation at the other', async () => {
    const clientId = `rs-${randomBytes(4).toString('hex')}`;
    const { clientSecret } = await a.hub.serviceAccounts.create({ clientId, roles: ['introspector'], scopes: ['introspect'] });
    const introspect = async (token: string) => (await postForm(`${a.url}/auth/introspect`, { token }, basic(clientId, clientSecret))).body;
    const refresh = await login(a);
    const families = () => a.hub.caches.refreshFamilies.lookups;
    const before = families();
    assert.equal((await introspect(refresh)).active, true);
    assert.equal((await introspect(refresh)).active, true);
    assert.equal(families().hits - before.hits, 1, 'the second introspection found the family in the cache');
    const revoke = await postForm(`${b.url}/auth/revoke`, { token: refresh, token_type_hint: 'refresh_token' });
    assert.equal(revoke.status, 200);
    const revokedAt = performance.now();
    let active = true;
    while (active && performance.now() - revokedAt < 1000) active = (await introspect(refresh)).active as boolean;
    const took = performance.now() - revokedAt;
    assert.equal(active, false, 'A says inactive');
    assert.ok(took <= 100, `within 100 ms of the revocation on B (${took.toFixed(0)} ms)`);
    assert.equal((await introspect(refresh)).active, false, 'and stays so');
  });

  it('a refresh family revoked at one instance cannot be refreshed at the other', async () => {
    const refresh = await login(a);
    const revoke = await postForm(`${b.url}/auth/revoke`, { token: refresh, token_type_hint: 'refresh_token' });
    assert.equal(revoke.status, 200);
    const res = await postJson(`${a.url}/auth/refresh`, { refresh_token: refresh });
    assert.equal(res.body.error, 'invalid_grant');
  });
});
