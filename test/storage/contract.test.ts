/**
 * One contract, every store. Memory and sqlite run on a frozen clock; Redis runs for real against
 * MIMIR_TEST_REDIS_URL and fails (never skips) when that Redis cannot be reached, and again on a
 * Sentinel-managed master and on a three-master Cluster, started here as real redis-server processes;
 * PostgreSQL runs for real in a fresh database on MIMIR_TEST_POSTGRES_URL (test/helpers/postgres.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createStore, MemoryStore, SqliteStore, StoreUnavailableError, type Store, type StoredEntry } from '../../src/storage/index.ts';
import { RedisStore } from '../../src/storage/redis.ts';
import { inChunks, SCAN_PAGE, WRITE_CHUNK, type StoredRecord } from '../../src/storage/adapter.ts';
import { escapeGlob } from '../../src/storage/redis.ts';
import { PostgresStore } from '../../src/storage/postgres.ts';
import { redactUrl } from '../../src/config/index.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import type { RedisTopology } from '../../src/storage/redis-topology.ts';
import { startCluster, startSentinel } from '../helpers/redis-topologies.ts';

const REDIS_URL = process.env.MIMIR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Backend {
  store: Store;
  /** Another instance sharing the same data (same file, another connection); memory: the same store. */
  peer: Store;
  /** Whether time is the injected frozen clock (exact assertions) or real time (Redis). */
  frozen: boolean;
  nowSeconds(): number;
  /** Lets `seconds` pass: advances the frozen clock, or really waits a bit longer for Redis. */
  elapse(seconds: number): Promise<void>;
  /** Opens a brand-new instance on the same data, or undefined when nothing survives (memory). */
  reopen?(): Store;
  /** A new, empty store of the same backend and clock (a copy target); the caller closes it. */
  blank(): Promise<Store>;
  teardown(): Promise<void>;
}

function frozenClock() {
  const clock = { ms: 1_700_000_000_000 };
  return {
    now: () => clock.ms,
    nowSeconds: () => Math.floor(clock.ms / 1000),
    elapse: async (seconds: number) => void (clock.ms += Math.round(seconds * 1000)),
  };
}

