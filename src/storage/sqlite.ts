import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { SCAN_PAGE, type Store, type StoredEntry, type StoredRecord, type Successor, throwFailures, WRITE_CHUNK, type Upsert } from './adapter.ts';
import { checkIncrement, checkKind, expiryFor, nextTurn } from './memory.ts';

export interface SqliteStoreOptions {
  /** Clock in epoch milliseconds; injectable so tests can freeze time. */
  now?: () => number;
  /**
   * The database's directory belongs to the hub alone (MIMIR_DATA_DIR): tightened to 0700 when
   * found open to group or others. Off for a database in a directory the hub does not own (a
   * shared parent must not be chmod-ed); a directory the store creates is 0700 either way.
   */
  privateDirectory?: boolean;
  /** Told what was tightened at start, to log it. */
  onPermissionsFixed?: (fixed: PermissionFix[]) => void;
}

/** A file or directory whose mode was tightened, modes in octal. */
export interface PermissionFix {
  path: string;
  from: string;
  to: string;
}

interface Row {
  id: string;
  payload: string;
  expires_at: number | null;
  consumed_at: number | null;
}

const LIVE = '(expires_at IS NULL OR expires_at > :now)';
const EXPIRED = '(records.expires_at IS NOT NULL AND records.expires_at <= :now)';

const SQL = {
  // Positional (see upsert): every authentication that misses the caches and every refresh-token
  // introspection reads here (4.6 µs a read named, 3.7 positional, measured in process).
  find: 'SELECT payload, expires_at, consumed_at FROM records WHERE kind = ?1 AND id = ?2 AND (expires_at IS NULL OR expires_at > ?3)',
  list: `SELECT id, payload, expires_at, consumed_at FROM records WHERE kind = :kind AND ${LIVE} ORDER BY id`,
  // Keyset pages of scan() along the (kind, id) primary key: the first page, then those after the last id read
  // (two statements, so that an empty id is read too and each page is a range of the index).
  scanFirst: `SELECT id, payload, expires_at, consumed_at FROM records WHERE kind = :kind AND ${LIVE} ORDER BY id LIMIT :limit`,
  scanNext: `SELECT id, payload, expires_at, consumed_at FROM records WHERE kind = :kind AND id > :after AND ${LIVE} ORDER BY id LIMIT :limit`,
  // Positional: node:sqlite binds an object of named parameters at about twice the cost (measured,
  // 500-row transactions: 6-11 µs a row named, 4-8 positional), and the audit log writes a row per event.
  upsert: `INSERT INTO records (kind, id, payload, expires_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = NULL`,
  // Succeeds when absent, or replaces a row that is expired but not purged yet; changes === 0 otherwise.
  insert: `INSERT INTO records (kind, id, payload, expires_at) VALUES (:kind, :id, :payload, :exp)
    ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = NULL
    WHERE ${EXPIRED}`,
  // One statement, so SQLite's write lock makes it atomic across connections and processes.
  consume: `UPDATE records SET consumed_at = :now WHERE kind = :kind AND id = :id AND consumed_at IS NULL AND ${LIVE}`,
  destroy: `DELETE FROM records WHERE kind = :kind AND id = :id RETURNING expires_at`,
  // An expired row restarts as a fresh counter; a live one gets payload.value += by (other fields kept).
  increment: `INSERT INTO records (kind, id, payload, expires_at) VALUES (:kind, :id, json_object('value', CAST(:by AS INTEGER)), :exp)
    ON CONFLICT (kind, id) DO UPDATE SET
      payload = CASE WHEN ${EXPIRED} THEN excluded.payload ELSE json_set(records.payload, '$.value',
        CASE WHEN json_type(records.payload, '$.value') IN ('integer', 'real') THEN json_extract(records.payload, '$.value') ELSE 0 END
        + CAST(:by AS INTEGER)) END,
      expires_at = CASE WHEN ${EXPIRED} THEN excluded.expires_at ELSE records.expires_at END,
      consumed_at = CASE WHEN ${EXPIRED} THEN NULL ELSE records.consumed_at END
    RETURNING json_extract(payload, '$.value') AS value`,
  entries: `SELECT kind, id, payload, expires_at, consumed_at FROM records WHERE ${LIVE}`,
  restore: `INSERT INTO records (kind, id, payload, expires_at, consumed_at) VALUES (:kind, :id, :payload, :exp, :consumed)
    ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`,
  purge: `DELETE FROM records WHERE rowid IN (
    SELECT rowid FROM records WHERE expires_at IS NOT NULL AND expires_at <= :now LIMIT :limit
  ) RETURNING kind`,
  // The change feed (see Bus): a message for other processes, and rows every follower has read by now.
  publish: 'INSERT INTO changes (channel, message, origin, at) VALUES (:channel, :message, :origin, :at)',
  prune: 'DELETE FROM changes WHERE at < :before',
  ping: 'SELECT 1',
  begin: 'BEGIN IMMEDIATE',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
} as const;

