/**
 * A bounded, short-lived cache of stored records (API keys, service accounts) so a request does not
 * cost a storage round trip. Revocation invalidates entries at once in every instance that hears the
 * store's pub/sub message; `maxAgeMs` bounds how long a change made where no message reaches us
 * (another process on the same SQLite file) can go unseen.
 */
import { LruCache, type CacheLookups } from './lru.ts';

export class RecordCache<T> {
  readonly #lru: LruCache<T>;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  /** Bumped by every invalidation: a lookup that started before one must not cache its (stale) answer. */
  #generation = 0;

  constructor(options: { maxEntries: number; maxAgeMs: number; now?: () => number }) {
    this.#now = options.now ?? Date.now;
    this.#lru = new LruCache(options.maxAgeMs > 0 ? options.maxEntries : 0, this.#now);
    this.#maxAgeMs = options.maxAgeMs;
  }

  get size(): number {
    return this.#lru.size;
  }

  get maxEntries(): number {
    return this.#lru.maxEntries;
  }

  /** Lookups so far that hit and missed. */
  get lookups(): CacheLookups {
    return this.#lru.lookups;
  }

  /** The cached record, without loading (the synchronous hot path); undefined on a miss. */
  peek(key: string): T | undefined {
    return this.#lru.get(key);
  }

  /**
   * {@link peek} without counting the lookup, for a caller that either answers from it (and then
   * calls {@link countHit}) or goes on to a counted lookup of the same key.
   */
  peekUncounted(key: string): T | undefined {
    return this.#lru.get(key, false);
  }

  /** Counts one hit answered from {@link peekUncounted}. */
  countHit(): void {
    this.#lru.hits++;
  }

  /** The cached record, else `load()`'s answer (cached when not null). Null answers are never cached. */
  async get(key: string, load: () => Promise<T | null>): Promise<T | null> {
    return this.peek(key) ?? this.fill(key, load);
  }

  /** `load()`'s answer, cached when not null: for a caller whose `peek` just missed. */
  async fill(key: string, load: () => Promise<T | null>): Promise<T | null> {
    const generation = this.#generation;
    const loaded = await load();
    if (loaded !== null && generation === this.#generation) this.#lru.set(key, loaded, this.#now() + this.#maxAgeMs);
    return loaded;
  }

  /** Drops every entry the predicate matches, and any answer still being loaded. */
  invalidate(matches: (record: T) => boolean): void {
    this.#generation++;
    this.#lru.deleteWhere(matches);
  }

  /** Drops one entry by key, and any answer still being loaded. */
  forget(key: string): void {
    this.#generation++;
    this.#lru.delete(key);
  }

  clear(): void {
    this.#generation++;
    this.#lru.clear();
  }
}
