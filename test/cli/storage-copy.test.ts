/**
 * `mimir-auth storage copy --to URL` (issue 18, item 7): the previous release's SQLite data,
 * copied into Redis and from there back into a new SQLite file, by the CLI as users run it; a hub
 * started on either copy finds every key, account, client, signing key, refresh family and
 * revocation. Signing keys sealed under the release's key file are re-sealed under
 * MIMIR_JWT_SECRET, which a store several hubs share requires.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { escapeGlob } from '../../src/storage/redis.ts';
import { newRedisPrefix, REDIS_URL, startHub, type TestHub } from '../helpers/hub.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { startCluster, type ClusterTopology } from '../helpers/redis-topologies.ts';
import { nothingLost, releaseDataDir, releaseSecrets } from '../helpers/release-data.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));
const JWT_SECRET = 'storage-copy-test-secret-of-at-least-32-bytes-length';

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), MIMIR_LOG_LEVEL: 'warn', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function keysUnder(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      n += keys.length;
    } while (cursor !== '0');
    return n;
  } finally {
    await redis.quit();
  }
}

/** `kind  N copied  N verified` lines of the CLI's report. */
function counts(stdout: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const m of stdout.matchAll(/^\s+(\S+)\s+(\d+) copied\s+(\d+) verified$/gm)) out.set(m[1]!, [Number(m[2]), Number(m[3])]);
  return out;
}