/**
 * The database holds hashed secrets, sealed IdP tokens and sealed signing keys: readable by its
 * owner only. SQLite creates a database 0644 (less the umask) and gives its -wal, -shm and
 * -journal files the database's mode, so the database is created 0600 before SQLite opens it;
 * files and the directory found open (an older hub, a copy) are tightened.
 */
function makePrivate(path: string, privateDirectory: boolean): PermissionFix[] {
  const fixed: PermissionFix[] = [];
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  else if (privateDirectory) tighten(dir, fixed);
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) if (existsSync(file)) tighten(file, fixed);
  return fixed;
}

/** Drops every group and other permission bit of `path`, noting it when there were any. */
function tighten(path: string, fixed: PermissionFix[]): void {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  const to = mode & 0o700;
  chmodSync(path, to);
  fixed.push({ path, from: octal(mode), to: octal(to) });
}

const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

/** Expired rows removed per statement by purgeExpired, at most (see {@link PURGE_STATEMENT_MS}). */
export const PURGE_BATCH = 1000;
/** ...and at least, once the first has been timed. */
const PURGE_BATCH_MIN = 16;
/**
 * What one purge statement may hold the event loop for: the next statement's row count is sized
 * from the last one's time. A thousand rows at a time took 60-80 ms each in a store of a million
 * records (each row a random page of the key index, written to the WAL): `/auth/me` p99 while the
 * cleanup job ran was 72.8 ms against 2.6 ms without (bench growth, 1 000 000 records, 100 000 expired).
 */
const PURGE_STATEMENT_MS = 4;

/** This process, in the change feed: its own rows were delivered in-process already. */
const ORIGIN = randomUUID();
/** How often a process reads the feed for other processes' messages (the issue's bound is 1 s). */
const FEED_POLL_MS = 200;
/** Rows older than this are pruned: every follower has read them long before. */
const FEED_KEEP_MS = 60_000;

/**
 * The messages of one database file in this process. A publish reaches every SqliteStore on the
 * file here at once (an EventEmitter) and is also written to the file's `changes` table, which
 * one connection per process and file follows every {@link FEED_POLL_MS}: rows past the last one
 * it saw, from other processes, are delivered here. So the CLI's revocations and key rotations
 * reach a running server within a fraction of a second, none is delivered twice, and a process
 * sees messages in the order they were written (SQLite has one writer at a time, and the sequence
 * is AUTOINCREMENT: never reused, always increasing).
 */
class Bus {
  readonly emitter = new EventEmitter().setMaxListeners(0);
  readonly #path: string | undefined;
  #users = 0;
  #follower: { db: DatabaseSync; newer: StatementSync; version: StatementSync; timer: ReturnType<typeof setInterval> } | undefined;
  #after = 0;
  /** PRAGMA data_version as of the last read of the feed: it moves when another connection commits. */
  #version: number | undefined;
  /**
   * Moves whenever the follower saw the file change (a commit by any connection but its own, which
   * only reads: another process, the purge worker, this process's stores), or could not tell.
   */
  changes = 0;
  #caughtUpThisTurn = false;
  readonly #nextTurn = () => { this.#caughtUpThisTurn = false; };