const backends: Record<'memory' | 'sqlite' | 'redis' | 'redis-sentinel' | 'redis-cluster' | 'postgres', () => Promise<Backend>> = {
  async memory() {
    const clock = frozenClock();
    const store = new MemoryStore({ now: clock.now });
    return { store, peer: store, frozen: true, ...clock, blank: async () => new MemoryStore({ now: clock.now }), teardown: () => store.close() };
  },
  async sqlite() {
    const clock = frozenClock();
    const dir = mkdtempSync(join(tmpdir(), 'mimir-sqlite-'));
    const path = join(dir, 'missing', 'parent', 'store.db'); // the store creates missing directories
    const store = new SqliteStore(path, { now: clock.now });
    const peer = new SqliteStore(path, { now: clock.now });
    return {
      store,
      peer,
      frozen: true,
      ...clock,
      reopen: () => new SqliteStore(path, { now: clock.now }),
      blank: async () => new SqliteStore(join(dir, `blank-${randomUUID()}.db`), { now: clock.now }),
      async teardown() {
        await Promise.all([store.close(), peer.close()]);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  redis: () => redisBackend(),
  async 'redis-sentinel'() {
    const sentinel = await startSentinel();
    const topology = { kind: 'sentinel', sentinels: sentinel.sentinels, name: sentinel.name, sentinelPassword: sentinel.sentinelPassword } as const;
    return redisBackend({ topology, url: sentinel.url, stop: sentinel.stop });
  },
  async 'redis-cluster'() {
    const cluster = await startCluster();
    return redisBackend({ topology: { kind: 'cluster', nodes: cluster.nodes }, url: cluster.url, stop: cluster.stop });
  },
  async postgres() {
    const db = await freshDatabase();
    const [store, peer] = [new PostgresStore({ url: db.url }), new PostgresStore({ url: db.url })];
    await Promise.all([store.connect(), peer.connect()]); // both create the schema at once
    return {
      store,
      peer,
      frozen: false,
      nowSeconds: () => Math.floor(Date.now() / 1000),
      // Expiry is in whole seconds on the hub's clock, rounded up (memory.ts expiryFor): a record with
      // a TTL of n seconds lives n to n + 1 s, unlike Redis's native millisecond expiry.
      elapse: (seconds) => sleep(seconds * 1000 + 1100),
      reopen: () => new PostgresStore({ url: db.url }),
      async blank() {
        const other = new PostgresStore({ url: db.url, schema: `blank_${randomUUID().slice(0, 8)}` });
        await other.connect();
        return other;
      },
      async teardown() {
        await Promise.all([store.close(), peer.close()]);
        await db.drop();
      },
    };
  },
};

/** MIMIR_TEST_REDIS_URL, or a topology of our own (its URL carries the password; its host is unused). */
async function redisBackend(own?: { topology: RedisTopology; url: string; stop: () => Promise<void> }): Promise<Backend> {
  const url = own?.url ?? REDIS_URL;
  // Glob metacharacters in the prefix prove that SCAN patterns are escaped.
  const keyPrefix = `mimir-test:${randomUUID()}:[t]*?:`;
  const open = async () => {
    const store = new RedisStore({ url, keyPrefix, ...(own ? { topology: own.topology } : {}) });
    try {
      await store.connect();
    } catch (err) {
      if (own) throw err;
      throw new Error(
        `Redis is required for the storage contract tests and ${redactUrl(REDIS_URL)} is unreachable ` +
          `(${(err as Error).message}). Run \`npm test\`, which provides one, or set MIMIR_TEST_REDIS_URL.`,
        { cause: err },
      );
    }
    return store;
  };
  let store: RedisStore, peer: RedisStore;
  try {
    [store, peer] = [await open(), await open()];
  } catch (err) {
    await own?.stop();
    throw err;
  }
  return {
    store,
    peer,
    frozen: false,
    nowSeconds: () => Math.floor(Date.now() / 1000),
    elapse: (seconds) => sleep(seconds * 1000 + 200),
    reopen: () => new RedisStore({ url, keyPrefix, ...(own ? { topology: own.topology } : {}) }),
    async blank() {
      const other = new RedisStore({ url, keyPrefix: `${keyPrefix}blank-${randomUUID()}:`, ...(own ? { topology: own.topology } : {}) });
      await other.connect();
      return other;
    },
    async teardown() {
      await Promise.all([store.close(), peer.close()]);
      if (own) return own.stop();
      const raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await raw.connect();
      let cursor = '0';
      do {
        const [next, keys] = await raw.scan(cursor, 'MATCH', `${escapeGlob(keyPrefix)}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await raw.del(...keys);
      } while (cursor !== '0');
      await raw.quit();
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** A fresh kind per test, so tests never see each other's records (and Redis tests can run in parallel). */
const newKind = () => `k_${randomUUID().slice(0, 8)}`;

for (const [name, setup] of Object.entries(backends)) {
  // Redis and PostgreSQL tests wait on real TTLs, so they run concurrently; the others share one frozen clock.
  describe(`${name} store contract`, { concurrency: name.startsWith('redis') || name === 'postgres' }, () => {
    let b: Backend;
    before(async () => {
      b = await setup();
    });
    after(async () => {
      await b?.teardown();
    });

    it('reports its kind and answers ping', async () => {
      assert.equal(b.store.kind, name.split('-')[0]); // redis-sentinel and redis-cluster are 'redis'
      await b.store.ping();
    });

    it('upsert then find returns the payload; upsert replaces payload, TTL and consumption', async () => {
      const kind = newKind();
      await b.store.upsert(kind, 'r1', { a: 1, nested: { list: [1, 'x'] } }, 60);
      const found = await b.store.find(kind, 'r1');
      assert.deepEqual(found?.payload, { a: 1, nested: { list: [1, 'x'] } });
      assert.equal(found?.consumedAt, undefined);
      assertExpiry(b, found?.expiresAt, 60);
      assert.equal(await b.store.consume(kind, 'r1'), true);
      await b.store.upsert(kind, 'r1', { a: 2 });
      assert.deepEqual(await b.peer.find(kind, 'r1'), { payload: { a: 2 } });
    });

    it('find of a missing record returns null', async () => {
      assert.equal(await b.store.find(newKind(), 'nope'), null);
    });

    it('a record is not returned once its TTL has passed', async () => {
      const kind = newKind();
      const ttl = b.frozen ? 10 : 1;
      await b.store.upsert(kind, 'ttl', { v: 1 }, ttl);
      if (b.frozen) await b.elapse(ttl - 0.001);
      assert.notEqual(await b.store.find(kind, 'ttl'), null);
      await b.elapse(b.frozen ? 0.001 : ttl);
      assert.equal(await b.store.find(kind, 'ttl'), null);
      assert.equal(await b.peer.find(kind, 'ttl'), null);
    });

    it('consume succeeds exactly once', async () => {
      const kind = newKind();
      await b.store.upsert(kind, 'code', { c: 1 }, 60);
      assert.equal(await b.store.consume(kind, 'code'), true);
      assert.equal(await b.store.consume(kind, 'code'), false);
      assert.equal(await b.peer.consume(kind, 'code'), false);
    });

    it('consume of a missing or expired record is false', async () => {
      const kind = newKind();
      assert.equal(await b.store.consume(kind, 'missing'), false);
      await b.store.upsert(kind, 'old', {}, 1);
      await b.elapse(1);
      assert.equal(await b.store.consume(kind, 'old'), false);
    });

    it('50 concurrent consumes of one record (across two instances) yield exactly one true', async () => {
      const kind = newKind();
      await b.store.upsert(kind, 'race', {}, 60);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? b.peer : b.store).consume(kind, 'race')),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    it('consumeAndPut: 50 concurrent rotations of one record store exactly one successor, and a loser writes nothing', async () => {
      const kind = newKind();
      await b.store.upsert(kind, 'old', { gen: 0 }, 60);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? b.peer : b.store).consumeAndPut(kind, 'old', { kind, id: `next-${i}`, payload: { gen: 1, i }, ttlSeconds: 30 })),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      const stored = (await b.store.list(kind)).map((r) => r.id);
      assert.deepEqual(stored, [`next-${winner}`, 'old']);
      const successor = await b.peer.find(kind, `next-${winner}`);
      assert.deepEqual(successor?.payload, { gen: 1, i: winner });
      assertExpiry(b, successor?.expiresAt, 30);
      assert.ok((await b.store.find(kind, 'old'))?.consumedAt !== undefined);
    });

    it('consumeAndPut of a missing, expired or consumed record is false and stores nothing', async () => {
      const kind = newKind();
      assert.equal(await b.store.consumeAndPut(kind, 'missing', { kind, id: 'n1', payload: {} }), false);
      await b.store.upsert(kind, 'old', {}, 1);
      await b.elapse(1);
      assert.equal(await b.store.consumeAndPut(kind, 'old', { kind, id: 'n2', payload: {} }), false);
      await b.store.upsert(kind, 'used', {}, 60);
      assert.equal(await b.store.consume(kind, 'used'), true);
      assert.equal(await b.store.consumeAndPut(kind, 'used', { kind, id: 'n3', payload: {} }), false);
      for (const id of ['n1', 'n2', 'n3']) assert.equal(await b.store.find(kind, id), null);
    });

    it('entries yields every live record of every kind, with consumption and expiry; restore writes it back exactly', async () => {
      const [k1, k2] = [newKind(), newKind()];
      await b.store.upsert(k1, 'plain', { a: 1 });
      await b.store.upsert(k1, 'ttl:with*colon', { b: 2 }, 60);
      await b.store.upsert(k2, 'used', { c: 3 }, 60);
      assert.equal(await b.store.consume(k2, 'used'), true);
      assert.equal(await b.store.increment(k2, 'counter', 5, 60), 5);
      await b.store.upsert(k2, 'gone', {}, 1);
      await b.elapse(1);
      const mine = new Set([k1, k2]);
      const seen: StoredEntry[] = [];
      for await (const e of b.peer.entries()) if (mine.has(e.kind)) seen.push(e);
      seen.sort((x, y) => `${x.kind}/${x.id}`.localeCompare(`${y.kind}/${y.id}`));
      assert.deepEqual(seen.map((e) => `${e.kind === k1 ? 'k1' : 'k2'}/${e.id}`).sort(), ['k1/plain', 'k1/ttl:with*colon', 'k2/counter', 'k2/used']);
      const byId = new Map(seen.map((e) => [e.id, e]));
      assert.equal(byId.get('plain')?.expiresAt, undefined);
      assert.ok(byId.get('used')?.consumedAt !== undefined);
      assert.deepEqual(byId.get('counter')?.payload, { value: 5 });

      // Into another kind namespace of the same store (a copy target): everything reads back the same.
      const target = await b.blank();
      try {
        for (const e of seen) await target.restore(e);
        for (const e of seen) {
          const back = await target.find(e.kind, e.id);
          assert.deepEqual(back?.payload, e.payload);
          assert.equal(back?.consumedAt, e.consumedAt);
          assert.equal(back?.expiresAt, e.expiresAt);
        }
        assert.equal(await target.consume(k2, 'used'), false, 'a consumed record stays consumed');
        assert.equal(await target.increment(k2, 'counter', 1), 6, 'a counter goes on from its value');
        await target.restore({ kind: k1, id: 'expired', payload: {}, expiresAt: b.nowSeconds() });
        assert.equal(await target.find(k1, 'expired'), null, 'an expiry already past writes nothing');
      } finally {
        await target.close();
      }
    });

    it('a consumed record is still found, with consumedAt set', async () => {
      const kind = newKind();
      await b.store.upsert(kind, 'once', { k: 'v' }, 60);
      const t0 = b.nowSeconds();
      assert.equal(await b.store.consume(kind, 'once'), true);
      const found = await b.peer.find(kind, 'once');
      assert.ok(found);
      assert.deepEqual(found.payload, { k: 'v' });
      assert.ok(found.consumedAt !== undefined && found.consumedAt >= t0 && found.consumedAt <= b.nowSeconds());
      assertExpiry(b, found.expiresAt, 60); // consuming keeps the TTL
    });

    it('insert creates only if absent, and succeeds over an expired record', async () => {
      const kind = newKind();
      assert.equal(await b.store.insert(kind, 'i', { n: 1 }, 1), true);
      assert.equal(await b.peer.insert(kind, 'i', { n: 2 }, 60), false);
      assert.deepEqual((await b.store.find(kind, 'i'))?.payload, { n: 1 });
      assert.equal(await b.store.consume(kind, 'i'), true);
      assert.equal(await b.store.insert(kind, 'i', { n: 3 }), false, 'a consumed live record still blocks insert');
      await b.elapse(1);
      assert.equal(await b.store.insert(kind, 'i', { n: 4 }), true);
      assert.deepEqual(await b.store.find(kind, 'i'), { payload: { n: 4 } });
    });

    it('destroy removes a record and reports whether one existed', async () => {
      const kind = newKind();
      await b.store.upsert(kind, 'd', {});
      assert.equal(await b.peer.destroy(kind, 'd'), true);
      assert.equal(await b.store.find(kind, 'd'), null);
      assert.equal(await b.store.destroy(kind, 'd'), false);
      await b.store.upsert(kind, 'gone', {}, 1);
      await b.elapse(1);
      assert.equal(await b.store.destroy(kind, 'gone'), false, 'an expired record does not count');
    });

    it('list returns live records only, of that kind only, with ids containing ":" and "*"', async () => {
      const kind = newKind();
      const ids = ['a:b:c', 'star*', '*', 'q?[x]\\', 'plain'];
      for (const id of ids) await b.store.upsert(kind, id, { id }, 600);
      await b.store.upsert(kind, 'short:lived*', {}, 1);
      await b.store.upsert(`${kind}x`, 'other-kind', {}); // a kind whose name extends this one
      await b.store.consume(kind, 'plain');
      await b.elapse(1);
      const listed = await b.peer.list(kind);
      assert.deepEqual(listed.map((r) => r.id), [...ids].sort());
      for (const r of listed) assert.deepEqual(r.payload, { id: r.id });
      assert.ok(listed.find((r) => r.id === 'plain')?.consumedAt !== undefined);
      assert.deepEqual(await b.store.list(newKind()), []);
    });

    it('scan yields every live record of a kind across several pages, nothing expired, nothing of another kind', async () => {
      const kind = newKind();
      // 1 234 records (three pages), odd ids among them; a few expired, one in each page.
      const ids = [...Array.from({ length: 2 * SCAN_PAGE + 230 }, (_, i) => `r${String(i).padStart(5, '0')}`), '', 'a:b:c', 'star*', 'q?[x]\\'];
      await inChunks(ids, (id) => b.store.upsert(kind, id, { id }, 600));
      await b.store.upsert(`${kind}x`, 'other-kind', {}); // a kind whose name extends this one
      await b.store.upsert(newKind(), 'r00000', {});
      assert.equal(await b.store.consume(kind, 'r00001'), true);
      await inChunks(['r00000~', `r${SCAN_PAGE}~`, `r${2 * SCAN_PAGE}~`, 'zz'], (id) => b.store.upsert(kind, id, {}, 1));
      await b.elapse(1);
      const seen: Array<{ id: string } & StoredRecord> = [];
      for await (const r of b.peer.scan(kind)) seen.push(r);
      const expected = [...ids].sort();
      if (name.startsWith('redis')) {
        // SCAN order; a record may come twice if the keyspace is resized meanwhile (the contract allows it).
        assert.deepEqual([...new Set(seen.map((r) => r.id))].sort(), expected);
      } else {
        assert.deepEqual(seen.map((r) => r.id), expected, 'by id, each once');
      }
      for (const r of seen) {
        assert.deepEqual(r.payload, { id: r.id });
        assertExpiry(b, r.expiresAt, 600, 10);
        assert.equal(r.consumedAt !== undefined, r.id === 'r00001');
      }
      for await (const r of b.store.scan(newKind())) assert.fail(`an empty kind yielded ${r.id}`);
      await assert.rejects(async () => { for await (const r of b.store.scan('has:colon')) assert.fail(`yielded ${r.id}`); }, TypeError);
    });

    it('upsertMany writes every record across several chunks, each with its TTL; incrementMany adds to each counter', async () => {
      const kind = newKind();
      const n = 2 * WRITE_CHUNK + 17;
      await b.store.upsert(kind, 'r00003', { old: true }, 600);
      await b.store.upsertMany(Array.from({ length: n }, (_, i) => ({ kind, id: `r${String(i).padStart(5, '0')}`, payload: { i }, ...(i % 2 ? { ttlSeconds: 600 } : {}) })));
      const listed = await b.peer.list(kind);
      assert.equal(listed.length, n);
      for (const r of listed) {
        const i = Number(r.id.slice(1));
        assert.deepEqual(r.payload, { i }, 'written, replacing what was there');
        if (i % 2) assertExpiry(b, r.expiresAt, 600, 10); else assert.equal(r.expiresAt, undefined);
      }
      await b.store.upsertMany([]);
      await assert.rejects(b.store.upsertMany([{ kind: 'has:colon', id: 'x', payload: {} }]), TypeError);
      // One id twice in a batch: the last write stands. A record that cannot be written costs only itself.
      const twice = newKind();
      await assert.rejects(b.store.upsertMany([
        { kind: twice, id: 'a', payload: { v: 1 } }, { kind: twice, id: 'bad', payload: { n: 1n } },
        { kind: twice, id: 'b', payload: { v: 2 } }, { kind: twice, id: 'a', payload: { v: 3 }, ttlSeconds: 600 },
      ]));
      const kept = await b.peer.list(twice);
      assert.deepEqual(kept.map((r) => [r.id, r.payload]), [['a', { v: 3 }], ['b', { v: 2 }]]);
      assertExpiry(b, kept[0]!.expiresAt, 600, 10);
      const counters = newKind();
      await b.store.increment(counters, 'c0', 5);
      await b.store.incrementMany(counters, Array.from({ length: WRITE_CHUNK + 3 }, (_, i) => [`c${i}`, i + 1] as const));
      await b.store.incrementMany(counters, [['c0', 2], ['c1', 1]]);
      assert.equal(await b.peer.increment(counters, 'c0', 0), 8);
      assert.equal(await b.peer.increment(counters, 'c1', 0), 3);
      assert.equal(await b.peer.increment(counters, `c${WRITE_CHUNK + 2}`, 0), WRITE_CHUNK + 3);
    });

    if (!name.startsWith('redis')) {
      it('scan reads each page when it is reached: a record removed meanwhile from a later page is not yielded', async () => {
        const kind = newKind();
        const ids = Array.from({ length: SCAN_PAGE + 10 }, (_, i) => `r${String(i).padStart(5, '0')}`);
        await inChunks(ids, (id) => b.store.upsert(kind, id, {}));
        const it = b.peer.scan(kind)[Symbol.asyncIterator]();
        assert.equal((await it.next()).value?.id, 'r00000');
        assert.equal(await b.store.destroy(kind, ids.at(-1)!), true);
        const rest: string[] = [];
        for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.id);
        assert.deepEqual(rest, ids.slice(1, -1));
      });
    }

    it('increment is atomic under 100 concurrent increments', async () => {
      const kind = newKind();
      const values = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 ? b.peer : b.store).increment(kind, 'n', 1, 600)),
      );
      assert.deepEqual([...values].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i + 1));
      const found = await b.store.find(kind, 'n');
      assert.deepEqual(found?.payload, { value: 100 });
      assertExpiry(b, found?.expiresAt, 600, 1);
    });

    it('increment starts a counter at 0 with the TTL, and restarts it once expired', async () => {
      const kind = newKind();
      assert.equal(await b.store.increment(kind, 'c', 5, 1), 5);
      assert.equal(await b.store.increment(kind, 'c', -2, 60), 3, 'an existing counter keeps its TTL');
      await b.elapse(1);
      assert.equal(await b.store.increment(kind, 'c', 1), 1);
      assert.deepEqual(await b.store.find(kind, 'c'), { payload: { value: 1 } });
      await b.store.upsert(kind, 'p', { value: 10, label: 'kept' });
      assert.equal(await b.store.increment(kind, 'p', 1), 11, 'adds to payload.value of a stored record');
      assert.deepEqual((await b.store.find(kind, 'p'))?.payload, { value: 11, label: 'kept' });
    });

    it('rejects invalid kinds, TTLs and increments', async () => {
      await assert.rejects(b.store.upsert('has:colon', 'x', {}), TypeError);
      await assert.rejects(b.store.upsert(newKind(), 'x', {}, 0), RangeError);
      await assert.rejects(b.store.insert(newKind(), 'x', {}, 1.5), RangeError);
      await assert.rejects(b.store.increment(newKind(), 'x', 0.5), RangeError);
    });

    if (!name.startsWith('redis')) {
      it('purgeExpired removes only expired records and counts them per kind', async () => {
        const kind = newKind();
        await b.store.upsert(kind, 'forever', {});
        await b.store.upsert(kind, 'later', {}, 600);
        await b.store.upsert(kind, 'old1', {}, 1);
        await b.store.upsert(kind, 'old2', {}, 1);
        await b.elapse(1);
        const removed = await b.store.purgeExpired();
        assert.equal(removed[kind], 2);
        assert.notEqual(await b.store.find(kind, 'forever'), null);
        assert.notEqual(await b.store.find(kind, 'later'), null);
        assert.equal((await b.store.purgeExpired())[kind], undefined);
      });
    } else {
      it('purgeExpired returns {} (Redis expires keys itself)', async () => {
        assert.deepEqual(await b.store.purgeExpired(), {});
      });
    }

    it('publish delivers to subscribers (across instances where shared)', async () => {
      const channel = `revocations-${randomUUID()}`;
      const received: string[] = [];
      let done = () => {};
      const got = new Promise<void>((resolve) => (done = resolve));
      await b.peer.subscribe(channel, (m) => {
        received.push(m);
        if (received.length === 2) done();
      });
      await b.peer.subscribe(channel, () => {}); // a second handler on the same channel is fine
      await b.store.publish(`${channel}-other`, 'not for us');
      await b.store.publish(channel, 'one');
      await b.store.publish(channel, 'two');
      await Promise.race([got, sleep(2000).then(() => assert.fail(`received only ${JSON.stringify(received)}`))]);
      assert.deepEqual(received, ['one', 'two']);
    });

    if (name !== 'memory') {
      it('data survives reopening the store', async () => {
        const kind = newKind();
        const writer = b.reopen!();
        if (writer instanceof RedisStore) await writer.connect();
        await writer.upsert(kind, 'persisted', { ok: true }, 600);
        await writer.consume(kind, 'persisted');
        await writer.close();
        const reader = b.reopen!();
        if (reader instanceof RedisStore) await reader.connect(); // no offline queue: connect before the first command
        try {
          const found = await reader.find(kind, 'persisted');
          assert.ok(found);
          assert.deepEqual(found.payload, { ok: true });
          assert.ok(found.consumedAt !== undefined);
          assert.equal(await reader.consume(kind, 'persisted'), false);
        } finally {
          await reader.close();
        }
      });
    }
  });
}

describe('sqlite store across processes', () => {
  it('consume yields exactly one winner per record among 4 processes sharing the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-sqlite-mp-'));
    const path = join(dir, 'store.db');
    const ids = Array.from({ length: 40 }, (_, i) => `code-${i}`);
    const store = new SqliteStore(path);
    try {
      for (const id of ids) await store.upsert('race', id, {}, 600);
      const startAt = Date.now() + 1500; // all children race from the same moment
      const child = `
        const { SqliteStore } = await import(${JSON.stringify(new URL('../../src/storage/sqlite.ts', import.meta.url).href)});
        const store = new SqliteStore(${JSON.stringify(path)});
        while (Date.now() < ${startAt}) {}
        const won = [];
        for (const id of ${JSON.stringify(ids)}) if (await store.consume('race', id)) won.push(id);
        await store.close();
        process.stdout.write(JSON.stringify(won));`;
      const outputs = await Promise.all(
        Array.from({ length: 4 }, () =>
          promisify(execFile)(process.execPath, ['--no-warnings', '--input-type=module', '-e', child]),
        ),
      );
      const won = outputs.flatMap((o) => JSON.parse(o.stdout) as string[]);
      assert.deepEqual([...won].sort(), [...ids].sort());
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scan on an unreachable Redis', () => {
  it('rejects with StoreUnavailableError, as every other method does', async () => {
    const store = new RedisStore({ url: 'redis://127.0.0.1:1', keyPrefix: `mimir-test:${randomUUID()}:` }); // never connected: nothing listens there
    try {
      await assert.rejects(async () => { for await (const r of store.scan(newKind())) assert.fail(`yielded ${r.id}`); }, StoreUnavailableError);
      await assert.rejects(store.list(newKind()), StoreUnavailableError);
    } finally {
      await store.close();
    }
  });
});

describe('createStore', () => {
  it('opens memory and sqlite stores', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-create-'));
    try {
      for (const store of [
        await createStore({ kind: 'memory' }),
        await createStore({ kind: 'sqlite', sqlitePath: join(dir, 'db', 'x.db') }),
      ]) {
        await store.ping();
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A generous timeout catches a hang (an unreachable Redis must fail, not wait forever) without timing the answer.
  it('rejects, naming MIMIR_REDIS_URL and hiding the password, when Redis is unreachable', { timeout: 20_000 }, async () => {
    await assert.rejects(
      createStore({ kind: 'redis', redis: { url: 'redis://user:s3cret@127.0.0.1:1', db: 0, keyPrefix: 'x:' } }),
      (err: Error) => {
        assert.match(err.message, /MIMIR_REDIS_URL/);
        assert.match(err.message, /127\.0\.0\.1:1/);
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      },
    );
  });

  it('connects to a reachable Redis', async () => {
    const store = await createStore({ kind: 'redis', redis: { url: REDIS_URL, db: 0, keyPrefix: `mimir-test:${randomUUID()}:` } });
    await store.ping();
    await store.close();
  });

  it('rejects, naming MIMIR_DATABASE_URL and hiding the password, when PostgreSQL is unreachable', { timeout: 20_000 }, async () => {
    await assert.rejects(
      createStore({ kind: 'postgres', postgres: { url: 'postgres://user:s3cret@127.0.0.1:1/db' } }),
      (err: Error) => {
        assert.match(err.message, /MIMIR_DATABASE_URL/);
        assert.match(err.message, /127\.0\.0\.1:1/);
        assert.match(err.message, /ECONNREFUSED/);
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      },
    );
  });

  it('opens a reachable PostgreSQL, creating its schema', async () => {
    const db = await freshDatabase();
    try {
      const store = await createStore({ kind: 'postgres', postgres: { url: db.url } });
      assert.equal(store.kind, 'postgres');
      await store.upsert('k', 'id', { ok: true });
      assert.deepEqual(await store.find('k', 'id'), { payload: { ok: true } });
      await store.close();
    } finally {
      await db.drop();
    }
  });
});

/** Exact with a frozen clock; with real time the write happened up to `slack` s before we looked. */
function assertExpiry(b: Backend, expiresAt: number | undefined, ttl: number, slack = 0): void {
  assert.ok(expiresAt !== undefined, 'expiresAt is set');
  const expected = b.nowSeconds() + ttl;
  if (b.frozen && slack === 0) assert.equal(expiresAt, expected);
  else assert.ok(expiresAt >= expected - 1 - slack && expiresAt <= expected + 1, `expiresAt ${expiresAt} vs ${expected}`);
}
