/**
 * Issue 7: client authentication (token endpoint, introspection) and introspection of Mimir JWTs
 * read the hot-path caches. A cached record or verification must never outlive the change that
 * ends it: secret rotation, disabling, revocation, expiry.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { newRedisPrefix, startHub, type TestHub } from '../helpers/hub.ts';

const FORM = 'application/x-www-form-urlencoded';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function clientCredentials(t: TestHub, clientId: string, secret: string): Promise<{ status: number; token?: string }> {
  const res = await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': FORM, authorization: basic(clientId, secret) }, body: 'grant_type=client_credentials' });
  const json = await res.json() as { access_token?: string };
  return { status: res.status, ...(json.access_token ? { token: json.access_token } : {}) };
}

async function introspect(t: TestHub, caller: string, token: string): Promise<{ status: number; active?: boolean }> {
  const res = await fetch(`${t.url}/auth/introspect`, { method: 'POST', headers: { 'content-type': FORM, authorization: caller }, body: new URLSearchParams({ token }).toString() });
  const json = await res.json() as { active?: boolean };
  return { status: res.status, ...(json.active !== undefined ? { active: json.active } : {}) };
}

/** Polls until `check` holds, for at most `ms`; returns whether it did. */
async function within(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('cached client authentication and introspection', () => {
  const hubs: TestHub[] = [];
  after(async () => { await Promise.all(hubs.map((h) => h.close())); });
  const start = async (...args: Parameters<typeof startHub>) => { const h = await startHub(...args); hubs.push(h); return h; };
  // Long max age: only invalidation, never expiry of the cache entry, can make these pass.
  const env = () => ({ MIMIR_JWT_SECRET: randomBytes(48).toString('base64url'), MIMIR_JWT_ISSUER: 'https://hub.example.test', MIMIR_CREDENTIAL_CACHE_MAX_AGE: '3600' });

  it('a secret rotated out without grace fails at once on the instance that rotated it (memory storage)', async () => {
    const t = await start({ storage: 'memory', env: env() });
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'svc-rotate', roles: ['developer'] });
    assert.equal((await clientCredentials(t, 'svc-rotate', clientSecret)).status, 200);
    assert.equal(t.hub.caches.serviceAccounts.size, 1, 'the record was cached by client authentication');
    const rotated = await t.hub.serviceAccounts.rotateSecret('svc-rotate', 0);
    assert.ok(rotated);
    assert.equal((await clientCredentials(t, 'svc-rotate', clientSecret)).status, 401);
    assert.equal((await clientCredentials(t, 'svc-rotate', rotated.clientSecret)).status, 200);
  });

  it('a secret rotated out without grace on instance A fails on instance B on the same Redis', async () => {
    const prefix = newRedisPrefix();
    const shared = env();
    const a = await start({ storage: 'redis', redisPrefix: prefix, env: shared });
    const b = await start({ storage: 'redis', redisPrefix: prefix, env: shared });
    const { clientSecret } = await a.hub.serviceAccounts.create({ clientId: 'svc-rotate-b', roles: ['developer'] });
    assert.equal((await clientCredentials(b, 'svc-rotate-b', clientSecret)).status, 200);
    assert.equal(b.hub.caches.serviceAccounts.size, 1);
    assert.ok(await a.hub.serviceAccounts.rotateSecret('svc-rotate-b', 0));
    assert.ok(await within(2000, async () => (await clientCredentials(b, 'svc-rotate-b', clientSecret)).status === 401));
  });

  it('a disabled service account fails client authentication at once although its record was cached', async () => {
    const t = await start({ storage: 'memory', env: env() });
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'svc-disable', roles: ['developer'] });
    assert.equal((await clientCredentials(t, 'svc-disable', clientSecret)).status, 200);
    assert.ok(await t.hub.serviceAccounts.setDisabled('svc-disable', true));
    assert.equal((await clientCredentials(t, 'svc-disable', clientSecret)).status, 401);
  });

  it('introspection of a cached token turns inactive at once when it is revoked, or its service account disabled', async () => {
    const t = await start({ storage: 'memory', env: env() });
    const rs = await t.hub.serviceAccounts.create({ clientId: 'resource-server', roles: ['admin'] });
    const caller = basic('resource-server', rs.clientSecret);
    const svc = await t.hub.serviceAccounts.create({ clientId: 'svc-introspected', roles: ['developer'] });
    const first = (await clientCredentials(t, 'svc-introspected', svc.clientSecret)).token!;
    const second = (await clientCredentials(t, 'svc-introspected', svc.clientSecret)).token!;
    for (let i = 0; i < 3; i++) assert.equal((await introspect(t, caller, first)).active, true);
    assert.ok(t.hub.caches.tokens.size >= 1, 'the verification was cached');
    const revoked = await fetch(`${t.url}/auth/revoke`, { method: 'POST', headers: { 'content-type': FORM, authorization: caller }, body: new URLSearchParams({ token: first }).toString() });
    assert.equal(revoked.status, 200);
    assert.equal((await introspect(t, caller, first)).active, false);
    assert.equal((await introspect(t, caller, second)).active, true);
    assert.ok(await t.hub.serviceAccounts.setDisabled('svc-introspected', true));
    assert.equal((await introspect(t, caller, second)).active, false);
  });

  it('introspection never reports a cached token active once it has expired (past the verifier\'s 5 s clock tolerance)', async () => {
    let clock = Date.now();
    const t = await start({ storage: 'memory', now: () => clock, env: env() });
    const rs = await t.hub.serviceAccounts.create({ clientId: 'resource-server', roles: ['admin'] });
    const caller = basic('resource-server', rs.clientSecret);
    const issued = await t.hub.signer.issue({ sub: 'user-1', client_id: 'app', roles: ['viewer'] }, 60);
    assert.equal((await introspect(t, caller, issued.token)).active, true);
    clock = issued.expiresAt * 1000 - 1;
    assert.equal((await introspect(t, caller, issued.token)).active, true);
    clock = (issued.expiresAt + 6) * 1000;
    assert.equal((await introspect(t, caller, issued.token)).active, false);
  });
});
