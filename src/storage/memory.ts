import { EventEmitter } from 'node:events';
import { SCAN_PAGE, type Store, type StoredEntry, type StoredRecord, type Successor, inChunks, type Upsert } from './adapter.ts';

export interface MemoryStoreOptions {
  /** Clock in epoch milliseconds; injectable so tests can freeze time. */
  now?: () => number;
}

interface Entry {
  /** Kept serialized so callers never share objects with the store (same semantics as sqlite/redis). */
  payload: string;
  expiresAt?: number;
  consumedAt?: number;
}

/** Single-process store for development and tests. Pub/sub delivers within this process only. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly #now: () => number;
  readonly #kinds = new Map<string, Map<string, Entry>>();
  readonly #bus = new EventEmitter().setMaxListeners(0);
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  async upsert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<void> {
    this.#table(kind).set(id, this.#entry(payload, ttlSeconds));
  }

  async insert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<boolean> {
    if (this.#live(kind, id)) return false;
    this.#table(kind).set(id, this.#entry(payload, ttlSeconds));
    return true;
  }

  async find<T = Record<string, unknown>>(kind: string, id: string): Promise<StoredRecord<T> | null> {
    const entry = this.#live(kind, id);
    return entry ? toRecord<T>(entry) : null;
  }

  async consume(kind: string, id: string): Promise<boolean> {
    const entry = this.#live(kind, id);
    if (!entry || entry.consumedAt !== undefined) return false;
    entry.consumedAt = this.#seconds();
    return true;
  }

  async consumeAndPut(kind: string, id: string, next: Successor): Promise<boolean> {
    const successor = this.#entry(next.payload, next.ttlSeconds);
    const target = this.#table(next.kind);
    if (!(await this.consume(kind, id))) return false;
    target.set(next.id, successor);
    return true;
  }

  async destroy(kind: string, id: string): Promise<boolean> {
    const live = this.#live(kind, id) !== undefined;
    this.#table(kind).delete(id);
    return live;
  }

  async list<T = Record<string, unknown>>(kind: string): Promise<Array<{ id: string } & StoredRecord<T>>> {
    const now = this.#seconds();
    return [...this.#table(kind)]
      .filter(([, e]) => isLive(e, now))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, e]) => ({ id, ...toRecord<T>(e) }));
  }

  /** By id: the kind's ids sorted once, each page's records read (and their expiry checked) when it is reached. */
  async *scan<T = Record<string, unknown>>(kind: string): AsyncIterable<{ id: string } & StoredRecord<T>> {
    const ids = [...this.#table(kind).keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < ids.length; i += SCAN_PAGE) {
      if (i > 0) await nextTurn(); // a turn of the event loop between pages, as on SQLite
      const table = this.#table(kind);
      const now = this.#seconds();
      for (const id of ids.slice(i, i + SCAN_PAGE)) {
        const e = table.get(id);
        if (e && isLive(e, now)) yield { id, ...toRecord<T>(e) };
      }
    }
  }

  async *entries(): AsyncIterable<StoredEntry> {
    this.#open();
    const now = this.#seconds();
    for (const [kind, table] of this.#kinds) {
      for (const [id, e] of table) if (isLive(e, now)) yield { kind, id, ...toRecord(e) };
    }
  }

  async restore(entry: StoredEntry): Promise<void> {
    const table = this.#table(entry.kind);
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#seconds()) return;
    const e: Entry = { payload: JSON.stringify(entry.payload) };
    if (entry.expiresAt !== undefined) e.expiresAt = entry.expiresAt;
    if (entry.consumedAt !== undefined) e.consumedAt = entry.consumedAt;
    table.set(entry.id, e);
  }

  async upsertMany(records: readonly Upsert[]): Promise<void> {
    await inChunks(records, (r) => this.upsert(r.kind, r.id, r.payload, r.ttlSeconds));
  }

  async incrementMany(kind: string, counts: ReadonlyArray<readonly [id: string, by: number]>): Promise<void> {
    await inChunks(counts, ([id, by]) => this.increment(kind, id, by));
  }

  async increment(kind: string, id: string, by: number, ttlSeconds?: number): Promise<number> {
    checkIncrement(by);
    const entry = this.#live(kind, id);
    if (!entry) {
      this.#table(kind).set(id, this.#entry({ value: by }, ttlSeconds));
      return by;
    }
    // Same rule as sqlite/redis: add to payload.value, keep other fields, expiry and consumedAt.
    const payload = JSON.parse(entry.payload) as Record<string, unknown>;
    const value = (typeof payload.value === 'number' ? payload.value : 0) + by;
    entry.payload = JSON.stringify({ ...payload, value });
    return value;
  }

  async purgeExpired(): Promise<Record<string, number>> {
    const now = this.#seconds();
    const removed: Record<string, number> = {};
    for (const [kind, table] of this.#kinds) {
      for (const [id, entry] of table) {
        if (isLive(entry, now)) continue;
        table.delete(id);
        removed[kind] = (removed[kind] ?? 0) + 1;
      }
    }
    return removed;
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#open();
    this.#bus.emit(channel, message);
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    this.#open();
    this.#bus.on(channel, onMessage);
  }

  async ping(): Promise<void> {
    this.#open();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#bus.removeAllListeners();
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }

  #open(): void {
    if (this.#closed) throw new Error('MemoryStore is closed');
  }

  #table(kind: string): Map<string, Entry> {
    this.#open();
    checkKind(kind);
    let table = this.#kinds.get(kind);
    if (!table) this.#kinds.set(kind, (table = new Map()));
    return table;
  }

  #live(kind: string, id: string): Entry | undefined {
    const entry = this.#table(kind).get(id);
    return entry && isLive(entry, this.#seconds()) ? entry : undefined;
  }

  #entry(payload: object, ttlSeconds: number | undefined): Entry {
    const entry: Entry = { payload: JSON.stringify(payload) };
    const expiresAt = expiryFor(this.#now(), ttlSeconds);
    if (expiresAt !== undefined) entry.expiresAt = expiresAt;
    return entry;
  }
}

