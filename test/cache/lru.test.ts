import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LruCache } from '../../src/cache/lru.ts';
import { RecordCache } from '../../src/cache/records.ts';

describe('bounded caches', () => {
  it('an LRU cache never holds more entries than its bound, evicting the least recently used', () => {
    const cache = new LruCache<number>(10);
    for (let i = 0; i < 1000; i++) {
      cache.set(`k${i}`, i, Date.now() + 60_000);
      if (i === 5) assert.equal(cache.get('k0'), 0); // k0 becomes most recently used
      assert.ok(cache.size <= 10, `size ${cache.size} after ${i + 1} inserts`);
    }
    assert.equal(cache.size, 10);
    assert.equal(cache.get('k999'), 999);
    assert.equal(cache.get('k1'), undefined);
  });

  it('an entry is never returned at or after its expiry instant', () => {
    let now = 1_000_000;
    const cache = new LruCache<string>(10, () => now);
    cache.set('a', 'x', now + 1000);
    now += 999;
    assert.equal(cache.get('a'), 'x');
    now += 1;
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0, 'the expired entry is dropped');
    cache.set('b', 'y', now);
    assert.equal(cache.size, 0, 'an entry already expired is not stored');
  });

  it('a cache of size 0 stores nothing', () => {
    const cache = new LruCache<string>(0);
    cache.set('a', 'x', Date.now() + 60_000);
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.size, 0);
  });

  it('a record load that started before an invalidation does not cache its stale answer', async () => {
    const cache = new RecordCache<{ id: string }>({ maxEntries: 10, maxAgeMs: 60_000 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pending = cache.get('k', async () => { await gate; return { id: 'a' }; });
    cache.invalidate((r) => r.id === 'a');
    release();
    assert.deepEqual(await pending, { id: 'a' });
    assert.equal(cache.size, 0);
    let loads = 0;
    await cache.get('k', async () => { loads++; return { id: 'a' }; });
    await cache.get('k', async () => { loads++; return { id: 'a' }; });
    assert.equal(loads, 1, 'after the invalidation the next answer is cached again');
  });

  it('a record older than the max age is read again', async () => {
    let now = 5_000_000;
    const cache = new RecordCache<{ v: number }>({ maxEntries: 10, maxAgeMs: 5000, now: () => now });
    let loads = 0;
    const load = async () => ({ v: ++loads });
    assert.equal((await cache.get('k', load))?.v, 1);
    now += 4999;
    assert.equal((await cache.get('k', load))?.v, 1);
    now += 1;
    assert.equal((await cache.get('k', load))?.v, 2);
  });
});
