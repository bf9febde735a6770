/**
 * What tests and bench runs leave in a Redis they share with others is dropped by key prefix
 * (bench/lib/redis.ts `dropRedisPrefix`, test/helpers/hub.ts, scripts/test.ts): only that prefix's
 * keys may go, never another's that its SCAN pattern would match.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { dropRedisPrefix } from '../../bench/lib/redis.ts';
import { escapeGlob } from '../../src/storage/redis.ts';
import { newRedisPrefix, REDIS_URL, startHub } from '../helpers/hub.ts';

describe('dropping a Redis key prefix on a shared Redis', () => {
  let redis: Redis;
  const base = newRedisPrefix();
  /** The keys under `prefix` (SCAN, not KEYS: the Redis is shared). */
  const keysUnder = async (prefix: string) => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found;
  };
  before(async () => {
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  after(async () => {
    // Our own mess, by exact names (no pattern).
    const keys = await keysUnder(base);
    if (keys.length) await redis.unlink(...keys);
    await redis.quit();
  });

  it('glob characters in the prefix are literal: a key the unescaped pattern would match is left', async () => {
    const prefix = `${base}[ab]*?:`;
    const others = [`${base}a-x:1`, `${base}b:?:2`];
    await redis.set(`${prefix}1`, 'own');
    await redis.set(`${prefix}2`, 'own');
    for (const k of others) await redis.set(k, 'someone else\'s');
    await dropRedisPrefix(REDIS_URL, prefix);
    assert.equal(await redis.exists(`${prefix}1`, `${prefix}2`), 0, 'the prefix\'s keys went');
    assert.equal(await redis.exists(...others), others.length, 'keys outside the prefix stayed');
  });

  it('an empty prefix is refused (it would be every key of the database), before connecting', async () => {
    // Nothing listens on port 1: the refusal must come before any connection (never tried on the shared Redis).
    await assert.rejects(dropRedisPrefix('redis://127.0.0.1:1', ''), /empty prefix/);
  });

  it('a test hub drops only a prefix of its own making: one the test set (shared with another hub, or anyone\'s) stays', async () => {
    const shared = `${base}shared:`;
    await redis.set(`${shared}another-hub`, 'still in use');
    const t = await startHub({ storage: 'redis', env: { MIMIR_REDIS_KEY_PREFIX: shared } });
    await t.close();
    assert.equal(await redis.exists(`${shared}another-hub`), 1, 'the test\'s prefix was dropped by the helper');

    const own = await startHub({ storage: 'redis' });
    const prefix = own.config.storage.redis.keyPrefix;
    await own.close();
    assert.deepEqual(await keysUnder(prefix), [], 'its own prefix is dropped');
  });

  it('newRedisPrefix is under MIMIR_TEST_REDIS_NAMESPACE (npm test\'s run), so a run drops its own keys only', () => {
    const saved = process.env.MIMIR_TEST_REDIS_NAMESPACE;
    process.env.MIMIR_TEST_REDIS_NAMESPACE = 'mimir-test:run-1:';
    try {
      assert.match(newRedisPrefix(), /^mimir-test:run-1:[0-9a-f]{12}:$/);
    } finally {
      if (saved === undefined) delete process.env.MIMIR_TEST_REDIS_NAMESPACE;
      else process.env.MIMIR_TEST_REDIS_NAMESPACE = saved;
    }
  });
});
