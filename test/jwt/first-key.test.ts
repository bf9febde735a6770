/**
 * Several instances starting together on an empty store make one signing key between them, not one
 * each: every instance signs with the same key, and a token one of them issues is verified by the
 * others at once. (Each making its own, an instance refused another's tokens until it reloaded its
 * key set, which it does for an unknown `kid` at most once a second: a flaky test on a busy
 * machine found it.) On each store kind several instances share: SQLite, Redis, PostgreSQL.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/index.ts';
import { KeyRing } from '../../src/jwt/keys.ts';
import { createStore } from '../../src/storage/index.ts';
import type { Store } from '../../src/storage/adapter.ts';
import { dropRedisPrefix } from '../../bench/lib/redis.ts';
import { newRedisPrefix, REDIS_URL } from '../helpers/hub.ts';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.ts';

const INSTANCES = 4;
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function instances(kind: 'sqlite' | 'redis' | 'postgres'): Promise<{ stores: Store[]; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-first-key-'));
  dirs.push(dir);
  const prefix = newRedisPrefix();
  let db: FreshDatabase | undefined;
  if (kind === 'postgres') db = await freshDatabase();
  const stores: Store[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const store = await createStore(kind === 'sqlite' ? { kind, sqlitePath: join(dir, 'hub.db') }
      : kind === 'redis' ? { kind, redis: { url: REDIS_URL, db: 0, keyPrefix: prefix } } : { kind, postgres: { url: db!.url } });
    await (store as { connect?: () => Promise<void> }).connect?.();
    stores.push(store);
  }
  return {
    stores,
    async cleanup() {
      for (const s of stores) await s.close();
      if (kind === 'redis') await dropRedisPrefix(REDIS_URL, prefix);
      await db?.drop();
    },
  };
}

describe('the first signing key of an empty store', () => {
  for (const kind of ['sqlite', 'redis', 'postgres'] as const) {
    for (const alg of ['RS256', 'HS256'] as const) {
      it(`${INSTANCES} instances opening at once on ${kind} (${alg}) sign with one key, the only one stored`, async () => {
        const { stores, cleanup } = await instances(kind);
        try {
          const dataDir = mkdtempSync(join(tmpdir(), 'mimir-first-key-data-'));
          dirs.push(dataDir);
          const config = loadConfig({ MIMIR_DATA_DIR: dataDir, MIMIR_JWT_ALGORITHM: alg, MIMIR_JWT_SECRET: `first-key-test-${randomBytes(24).toString('hex')}` }, { dotenv: false });
          const rings = await Promise.all(stores.map((store) => KeyRing.open(store, config)));
          const kids = new Set(rings.map((r) => r.currentKid));
          assert.equal(kids.size, 1, `one current key: ${[...kids].join(', ')}`);
          const [kid] = kids;
          for (const ring of rings) assert.ok(ring.verificationKey(kid!), 'each verifies the current key without reloading');
          const stored = await stores[0]!.list<{ kid: string }>('signing_key');
          assert.deepEqual(stored.map((r) => r.payload.kid), [kid], 'the losers\' keys are not kept');
        } finally {
          await cleanup();
        }
      });
    }
  }
});