describe('mimir-auth storage copy: SQLite → Redis → SQLite, and SQLite → PostgreSQL, nothing lost', () => {
  const s = releaseSecrets('sqlite');
  const sourceDir = releaseDataDir('sqlite');
  const redisPrefix = newRedisPrefix();
  const backDir = mkdtempSync(join(tmpdir(), 'mimir-copy-back-'));
  const sqliteEnv = { MIMIR_TOKEN_STORAGE: 'sqlite', MIMIR_DATA_DIR: sourceDir, MIMIR_PUBLIC_URL: s.publicUrl };
  const redisEnv = { MIMIR_TOKEN_STORAGE: 'redis', MIMIR_REDIS_URL: REDIS_URL, MIMIR_REDIS_KEY_PREFIX: redisPrefix, MIMIR_DATA_DIR: mkdtempSync(join(tmpdir(), 'mimir-copy-redis-host-')), MIMIR_PUBLIC_URL: s.publicUrl };
  let first: Awaited<ReturnType<typeof cli>>;
  let back: Awaited<ReturnType<typeof cli>>;
  let toPostgres: Awaited<ReturnType<typeof cli>>;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let cluster: ClusterTopology;
  let toCluster: Awaited<ReturnType<typeof cli>>;

  before(async () => {
    db = await freshDatabase();
    cluster = await startCluster();
    const nodes = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
    toCluster = await cli(['storage', 'copy', '--to', `redis+cluster://:${encodeURIComponent(cluster.password)}@${nodes}`], { ...sqliteEnv, MIMIR_JWT_SECRET: JWT_SECRET });
    toPostgres = await cli(['storage', 'copy', '--to', db.url], { ...sqliteEnv, MIMIR_JWT_SECRET: JWT_SECRET });
    first = await cli(['storage', 'copy', '--to', `${REDIS_URL}?prefix=${encodeURIComponent(redisPrefix)}`], { ...sqliteEnv, MIMIR_JWT_SECRET: JWT_SECRET });
    back = await cli(['storage', 'copy', '--to', `sqlite://${join(backDir, 'mimir-auth.db')}`], { ...redisEnv, MIMIR_JWT_SECRET: JWT_SECRET });
  });

  it('refuses a store several hubs share without MIMIR_JWT_SECRET, naming it, and writes nothing', async () => {
    const prefix = newRedisPrefix();
    const res = await cli(['storage', 'copy', '--to', `${REDIS_URL}?prefix=${encodeURIComponent(prefix)}`], sqliteEnv);
    assert.equal(res.code, 64, res.stderr);
    assert.match(res.stderr, /MIMIR_JWT_SECRET: is required/);
    assert.equal(await keysUnder(prefix), 0);
  });

  it('prints per-kind counts, every record read back the same, and the keys re-sealed', () => {
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const c = counts(first.stdout);
    for (const kind of ['api_key', 'service_account', 'signing_key', 'refresh_token', 'refresh_family', 'revoked', 'oauth_client']) {
      const [copied, verified] = c.get(kind) ?? [0, 0];
      assert.ok(copied > 0, `${kind} copied: ${first.stdout}`);
      assert.equal(verified, copied, kind);
    }
    assert.match(first.stdout, /signing keys re-sealed under MIMIR_JWT_SECRET: [1-9]/);
    assert.match(first.stdout, /each read back the same/);
    assert.equal(back.code, 0, back.stderr + back.stdout);
    assert.deepEqual(counts(back.stdout), c, 'the way back carries the same records');
    assert.equal(toPostgres.code, 0, toPostgres.stderr + toPostgres.stdout);
    assert.deepEqual(counts(toPostgres.stdout), c, 'PostgreSQL gets the same records');
    assert.equal(toCluster.code, 0, toCluster.stderr + toCluster.stdout);
    assert.deepEqual(counts(toCluster.stdout), c, 'a Redis Cluster gets the same records');
  });

  it('is idempotent: a second run writes the same records and reports the same counts', async () => {
    const again = await cli(['storage', 'copy', '--to', `${REDIS_URL}?prefix=${encodeURIComponent(redisPrefix)}`], { ...sqliteEnv, MIMIR_JWT_SECRET: JWT_SECRET });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(counts(again.stdout), counts(first.stdout));
  });

  it('refuses an unknown URL form, naming the accepted ones', async () => {
    const res = await cli(['storage', 'copy', '--to', 'mysql://x/y'], sqliteEnv);
    assert.equal(res.code, 64);
    assert.match(res.stderr, /accepted: sqlite:\/\/\/path/);
  });

  describe('a hub on the Redis copy', () => {
    let t: TestHub | undefined;
    const hub = async () => (t ??= await startHub({ storage: 'redis', redisPrefix, env: { MIMIR_PUBLIC_URL: s.publicUrl, MIMIR_JWT_SECRET: JWT_SECRET } }));
    after(async () => { await t?.close(); });
    nothingLost(hub, s);
  });

  describe('a hub on the SQLite copy made from the Redis one', () => {
    let t: TestHub | undefined;
    const hub = async () => (t ??= await startHub({ storage: 'sqlite', dataDir: backDir, env: { MIMIR_PUBLIC_URL: s.publicUrl, MIMIR_JWT_SECRET: JWT_SECRET } }));
    after(async () => { await t?.close(); });
    nothingLost(hub, s);
  });

  describe('a hub on the PostgreSQL copy', () => {
    let t: TestHub | undefined;
    const hub = async () => (t ??= await startHub({ storage: 'postgres', env: { MIMIR_DATABASE_URL: db.url, MIMIR_PUBLIC_URL: s.publicUrl, MIMIR_JWT_SECRET: JWT_SECRET } }));
    after(async () => { await t?.close(); await db.drop(); });
    nothingLost(hub, s);
  });

  describe('a hub on the Redis Cluster copy', () => {
    let t: TestHub | undefined;
    const hub = async () => (t ??= await startHub({
      storage: 'redis',
      env: {
        MIMIR_REDIS_URL: cluster.url, MIMIR_REDIS_KEY_PREFIX: 'mimir:tokens:', MIMIR_REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(','),
        MIMIR_PUBLIC_URL: s.publicUrl, MIMIR_JWT_SECRET: JWT_SECRET,
      },
    }));
    after(async () => { await t?.close(); await cluster.stop(); });
    nothingLost(hub, s);
  });
});
