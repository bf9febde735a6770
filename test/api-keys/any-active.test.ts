/**
 * The start banner's admin-key check (`ApiKeys.anyActive`) scans the keys a page at a time and
 * stops at the first active key that passes, on every store: a hub with a million keys never holds
 * them all. The count of records the real store's scan handed over shows where it stopped.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKeys, type ApiKeyRecord } from '../../src/api-keys/index.ts';
import { MemoryStore, SqliteStore, type Store } from '../../src/storage/index.ts';
import { PostgresStore } from '../../src/storage/postgres.ts';
import { RedisStore } from '../../src/storage/redis.ts';
import { SCAN_PAGE } from '../../src/storage/adapter.ts';
import { newRedisPrefix, REDIS_URL } from '../helpers/hub.ts';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.ts';

const KIND = 'api_key';
const NOW = 1_800_000_000;
const isAdmin = (k: ApiKeyRecord) => k.roles.includes('admin');

describe('ApiKeys.anyActive scans the keys and stops at the first match', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-any-active-'));
  const databases: FreshDatabase[] = [];
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    for (const db of databases) await db.drop();
  });

  async function open(kind: 'memory' | 'sqlite' | 'redis' | 'postgres'): Promise<Store> {
    if (kind === 'memory') return new MemoryStore();
    if (kind === 'sqlite') return new SqliteStore(join(dir, `${kind}-${Date.now()}.db`));
    if (kind === 'redis') {
      const store = new RedisStore({ url: REDIS_URL, keyPrefix: newRedisPrefix() });
      await store.connect();
      return store;
    }
    const db = await freshDatabase();
    databases.push(db);
    const store = new PostgresStore({ url: db.url });
    await store.connect();
    return store;
  }

  /** The store, its scan counting the records it hands over. */
  function counting(store: Store): { pulled: () => number } {
    let pulled = 0;
    const scan = store.scan.bind(store);
    store.scan = <T>(kind: string) => (async function* () {
      for await (const r of scan<T>(kind)) {
        pulled++;
        yield r;
      }
    })();
    return { pulled: () => { const n = pulled; pulled = 0; return n; } };
  }

  const record = (id: string, roles: string[], extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord =>
    ({ id, name: id, roles, hash: 'x'.repeat(43), createdAt: NOW - 10, ...extra });

  for (const kind of ['memory', 'sqlite', 'redis', 'postgres'] as const) {
    it(`${kind}: true at the first active match (a revoked and an expired admin key do not count), false after reading every key`, async () => {
      const store = await open(kind);
      const { pulled } = counting(store);
      const keys = new ApiKeys(store, { now: () => NOW * 1000 });
      try {
        // By id: the revoked and the expired admin key first, then 1 234 reader keys, the one at 600 an admin.
        const total = 2 * SCAN_PAGE + 234;
        const records = [
          record('a000000000000001', ['admin'], { revokedAt: NOW - 5 }),
          record('a000000000000002', ['admin'], { expiresAt: NOW - 5 }),
          ...Array.from({ length: total }, (_, i) => record(`r${String(i).padStart(15, '0')}`, i === 600 ? ['admin'] : ['reader'])),
        ];
        for (let i = 0; i < records.length; i += 100) await Promise.all(records.slice(i, i + 100).map((r) => store.upsert(KIND, r.id, r)));
        await store.upsert('api_key_x', 'a000000000000000', record('a000000000000000', ['admin'])); // another kind

        assert.equal(await keys.anyActive(isAdmin), true);
        const read = pulled();
        if (kind === 'redis') assert.ok(read >= 1 && read <= records.length, `read ${read}`);
        else assert.equal(read, 2 + 601, 'stopped at the admin key, in the second page');

        assert.equal(await keys.anyActive(() => true), true);
        const first = pulled();
        if (kind === 'redis') assert.ok(first >= 1 && first <= 3, `read ${first}`);
        else assert.equal(first, 3, 'stopped at the first active key');

        await store.upsert(KIND, records[602]!.id, { ...records[602]!, revokedAt: NOW - 1 });
        assert.equal(await keys.anyActive(isAdmin), false);
        assert.ok(pulled() >= records.length, 'read every key before saying no');

        // With a limit (the start banner's): no answer after that many keys, and no more read.
        assert.equal(await keys.anyActive(isAdmin, { limit: 700 }), undefined);
        assert.equal(pulled(), 701, 'stopped after the limit');
        assert.equal(await keys.anyActive(isAdmin, { limit: 10 * records.length }), false, 'a limit the keys fit in still says no');
        pulled();
      } finally {
        if (kind === 'redis') for await (const r of store.scan(KIND)) await store.destroy(KIND, r.id);
        if (kind === 'redis') await store.destroy('api_key_x', 'a000000000000000');
        await store.close();
      }
    });
  }
});
