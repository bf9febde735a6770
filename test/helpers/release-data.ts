/**
 * The data the previous release (b58d8a5) wrote, committed under test/fixtures/upgrade/ by
 * scripts/upgrade-fixtures.ts, and the checks that say nothing of it was lost: every API key (a
 * revoked one stays revoked), service account (a disabled one stays disabled), registered client,
 * signing key, refresh family (a revoked one stays revoked) and revocation. Used by the upgrade
 * test and by storage copy's.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { basic, get, postForm } from './http.ts';
import { REDIS_URL, type TestHub } from './hub.ts';

export const RELEASE = 'b58d8a5';
const fixtures = new URL(`../fixtures/upgrade/${RELEASE}/`, import.meta.url);

export interface Secrets {
  publicUrl: string; kid: string;
  apiKey: { key: string; id: string }; revokedApiKey: { key: string; id: string };
  serviceAccount: { id: string; secret: string }; disabledServiceAccount: { id: string; secret: string };
  client: { id: string; secret: string };
  refreshToken: string; revokedRefreshToken: string; accessToken: string; revokedAccessToken: string;
}

export function releaseSecrets(storage: 'sqlite' | 'redis'): Secrets {
  return JSON.parse(readFileSync(new URL(`${storage}-secrets.json`, fixtures), 'utf8')) as Secrets;
}

/** The release's data directory, copied where the new hub may change it (key files 0600, as they were written). */
export function releaseDataDir(storage: 'sqlite' | 'redis'): string {
  const dir = mkdtempSync(join(tmpdir(), `mimir-upgrade-${storage}-`));
  cpSync(new URL(`${storage}-data/`, fixtures), dir, { recursive: true });
  chmodSync(dir, 0o700);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o600);
  return dir;
}

/** The release's Redis keys, restored under `prefix`. */
export async function restoreReleaseRedis(prefix: string): Promise<void> {
  const keys = JSON.parse(readFileSync(new URL('redis-keys.json', fixtures), 'utf8')) as Array<{ key: string; dump: string; pttl: number }>;
  const redis = new Redis(REDIS_URL);
  try {
    for (const k of keys) await redis.restore(`${prefix}${k.key}`, k.pttl > 0 ? k.pttl : 0, Buffer.from(k.dump, 'base64'), 'REPLACE');
  } finally {
    await redis.quit();
  }
}

/** Registers the tests that find every credential of the release's data working (or revoked) on `hub()`. */
export function nothingLost(hub: () => Promise<TestHub>, s: Secrets): void {
  it('API keys: the active one works with its roles, the revoked one stays revoked', async () => {
    const h = await hub();
    const me = await get(`${h.url}/auth/me`, { 'x-api-key': s.apiKey.key });
    assert.equal(me.status, 200);
    assert.deepEqual(me.body.roles, ['developer']);
    assert.equal((await get(`${h.url}/auth/me`, { 'x-api-key': s.revokedApiKey.key })).status, 401);
    const listed = await h.hub.apiKeys.list();
    assert.equal(listed.find((k) => k.id === s.revokedApiKey.id)?.status, 'revoked');
    assert.equal(listed.find((k) => k.id === s.apiKey.id)?.status, 'active');
  });

  it('service accounts: the enabled one gets tokens with its scope, the disabled one none', async () => {
    const h = await hub();
    const ok = await postForm(`${h.url}/auth/token`, { grant_type: 'client_credentials' }, basic(s.serviceAccount.id, s.serviceAccount.secret));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.scope, 'nodes:read');
    const off = await postForm(`${h.url}/auth/token`, { grant_type: 'client_credentials' }, basic(s.disabledServiceAccount.id, s.disabledServiceAccount.secret));
    assert.equal(off.status, 401);
  });

  it('the signing key: still the one that signs and verifies; tokens it signed work, the revoked one stays revoked', async () => {
    const h = await hub();
    assert.equal(h.hub.keys.currentKid, s.kid);
    const jwks = await get(`${h.url}/.well-known/jwks.json`);
    assert.ok((jwks.body.keys as Array<{ kid: string }>).some((k) => k.kid === s.kid));
    assert.equal((await get(`${h.url}/auth/me`, { authorization: `Bearer ${s.accessToken}` })).status, 200);
    assert.equal((await get(`${h.url}/auth/me`, { authorization: `Bearer ${s.revokedAccessToken}` })).status, 401);
  });

  it('the registered client authenticates with its secret; its refresh family refreshes, the revoked one does not', async () => {
    const h = await hub();
    const auth = basic(s.client.id, s.client.secret);
    const introspected = await postForm(`${h.url}/auth/introspect`, { token: s.refreshToken }, auth);
    assert.equal(introspected.status, 200);
    assert.equal(introspected.body.active, true);
    const refreshed = await postForm(`${h.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: s.refreshToken }, auth);
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal((await get(`${h.url}/auth/me`, { authorization: `Bearer ${refreshed.body.access_token}` })).status, 200);
    const dead = await postForm(`${h.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: s.revokedRefreshToken }, auth);
    assert.equal(dead.body.error, 'invalid_grant');
  });
}
