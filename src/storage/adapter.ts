/**
 * The narrow storage adapter every part of the hub uses (DESIGN.md "Storage").
 * Records are JSON objects grouped by `kind` ("api_key", "service_account", "signing_key",
 * "refresh_token", "session", ...). TTLs are in seconds; `undefined` means no expiry.
 * An expired record is never returned, whether or not it has been purged yet.
 */
export interface StoredRecord<T = Record<string, unknown>> {
  payload: T;
  /** Epoch seconds when this record was consumed (single use), if it was. */
  consumedAt?: number;
  /** Epoch seconds when it expires, if it does. */
  expiresAt?: number;
}

/** A record with its kind and id, as `Store.entries()` yields it. */
export type StoredEntry<T = Record<string, unknown>> = { kind: string; id: string } & StoredRecord<T>;

/** A record written in the same atomic step as another is consumed (see Store.consumeAndPut). */
export interface Successor {
  kind: string;
  id: string;
  payload: object;
  ttlSeconds?: number;
}

/** One record for {@link Store.upsertMany}. */
export interface Upsert {
  kind: string;
  id: string;
  payload: object;
  ttlSeconds?: number;
}

export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'redis' | 'postgres';
  /** Create or replace. */
  upsert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<void>;
  /** Create only if absent (or expired). Returns true when this call created it. */
  insert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<boolean>;
  find<T = Record<string, unknown>>(kind: string, id: string): Promise<StoredRecord<T> | null>;
  /**
   * Atomic single use: marks the record consumed. Returns true for exactly one caller,
   * across processes sharing the store; false when missing, expired or already consumed.
   * The record stays readable (with `consumedAt`) until it expires or is destroyed, so
   * reuse of a consumed one-time credential can be detected.
   */
  consume(kind: string, id: string): Promise<boolean>;
  /**
   * `consume`, and in the same atomic step the upsert of `next` (refresh rotation: the old token
   * used and its successor stored together, so a crash between the two cannot lose the family).
   * True for exactly one caller; when false, nothing was written.
   */
  consumeAndPut(kind: string, id: string, next: Successor): Promise<boolean>;
  /** Returns true when a record was removed. */
  destroy(kind: string, id: string): Promise<boolean>;
  /** Every live record of a kind, in one array sorted by id. For admin listings and small sets only: see {@link scan}. */
  list<T = Record<string, unknown>>(kind: string): Promise<Array<{ id: string } & StoredRecord<T>>>;
  /**
   * Every live record of a kind, read {@link SCAN_PAGE} or so at a time: what is held stays bounded
   * by a page whatever the kind's size (API keys, audit events). Stopping early (`break`) reads no
   * further page. Expired records are never yielded (as in `list`); a record written or removed
   * during the scan may or may not be.
   *
   * Order: SQLite and PostgreSQL by id, in keyset pages (`id > last ORDER BY id LIMIT n` on the
   * (kind, id) primary key); memory by id too (its records are in memory already: the kind's ids are
   * sorted once, the records read a page at a time). Redis in SCAN order, master by master on a Cluster: no order, and a
   * record may come more than once when the keyspace is resized during the scan (SCAN's own
   * guarantee, https://redis.io/docs/latest/commands/scan/): callers must tolerate repeats.
   */
  scan<T = Record<string, unknown>>(kind: string): AsyncIterable<{ id: string } & StoredRecord<T>>;
  /**
   * Every live record of every kind, in no particular order: for `mimir-auth storage copy` and
   * backups, never for a request path.
   */
  entries(): AsyncIterable<StoredEntry>;
  /**
   * Writes a record exactly as `entries()` read it, consumption and expiry included (an expiry
   * already past writes nothing): the other half of a copy between stores.
   */
  restore(entry: StoredEntry): Promise<void>;
  /**
   * Several upserts, for bulk writes off the request path (the audit events of a second, request
   * counts): SQLite commits them {@link WRITE_CHUNK} at a time, one commit (one sync of the file)
   * per chunk instead of per record, with a turn of the event loop between chunks; the other
   * stores write them as `upsert` does, a chunk at a time. Not one atomic step: a record that cannot
   * be written (its kind, its payload) is left out and the rest written; the failures are thrown at
   * the end. A store that fails meanwhile may leave some chunks written.
   */
  upsertMany(records: readonly Upsert[]): Promise<void>;
  /** `increment` of several counters of one kind (no TTL), written as {@link upsertMany} writes. */
  incrementMany(kind: string, counts: ReadonlyArray<readonly [id: string, by: number]>): Promise<void>;
  /** Atomically add `by` to a counter record (created at 0), returning the new value. */
  increment(kind: string, id: string, by: number, ttlSeconds?: number): Promise<number>;
  /** Removes expired records; returns how many per kind. Redis expires natively and returns {}. */
  purgeExpired(): Promise<Record<string, number>>;
  /** Cross-instance messages (revocations). Memory delivers within this process; sqlite to every process on the file (its change feed, within ~200 ms). */
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  /**
   * Calls `listener` each time the connection that delivers this process's subscriptions is back
   * after a loss (reconnected and subscribed again): what was published meanwhile never arrives.
   * Stores whose messages cannot be lost (memory, SQLite's change feed) need not have it.
   */
  onMessagesLost?(listener: () => void): void;
  /**
   * Delivers now, synchronously, the messages other processes published that this one has not
   * heard yet (SQLite's change feed; stores that push their messages have nothing to do). Cheap
   * when there are none: it is asked before each credential is answered.
   */
  catchUp?(): void;
  /** Throws when the backend cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Records per page of `Store.scan` (Redis: the SCAN COUNT hint, so about this many). */
export const SCAN_PAGE = 500;
/** Records per transaction (SQLite) or per round of concurrent writes (the others) in upsertMany and incrementMany. */
export const WRITE_CHUNK = 500;

/**
 * Runs `write` on `items` a chunk of {@link WRITE_CHUNK} at a time, the writes of a chunk
 * concurrently. Every item is tried: one that fails does not stop the others; the failures are
 * thrown together at the end (the first alone, or an AggregateError).
 */
export async function inChunks<T>(items: readonly T[], write: (item: T) => Promise<unknown>): Promise<void> {
  const failed: unknown[] = [];
  for (let i = 0; i < items.length; i += WRITE_CHUNK) {
    for (const r of await Promise.allSettled(items.slice(i, i + WRITE_CHUNK).map(write))) if (r.status === 'rejected') failed.push(r.reason);
  }
  throwFailures(failed, items.length);
}

/** Throws what failed of `total` writes: the error itself when one, an AggregateError when more. */
export function throwFailures(failed: readonly unknown[], total: number): void {
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) throw new AggregateError(failed, `${failed.length} of ${total} writes failed`);
}

/**
 * The store's backend cannot be reached (refused, lost, or no answer within the command timeout).
 * Every store throws this, never its driver's own error, for a fault of the backend; the HTTP edge
 * answers 503 with `Retry-After` (never 500), and the store recovers by itself once it is back.
 */
export class StoreUnavailableError extends Error {
  constructor(store: string, cause?: unknown) {
    super(`${store} is unreachable`, cause === undefined ? undefined : { cause });
    this.name = 'StoreUnavailableError';
  }
}