/** Resolves on the next turn of the event loop, after pending I/O callbacks. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

function isLive(entry: Entry, nowSeconds: number): boolean {
  return entry.expiresAt === undefined || entry.expiresAt > nowSeconds;
}

function toRecord<T>(entry: Entry): StoredRecord<T> {
  const record: StoredRecord<T> = { payload: JSON.parse(entry.payload) as T };
  if (entry.consumedAt !== undefined) record.consumedAt = entry.consumedAt;
  if (entry.expiresAt !== undefined) record.expiresAt = entry.expiresAt;
  return record;
}

// Rules shared by all three stores (sqlite.ts and redis.ts import them from here).

/** Kinds become part of Redis keys and SCAN patterns, so they are restricted to a safe alphabet without ':'. */
export function checkKind(kind: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(kind)) throw new TypeError(`invalid record kind ${JSON.stringify(kind)}`);
}

export function checkIncrement(by: number): void {
  // Redis HINCRBY takes 64-bit integers only; keep all stores to the same rule.
  if (!Number.isSafeInteger(by)) throw new RangeError(`increment must be a safe integer, got ${by}`);
}

/**
 * Epoch seconds at which a record written at `nowMs` with `ttlSeconds` expires. Rounded up, so a record
 * lives at least `ttlSeconds` (and under one second more); it is expired once `floor(now) >= expiresAt`.
 */
export function expiryFor(nowMs: number, ttlSeconds: number | undefined): number | undefined {
  const ttl = checkTtl(ttlSeconds);
  return ttl === undefined ? undefined : Math.ceil(nowMs / 1000) + ttl;
}

export function checkTtl(ttlSeconds: number | undefined): number | undefined {
  if (ttlSeconds !== undefined && (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0)) {
    throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  }
  return ttlSeconds;
}