  constructor(path: string | undefined) {
    this.#path = path;
  }

  /** A store on the file uses the bus; the first one here starts following the feed (the table exists by then). */
  join(): void {
    if (this.#users > 0 || this.#path === undefined) {
      this.#users++;
      return;
    }
    // Counted only once it follows: a first store that fails here leaves the next one to try again.
    const db = new DatabaseSync(this.#path, { timeout: 100 });
    let newer: StatementSync;
    let version: StatementSync;
    try {
      this.#after = (db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM changes').get() as { seq: number }).seq;
      newer = db.prepare('SELECT seq, channel, message, origin FROM changes WHERE seq > :after ORDER BY seq LIMIT 1000');
      version = db.prepare('PRAGMA data_version');
    } catch (e) {
      db.close();
      throw e;
    }
    const timer = setInterval(() => this.#poll(), FEED_POLL_MS);
    timer.unref();
    this.#follower = { db, newer, version, timer };
    this.#users++;
  }

  /** Whether a connection follows the file here (every commit to it moves {@link changes}). */
  get following(): boolean {
    return this.#follower !== undefined;
  }

  /**
   * Reads the feed now if anything was committed to the file since it was last read (one PRAGMA,
   * no table read, when nothing was): asked before each credential is answered, so what the CLI
   * revoked a moment ago holds on the very next request, not at the next poll.
   */
  catchUp(): void {
    const follower = this.#follower;
    if (!follower || this.#caughtUpThisTurn) return;
    // Once per turn of the event loop: the requests read in one turn arrived together, and a
    // commit made before any of them moved the version before this first check.
    this.#caughtUpThisTurn = true;
    setImmediate(this.#nextTurn);
    let version: number;
    try {
      version = (follower.version.get() as { data_version: number }).data_version;
    } catch {
      this.changes++; // not known: taken as changed
      return; // the timer's poll reads it a moment later
    }
    if (version !== this.#version) this.#poll();
  }

  leave(): void {
    if (--this.#users > 0) return;
    if (this.#follower) {
      clearInterval(this.#follower.timer);
      this.#follower.db.close();
      this.#follower = undefined;
    }
    if (this.#path !== undefined && buses.get(this.#path) === this) buses.delete(this.#path);
  }

  #poll(): void {
    const follower = this.#follower;
    if (!follower) return;
    let rows: Array<{ seq: number; channel: string; message: string; origin: string }>;
    try {
      // The version first: a commit landing between the two reads moves it again, and is read next time.
      const version = (follower.version.get() as { data_version: number }).data_version;
      if (version !== this.#version) this.changes++;
      this.#version = version;
      rows = follower.newer.all({ after: this.#after }) as typeof rows;
    } catch {
      this.changes++;
      return; // the file busy or gone for a moment: the next poll reads from the same place
    }
    for (const row of rows) {
      this.#after = row.seq;
      if (row.origin === ORIGIN) continue;
      // A subscriber's fault stays its own: the feed goes on, and the find that caught up is answered.
      try { this.emitter.emit(row.channel, row.message); } catch { /* see above */ }
    }
  }
}

/** One bus per database file, so every SqliteStore on that file in this process hears publishes. */
const buses = new Map<string, Bus>();

/**
 * SQLite store for a single host: several processes may share the file (WAL + busy_timeout, atomic
 * single statements), and publish/subscribe reaches every store on the file — in this process at
 * once, in the others through the change feed ({@link Bus}). One server per file (the CLI beside
 * it is fine): use Redis or PostgreSQL for several instances.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #stmts: Record<keyof typeof SQL, StatementSync>;
  readonly #bus: Bus;
  readonly #feed: boolean;
  readonly #subscriptions: Array<[string, (message: string) => void]> = [];
  /** The database file when on disk (the purge worker opens its own connection to it). */
  readonly #file: string | undefined;
  /** The purge under way in its worker thread, if any (ended when the store closes). */
  #purging: Worker | undefined;
  #closing = false;
  /** Rows {@link find} read, answered again while the file has not changed: see {@link FoundRows}. */
  readonly #found = new FoundRows();
  /**
   * A database only this connection opens (`:memory:`, `''`): nothing else can change it. Otherwise
   * rows are kept only while the bus follows the file (never for a `file:` URI, which no follower watches).
   */
  readonly #private: boolean;
  /** entries() iterations under way: this connection reads their snapshot meanwhile, which is not kept. */
  #iterating = 0;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    const onDisk = path !== ':memory:' && path !== '' && !path.startsWith('file:');
    if (onDisk) {
      const fixed = makePrivate(path, options.privateDirectory ?? false);
      if (fixed.length) options.onPermissionsFixed?.(fixed);
    }
    const busKey = onDisk ? resolve(path) : undefined;
    let bus = busKey === undefined ? undefined : buses.get(busKey);
    if (!bus) {
      bus = new Bus(busKey);
      if (busKey !== undefined) buses.set(busKey, bus);
    }
    this.#bus = bus;
    this.#feed = busKey !== undefined;
    this.#private = path === ':memory:' || path === '';
    this.#file = busKey;
    this.#db = new DatabaseSync(path);
    // busy_timeout first: switching to WAL and creating the schema take locks another process may hold.
    this.#db.exec(`
      PRAGMA busy_timeout = 5000;
      PRAGMA journal_mode = WAL;
      CREATE TABLE IF NOT EXISTS records (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        payload TEXT NOT NULL,
        expires_at INTEGER NULL,
        consumed_at INTEGER NULL,
        PRIMARY KEY (kind, id)
      );
      CREATE INDEX IF NOT EXISTS records_expires_at ON records (expires_at);
      CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        message TEXT NOT NULL,
        origin TEXT NOT NULL,
        at INTEGER NOT NULL
      );
    `);
    this.#stmts = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, this.#db.prepare(sql)]),
    ) as Record<keyof typeof SQL, StatementSync>;
    try {
      this.#bus.join();
    } catch (e) {
      this.#db.close();
      throw e;
    }
  }

  async upsert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<void> {
    const write = this.#write(kind, id, payload, ttlSeconds);
    this.#forget(kind, id);
    upsertRow(this.#stmts.upsert, write);
  }

  async insert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<boolean> {
    const write = this.#write(kind, id, payload, ttlSeconds);
    this.#forget(kind, id);
    return this.#stmts.insert.run({ ...write, now: this.#seconds() }).changes === 1;
  }

  async find<T = Record<string, unknown>>(kind: string, id: string): Promise<StoredRecord<T> | null> {
    checkKind(kind);
    const keep = this.#iterating === 0 && (this.#private || this.#bus.following);
    if (keep) {
      this.#bus.catchUp();
      this.#found.sync(this.#bus);
    }
    const key = keep ? foundKey(kind, id) : undefined;
    const now = this.#seconds();
    let row = key === undefined ? undefined : this.#found.get(key);
    if (row === undefined || (row.expires_at !== null && row.expires_at <= now)) {
      row = this.#stmts.find.get(kind, id, now) as FoundRow | undefined;
      if (key !== undefined) this.#found.set(key, row);
    }
    return row ? toRecord<T>(row) : null;
  }

  async consume(kind: string, id: string): Promise<boolean> {
    checkKind(kind);
    this.#forget(kind, id);
    return this.#stmts.consume.run({ kind, id, now: this.#seconds() }).changes === 1;
  }

  async consumeAndPut(kind: string, id: string, next: Successor): Promise<boolean> {
    checkKind(kind);
    const write = this.#write(next.kind, next.id, next.payload, next.ttlSeconds);
    this.#forget(kind, id);
    this.#forget(next.kind, next.id);
    // BEGIN IMMEDIATE takes the write lock first, so the two statements are one step for every
    // connection and process on the file.
    this.#stmts.begin.run();
    try {
      if (this.#stmts.consume.run({ kind, id, now: this.#seconds() }).changes !== 1) {
        this.#stmts.rollback.run();
        return false;
      }
      upsertRow(this.#stmts.upsert, write);
      this.#stmts.commit.run();
      return true;
    } catch (e) {
      if (this.#db.isTransaction) this.#stmts.rollback.run();
      throw e;
    }
  }

  async destroy(kind: string, id: string): Promise<boolean> {
    checkKind(kind);
    this.#forget(kind, id);
    const row = this.#stmts.destroy.get({ kind, id }) as Pick<Row, 'expires_at'> | undefined;
    // An expired row is removed too, but it did not exist as far as callers are concerned.
    return row !== undefined && (row.expires_at === null || row.expires_at > this.#seconds());
  }

  async list<T = Record<string, unknown>>(kind: string): Promise<Array<{ id: string } & StoredRecord<T>>> {
    checkKind(kind);
    const rows = this.#stmts.list.all({ kind, now: this.#seconds() }) as unknown as Row[];
    return rows.map((row) => ({ id: row.id, ...toRecord<T>(row) }));
  }

  /**
   * Keyset pages of {@link SCAN_PAGE}, each read whole by one statement (none is left open across a
   * yield), with a turn of the event loop between pages: node:sqlite is synchronous, and a scan of a
   * million records would otherwise hold the server's event loop for its whole length.
   */
  async *scan<T = Record<string, unknown>>(kind: string): AsyncIterable<{ id: string } & StoredRecord<T>> {
    checkKind(kind);
    let after: string | undefined;
    for (;;) {
      if (after !== undefined) await nextTurn();
      this.#open();
      const now = this.#seconds();
      const rows = (after === undefined
        ? this.#stmts.scanFirst.all({ kind, now, limit: SCAN_PAGE })
        : this.#stmts.scanNext.all({ kind, after, now, limit: SCAN_PAGE })) as unknown as Row[];
      for (const row of rows) yield { id: row.id, ...toRecord<T>(row) };
      if (rows.length < SCAN_PAGE) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  async *entries(): AsyncIterable<StoredEntry> {
    this.#open();
    this.#iterating++;
    try {
      const rows = this.#stmts.entries.iterate({ now: this.#seconds() }) as Iterable<Row & { kind: string }>;
      for (const row of rows) yield { kind: row.kind, id: row.id, ...toRecord(row) };
    } finally {
      this.#iterating--;
    }
  }

  async restore(entry: StoredEntry): Promise<void> {
    checkKind(entry.kind);
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#seconds()) return;
    this.#forget(entry.kind, entry.id);
    this.#stmts.restore.run({
      kind: entry.kind, id: entry.id, payload: JSON.stringify(entry.payload),
      exp: entry.expiresAt ?? null, consumed: entry.consumedAt ?? null,
    });
  }

  /** A transaction per {@link WRITE_CHUNK} records (one commit, one sync of the file), a turn of the event loop between them. */
  async upsertMany(records: readonly Upsert[]): Promise<void> {
    // Each record is checked and serialized on its own: one that cannot be (a BigInt, a cycle, a
    // bad kind) is left out, never the chunk it is in.
    const failed: unknown[] = [];
    const writes: Array<{ kind: string; id: string; payload: string; exp: number | null }> = [];
    for (const r of records) {
      try { writes.push(this.#write(r.kind, r.id, r.payload, r.ttlSeconds)); } catch (e) { failed.push(e); }
    }
    // Forgotten as each is written: a find between two chunks reads (and keeps) the row before.
    await this.#chunked(writes, (write) => { this.#forget(write.kind, write.id); upsertRow(this.#stmts.upsert, write); });
    throwFailures(failed, records.length);
  }

  async incrementMany(kind: string, counts: ReadonlyArray<readonly [id: string, by: number]>): Promise<void> {
    checkKind(kind);
    const failed: unknown[] = [];
    const valid = counts.filter(([, by]) => {
      try { checkIncrement(by); return true; } catch (e) { failed.push(e); return false; }
    });
    const now = this.#seconds();
    await this.#chunked(valid, ([id, by]) => { this.#forget(kind, id); this.#stmts.increment.get({ kind, id, by, exp: null, now }); });
    throwFailures(failed, counts.length);
  }

  /**
   * `run` on each item, {@link WRITE_CHUNK} to a transaction: BEGIN IMMEDIATE, the statements, COMMIT
   * (a chunk that throws is rolled back and the error passed on), a turn of the event loop between
   * chunks. Each statement on its own would be its own commit, and with it a sync of the file:
   * measured, 2000 single upserts held the event loop 0.42-0.46 s.
   */
  async #chunked<T>(items: readonly T[], run: (item: T) => void): Promise<void> {
    for (let i = 0; i < items.length; i += WRITE_CHUNK) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      this.#open();
      this.#stmts.begin.run();
      try {
        for (const item of items.slice(i, i + WRITE_CHUNK)) run(item);
        this.#stmts.commit.run();
      } catch (e) {
        if (this.#db.isTransaction) this.#stmts.rollback.run();
        throw e;
      }
    }
  }

  async increment(kind: string, id: string, by: number, ttlSeconds?: number): Promise<number> {
    checkKind(kind);
    checkIncrement(by);
    this.#forget(kind, id);
    const row = this.#stmts.increment.get({
      kind,
      id,
      by,
      exp: expiryFor(this.#now(), ttlSeconds) ?? null,
      now: this.#seconds(),
    }) as { value: number };
    return row.value;
  }

  /**
   * Removes expired records in batches of at most {@link PURGE_BATCH}, each its own short write
   * sized to take about {@link PURGE_STATEMENT_MS}. A database on disk is purged in a worker
   * thread, on a connection of its own: node:sqlite is synchronous, and each statement's commit
   * (a sync of the WAL, and every thousand pages a checkpoint: 25-30 ms in a store of a million
   * records) would hold the server's event loop. The worker rests as long as each statement took
   * before the next, so the hub's own writes find the file's write lock free half the time.
   * The first statement runs here (most runs need no other); in memory (`:memory:`), every one, with
   * a turn of the event loop between them.
   */
  async purgeExpired(): Promise<Record<string, number>> {
    this.#open();
    // What it removes is expired, which find never answers (by this store's clock: another store's
    // may differ); forgotten all the same, here and in every store of this process.
    this.#found.wrote(undefined);
    const now = this.#seconds();
    const removed: Record<string, number> = {};
    let limit = PURGE_BATCH_MIN * 4;
    // The first statement here: most runs find fewer than that expired, and start no thread.
    for (;;) {
      const started = performance.now();
      const batch = purgeStatement(this.#stmts.purge, now, limit, removed);
      if (batch < limit || !this.#db.isOpen) return removed;
      limit = nextPurgeLimit(limit, performance.now() - started);
      if (this.#file !== undefined) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const worker = new Worker(PURGE_WORKER, {
      eval: true,
      workerData: { file: this.#file, sql: SQL.purge, now, start: limit, min: PURGE_BATCH_MIN, max: PURGE_BATCH, ms: PURGE_STATEMENT_MS },
    });
    this.#purging = worker;
    try {
      const rest = await new Promise<Record<string, number>>((resolve, reject) => {
        let result: Record<string, number> | undefined;
        worker.once('message', (m: Record<string, number>) => { result = m; });
        worker.once('error', reject);
        worker.once('exit', (code) => {
          if (result) resolve(result);
          else reject(new Error(this.#closing ? 'SqliteStore is closed' : `the purge worker exited (${code}) before its answer`));
        });
      });
      for (const [kind, n] of Object.entries(rest)) removed[kind] = (removed[kind] ?? 0) + n;
      return removed;
    } finally {
      if (this.#purging === worker) this.#purging = undefined;
    }
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#open();
    if (this.#feed) {
      // Wall-clock time: pruning is about how long followers have had to read a row.
      const at = Date.now();
      this.#stmts.publish.run({ channel, message, origin: ORIGIN, at });
      this.#stmts.prune.run({ before: at - FEED_KEEP_MS });
    }
    this.#bus.emitter.emit(channel, message);
  }

  /** Delivers at once what other processes published since the feed was last read (see {@link Bus.catchUp}). */
  catchUp(): void {
    this.#bus.catchUp();
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    this.#open();
    this.#bus.emitter.on(channel, onMessage);
    this.#subscriptions.push([channel, onMessage]);
  }

  async ping(): Promise<void> {
    this.#open();
    this.#stmts.ping.get();
  }

  async close(): Promise<void> {
    for (const [channel, onMessage] of this.#subscriptions.splice(0)) this.#bus.emitter.off(channel, onMessage);
    // A purge under way stops: a statement it cuts off is rolled back with the worker's connection.
    this.#closing = true;
    if (this.#purging) await this.#purging.terminate();
    this.#found.clear();
    if (this.#db.isOpen) {
      this.#db.close();
      this.#bus.leave();
    }
  }

  #open(): void {
    if (!this.#db.isOpen) throw new Error('SqliteStore is closed');
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }

  /** Before every write of (kind, id): see {@link FoundRows.wrote}. */
  #forget(kind: string, id: string): void {
    this.#found.wrote(foundKey(kind, id));
  }

  #write(kind: string, id: string, payload: object, ttlSeconds: number | undefined) {
    checkKind(kind);
    return { kind, id, payload: JSON.stringify(payload), exp: expiryFor(this.#now(), ttlSeconds) ?? null };
  }
}

/** Runs SQL.purge once (at most `limit` rows), counting what it removed per kind; returns the rows removed. */
function purgeStatement(statement: StatementSync, now: number, limit: number, removed: Record<string, number>): number {
  let batch = 0;
  for (const row of statement.iterate({ now, limit }) as Iterable<{ kind: string }>) {
    removed[row.kind] = (removed[row.kind] ?? 0) + 1;
    batch++;
  }
  return batch;
}

/** The next purge statement's row count, for one that took `took` ms with `limit` rows. */
function nextPurgeLimit(limit: number, took: number): number {
  return Math.min(PURGE_BATCH, Math.max(PURGE_BATCH_MIN, Math.floor((limit * PURGE_STATEMENT_MS) / Math.max(took, 0.05))));
}

/**
 * The purge worker (CommonJS, evaluated: no file to find in src/ or dist/): the loop of
 * {@link purgeStatement} and {@link nextPurgeLimit} on its own connection, resting after each
 * statement as long as it took; posts the counts per kind. Small WAL checkpoints (100 pages), so
 * that no one statement pays for a thousand pages.
 */
const PURGE_WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(w.file);
db.exec('PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 100;');
const purge = db.prepare(w.sql);
const rest = new Int32Array(new SharedArrayBuffer(4));
const removed = {};
let limit = w.start;
for (;;) {
  const started = performance.now();
  let batch = 0;
  for (const row of purge.iterate({ now: w.now, limit })) { removed[row.kind] = (removed[row.kind] || 0) + 1; batch++; }
  if (batch < limit) break;
  const took = Math.max(performance.now() - started, 0.05);
  limit = Math.min(w.max, Math.max(w.min, Math.floor((limit * w.ms) / took)));
  Atomics.wait(rest, 0, 0, took);
}
db.close();
parentPort.postMessage(removed);
`;

/** SQL.upsert of one row from {@link SqliteStore} `#write`'s fields. */
function upsertRow(statement: StatementSync, w: { kind: string; id: string; payload: string; exp: number | null }): void {
  statement.run(w.kind, w.id, w.payload, w.exp);
}

/** What {@link SqliteStore.find} reads of a row (and keeps, see {@link FoundRows}). */
type FoundRow = Omit<Row, 'id'>;
/** Rows kept at most, and their payloads' characters at most; beyond, the oldest kept go. */
const FOUND_ROWS = 4096;
const FOUND_CHARS = 4 * 1024 * 1024;
/** A larger row (a client registration with a large `jwks`, say) is read from the file every time. */
const FOUND_ROW_CHARS = 16 * 1024;

/**
 * The key of (kind, id) as SQLite keys the row: a kind is a plain name (checkKind), so NUL cannot
 * occur in it; node:sqlite writes a lone surrogate as U+FFFD, so ids that differ only there are one
 * row and one key. Undefined for an id that is not a string (not kept, and a write of it forgets all).
 */
function foundKey(kind: string, id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  return `${kind}\u0000${id.isWellFormed() ? id : id.toWellFormed()}`;
}

/**
 * Writes by every SqliteStore of this process, whatever the file and whatever name it was opened by
 * (a file reached by two names has two buses, or none for a `file:` URI): moved before each write.
 */
let writesInProcess = 0;

/**
 * The rows SqliteStore.find read, answered again from memory while the file has not changed. A read
 * from the file costs a read transaction (two fcntl locks of the WAL index) and the statement: on
 * `serve`, a fifth of a refresh-token introspection's CPU. What keeps them true:
 * - a commit by any connection moves the bus's `changes` (its follower reads PRAGMA data_version
 *   once per turn of the event loop, in the catchUp the hub asks before answering each credential
 *   anyway, and at each poll): then all are dropped before the next find;
 * - a write by any store of this process moves {@link writesInProcess} at once; the store's own
 *   write drops the row it touches, another store's drops all (two hubs on one file in tests, the
 *   file under another name: a symlink, a `file:` URI);
 * - expiry is checked on every answer, as the statement checks it.
 * A commit by another process during a turn is seen from the next turn on, as the change feed's
 * messages are: the requests of one turn were read before it began.
 */
class FoundRows {
  readonly #rows = new Map<string, FoundRow>();
  #chars = 0;
  /** The bus's `changes` and {@link writesInProcess} as of the last look; the latter kept level by this store's own writes. */
  #changes = -1;
  #writes = -1;

  /** Drops every row if the file changed since the last look. */
  sync(bus: Bus): void {
    if (bus.changes === this.#changes && writesInProcess === this.#writes) return;
    this.clear();
    this.#changes = bus.changes;
    this.#writes = writesInProcess;
  }

  get(key: string): FoundRow | undefined {
    return this.#rows.get(key);
  }

  /** Keeps what was read of `key` (nothing for a row not found, or too large). */
  set(key: string, row: FoundRow | undefined): void {
    this.#delete(key);
    if (row === undefined || row.payload.length > FOUND_ROW_CHARS) return;
    while (this.#rows.size >= FOUND_ROWS || this.#chars + row.payload.length > FOUND_CHARS) this.#delete(this.#rows.keys().next().value!);
    this.#rows.set(key, row);
    this.#chars += row.payload.length;
  }

  /** This store is about to write `key` (undefined: a key not kept, or many, so all). */
  wrote(key: string | undefined): void {
    const level = writesInProcess === this.#writes;
    writesInProcess++;
    if (key === undefined) this.clear();
    else this.#delete(key);
    if (level) this.#writes = writesInProcess;
  }

  clear(): void {
    this.#rows.clear();
    this.#chars = 0;
  }

  #delete(key: string): void {
    const row = this.#rows.get(key);
    if (row === undefined) return;
    this.#rows.delete(key);
    this.#chars -= row.payload.length;
  }
}

function toRecord<T>(row: Omit<Row, 'id'>): StoredRecord<T> {
  const record: StoredRecord<T> = { payload: JSON.parse(row.payload) as T };
  if (row.consumed_at !== null) record.consumedAt = row.consumed_at;
  if (row.expires_at !== null) record.expiresAt = row.expires_at;
  return record;
}
