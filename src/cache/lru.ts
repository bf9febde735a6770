/**
 * A bounded least-recently-used map whose entries also expire at a fixed instant.
 * A JS Map iterates in insertion order, so re-inserting on a hit makes the first key the
 * least recently used one: O(1) get, set and eviction, no timers. A hit re-inserts only an entry
 * that has aged past half the capacity (counted in inserts and moves since its own): one used
 * more recently is nowhere near the front, and the delete-and-insert is most of a hit's cost.
 */
export interface CacheLookups { hits: number; misses: number }

export class LruCache<V> {
  readonly maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, { value: V; expiresAt: number; tick: number }>();
  /** Counts inserts and moves to the back: an entry's age is the difference. */
  #tick = 0;
  /** Lookups answered from the cache, and not (the hit-ratio metrics). */
  hits = 0;
  misses = 0;

  /** `maxEntries` 0 disables the cache (every get misses, set stores nothing). */
  constructor(maxEntries: number, now: () => number = Date.now) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) throw new RangeError('maxEntries must be a whole number >= 0');
    this.maxEntries = maxEntries;
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Lookups so far that hit and missed. */
  get lookups(): CacheLookups {
    return { hits: this.hits, misses: this.misses };
  }

  /**
   * The live value, or undefined; an expired entry is dropped, never returned. `counted` false:
   * a look that a counted lookup follows or stands for (see RecordCache.peekUncounted).
   */
  get(key: string, counted = true): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) {
      if (counted) this.misses++;
      return undefined;
    }
    if (this.#now() >= entry.expiresAt) {
      this.#entries.delete(key);
      if (counted) this.misses++;
      return undefined;
    }
    if (counted) this.hits++;
    if (this.#tick - entry.tick > this.maxEntries >> 1) {
      this.#entries.delete(key);
      entry.tick = ++this.#tick;
      this.#entries.set(key, entry);
    }
    return entry.value;
  }

  /** Stores until `expiresAt` (epoch ms); evicts the least recently used entry when full. */
  set(key: string, value: V, expiresAt: number): void {
    if (this.maxEntries === 0 || expiresAt <= this.#now()) return;
    this.#entries.delete(key);
    while (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, { value, expiresAt, tick: ++this.#tick });
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** Drops every entry whose value matches (revocation by record id); returns how many. */
  deleteWhere(matches: (value: V) => boolean): number {
    let n = 0;
    for (const [key, entry] of this.#entries) {
      if (matches(entry.value)) {
        this.#entries.delete(key);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.#entries.clear();
  }
}
