import { createHash } from 'node:crypto';
import pg from 'pg';
import type { ClientConfig, Notification, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { SCAN_PAGE, StoreUnavailableError, type Store, type StoredEntry, type StoredRecord, type Successor, inChunks, throwFailures, type Upsert, WRITE_CHUNK } from './adapter.ts';
import { checkIncrement, checkKind, expiryFor } from './memory.ts';
import { TurnBatches } from './turn-batches.ts';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:5432/database` (libpq URL parameters such as `sslmode` apply). */
  url: string;
  /**
   * The schema holding the hub's tables (default `mimir_auth`), created on first start. LISTEN/NOTIFY
   * channels are named after it too, so hubs of another schema in the same database never hear them.
   */
  schema?: string;
  /** Clock in epoch milliseconds (expiry and `consumedAt`); injectable so tests can freeze time. */
  now?: () => number;
  /** Opening a connection, and waiting for a free pooled one, gives up after this (default 1000 ms). */
  connectTimeoutMs?: number;
  /** A statement without an answer fails after this, client and server side (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Pooled connections for commands (default 10); LISTEN has one connection of its own. */
  poolSize?: number;
  /** How often the LISTEN connection proves it is alive (default 1000 ms), so a silent loss is found too. */
  listenerCheckMs?: number;
  /** Connection faults (an idle connection lost, the listener lost); the store recovers by itself. */
  onError?: (err: Error) => void;
  /**
   * The LISTEN connection was lost and is back, every channel listened to again. NOTIFY is not
   * queued for a listener that is gone: messages published during the gap are lost, so whoever
   * keeps state fed by them resyncs now.
   */
  onReconnect?: () => void;
  /** The schema's migrations, oldest first (tests only; the default is {@link MIGRATIONS}). */
  migrations?: readonly Migration[];
}

/** One forward-only step of the schema. `up` gets the quoted schema name. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly up: (schema: string) => string;
}

/**
 * The schema's history. Append only: a released migration is never edited, the next change is
 * version N+1 (so a database written by any earlier release upgrades in order at start).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'records: every kind of record, keyed by (kind, id)',
    // COLLATE "C": ids compare and sort byte-wise, as in the other stores, whatever the database's locale.
    up: (s) => `
      CREATE TABLE ${s}.records (
        kind text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        payload json NOT NULL,
        expires_at bigint,
        consumed_at bigint,
        PRIMARY KEY (kind, id)
      );
      CREATE INDEX records_expires_at ON ${s}.records (expires_at) WHERE expires_at IS NOT NULL;`,
  },
];

/** The database was written by a newer release (a schema version this code does not know). */
export class SchemaVersionError extends Error {
  constructor(schema: string, found: number, known: number) {
    super(
      `the PostgreSQL schema "${schema}" is at version ${found}, written by a newer release of mimir-auth-hub; `
        + `this release knows versions up to ${known}. Refusing to start rather than write data that release may not read: `
        + 'run the newer release (or restore a backup taken before the upgrade).',
    );
    this.name = 'SchemaVersionError';
  }
}

interface PendingFind {
  kind: string;
  id: string;
  resolve(record: StoredRecord<unknown> | null): void;
  reject(reason: unknown): void;
}

/** At most this many finds in one statement. */
const FIND_BATCH = 256;

interface Row {
  id: string;
  payload: unknown;
  expires_at: string | number | null;
  consumed_at: string | number | null;
}

/** NOTIFY payloads must be shorter than 8000 bytes (https://www.postgresql.org/docs/current/sql-notify.html). */
export const NOTIFY_PAYLOAD_LIMIT = 8000;
/** Channel names are identifiers: at most NAMEDATALEN - 1 = 63 bytes. */
const MAX_CHANNEL = 63;
/** Schema migration waits for another hub's migration (the advisory lock) longer than for a command. */
const MIGRATION_TIMEOUT_MS = 15_000;
/** SQLSTATE class 57P: the server ended this backend (admin_shutdown, crash_shutdown, cannot_connect_now). */
function backendEnded(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '57P01' || code === '57P02' || code === '57P03';
}

/** Expired rows removed per statement by purgeExpired. */
const PURGE_BATCH = 5000;
const STORE = 'PostgreSQL';
const ENTRIES_PAGE = 1000;

/**
 * SQLSTATE classes that mean "the database cannot serve us now", not "this statement is wrong":
 * 08 connection exception, 28 authorization, 3D000 no such database, 53 insufficient resources,
 * 57 operator intervention (57014: statement_timeout), 58 system error, 25006 read-only (a standby).
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const UNAVAILABLE = /^(08|28|53|57|58)|^3D000$|^25006$/;

/** Any fault of the database or the connection becomes StoreUnavailableError; our own checks pass through. */
function storeError(err: unknown): Error {
  if (err instanceof StoreUnavailableError || err instanceof SchemaVersionError) return err;
  if (err instanceof TypeError || err instanceof RangeError) return err;
  if (err instanceof pg.DatabaseError) {
    if (UNAVAILABLE.test(err.code ?? '')) return new StoreUnavailableError(STORE, err);
    return new Error(`PostgreSQL refused a statement: ${err.message} (SQLSTATE ${err.code ?? '?'})`, { cause: err });
  }
  // Refused, reset, timed out, terminated: the driver's own errors carry no SQLSTATE.
  return new StoreUnavailableError(STORE, err);
}

/** The innermost reason of a failure, for a message (AggregateError: one connect error per address). */
export function describeFailure(err: unknown): string {
  let e = err;
  while (e instanceof StoreUnavailableError && e.cause !== undefined) e = e.cause;
  if (e instanceof AggregateError && e.errors.length) return e.errors.map((x) => describeFailure(x)).join('; ');
  if (e instanceof Error) return e.message || String((e as NodeJS.ErrnoException).code ?? e.name);
  return String(e);
}

const ident = (name: string) => pg.escapeIdentifier(name);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * PostgreSQL store for several hub instances: every record in one table of its own schema, single
 * use and rotation atomic in one statement, and publish/subscribe through LISTEN/NOTIFY on a
 * dedicated connection that reconnects by itself. A fault of the database (refused, lost, no answer
 * within the command timeout) rejects with {@link StoreUnavailableError}; the pool opens new
 * connections once the server is back.
 *
 * @example
 * const store = new PostgresStore({ url: 'postgres://mimir:secret@db:5432/mimir' });
 * await store.connect(); // creates or upgrades the schema, then pings
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #poolSize: number;
  readonly #config: ClientConfig;
  readonly #schema: string;
  readonly #sql: ReturnType<typeof statements>;
  readonly #migrations: readonly Migration[];
  readonly #now: () => number;
  readonly #onError: (err: Error) => void;
  readonly #onReconnect: () => void;
  readonly #checkMs: number;
  /** Every pooled connection, so close() can cut those a stopped server never lets end. */
  readonly #connections = new Set<PoolClient>();
  #ready: Promise<void> | undefined;
  #closed = false;

  // LISTEN side.
  readonly #channels = new Map<string, { handlers: Set<(message: string) => void>; ready: Promise<void> }>();
  #listener: pg.Client | undefined;
  #listening: Promise<pg.Client> | undefined;
  /** The listener was lost (messages may be missing) and is not back yet. */
  #gap = false;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #checkTimer: ReturnType<typeof setInterval> | undefined;
  /** Told when the listener is back after a loss ({@link onMessagesLost}). */
  readonly #lossListeners = new Set<() => void>();
  /** The finds of this turn, read together at its end. */
  readonly #finds = new TurnBatches<PendingFind>(FIND_BATCH, (f) => this.#findOne(f), (batch) => this.#findMany(batch));

  constructor(options: PostgresStoreOptions) {
    const schema = options.schema ?? 'mimir_auth';
    // A short lowercase name: readable in psql without quotes, and it leaves room in channel names.
    if (!/^[a-z_][a-z0-9_]{0,29}$/.test(schema)) throw new TypeError(`invalid PostgreSQL schema name ${JSON.stringify(schema)}`);
    this.#schema = schema;
    this.#sql = statements(ident(schema));
    this.#migrations = options.migrations ?? MIGRATIONS;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#onReconnect = options.onReconnect ?? (() => {});
    this.#checkMs = options.listenerCheckMs ?? 1000;
    const commandTimeout = options.commandTimeoutMs ?? 1000;
    this.#config = {
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 1000,
      // Client side: a server that stopped answering. Server side: the statement is cancelled rather
      // than left running after we gave up on it.
      query_timeout: commandTimeout,
      statement_timeout: commandTimeout,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'mimir-auth-hub',
    };
    this.#poolSize = options.poolSize ?? 10;
    this.#pool = new pg.Pool({ ...this.#config, max: this.#poolSize });
    // An idle pooled connection that dies emits here (the pool drops it); without a listener it would crash the process.
    this.#pool.on('error', (err) => this.#onError(err));
    this.#pool.on('connect', (client) => this.#connections.add(client));
    this.#pool.on('remove', (client) => this.#connections.delete(client));
  }

  /** Creates or upgrades the schema, then pings: a wrong URL or an unreachable server fails here. */
  async connect(): Promise<void> {
    await this.ping();
  }

  async upsert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<void> {
    await this.#query(this.#sql.upsert, this.#write(kind, id, payload, ttlSeconds));
  }

  async insert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<boolean> {
    const result = await this.#query(this.#sql.insert, [...this.#write(kind, id, payload, ttlSeconds), this.#seconds()]);
    return result.rowCount === 1;
  }

  /**
   * The finds of one turn of the event loop go to the server together, one statement for up to
   * {@link FIND_BATCH} of them (at `setImmediate`, as ioredis pipelines). Each statement is a write
   * that wakes a server process: under load, a query per find spent a quarter of the hub's CPU in
   * that `writev` (issue 20: a refresh token's introspection cost 400–540 µs of CPU against 170 for
   * a JWT's on a 2-core VM). A find alone in its turn is sent alone, as before.
   */
  find<T = Record<string, unknown>>(kind: string, id: string): Promise<StoredRecord<T> | null> {
    return new Promise((resolve, reject) => {
      checkKind(kind); // a throw here rejects, as from an async function
      this.#open();
      // PostgreSQL text cannot hold a NUL, so no record has such an id; asking would only make the
      // server refuse the statement (and, batched, every other find of the turn with it).
      if (id.includes('\0')) return resolve(null);
      this.#finds.add({ kind, id, resolve: resolve as PendingFind['resolve'], reject });
    });
  }

  #findOne(f: PendingFind): void {
    this.#query<Row>(this.#sql.find, [f.kind, f.id, this.#seconds()])
      .then(({ rows }) => f.resolve(rows[0] ? toRecord(rows[0]) : null), f.reject);
  }

  async #findMany(batch: readonly PendingFind[]): Promise<void> {
    const { rows } = await this.#query<Row & { n: string }>(this.#sql.findMany, [batch.map((f) => f.kind), batch.map((f) => f.id), this.#seconds()]);
    const found = new Array<StoredRecord<unknown> | null>(batch.length).fill(null);
    for (const row of rows) found[Number(row.n) - 1] = toRecord(row);
    batch.forEach((f, i) => f.resolve(found[i]!));
  }

  async consume(kind: string, id: string): Promise<boolean> {
    checkKind(kind);
    return (await this.#query(this.#sql.consume, [kind, id, this.#seconds()])).rowCount === 1;
  }

  async consumeAndPut(kind: string, id: string, next: Successor): Promise<boolean> {
    checkKind(kind);
    const write = this.#write(next.kind, next.id, next.payload, next.ttlSeconds);
    return (await this.#query(this.#sql.consumeAndPut, [kind, id, this.#seconds(), ...write])).rowCount === 1;
  }

  async destroy(kind: string, id: string): Promise<boolean> {
    checkKind(kind);
    const { rows } = await this.#query<Pick<Row, 'expires_at'>>(this.#sql.destroy, [kind, id]);
    // An expired row is removed too, but it did not exist as far as callers are concerned.
    const row = rows[0];
    return row !== undefined && (row.expires_at === null || Number(row.expires_at) > this.#seconds());
  }

  async list<T = Record<string, unknown>>(kind: string): Promise<Array<{ id: string } & StoredRecord<T>>> {
    checkKind(kind);
    const { rows } = await this.#query<Row>(this.#sql.list, [kind, this.#seconds()]);
    return rows.map((row) => ({ id: row.id, ...toRecord<T>(row) }));
  }

  /** Keyset pages of {@link SCAN_PAGE} by id, each its own statement: nothing is held open between pages. */
  async *scan<T = Record<string, unknown>>(kind: string): AsyncIterable<{ id: string } & StoredRecord<T>> {
    checkKind(kind);
    let after: string | undefined;
    for (;;) {
      const { rows } = after === undefined
        ? await this.#query<Row>(this.#sql.scanFirst, [kind, this.#seconds(), SCAN_PAGE])
        : await this.#query<Row>(this.#sql.scanNext, [kind, this.#seconds(), SCAN_PAGE, after]);
      for (const row of rows) yield { id: row.id, ...toRecord<T>(row) };
      if (rows.length < SCAN_PAGE) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  async *entries(): AsyncIterable<StoredEntry> {
    let after: [string, string] = ['', ''];
    for (;;) {
      const { rows } = await this.#query<Row & { kind: string }>(this.#sql.entries, [...after, this.#seconds(), ENTRIES_PAGE]);
      for (const row of rows) yield { kind: row.kind, id: row.id, ...toRecord<Record<string, unknown>>(row) };
      if (rows.length < ENTRIES_PAGE) return;
      const last = rows[rows.length - 1]!;
      after = [last.kind, last.id];
    }
  }

  async restore(entry: StoredEntry): Promise<void> {
    checkKind(entry.kind);
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#seconds()) return;
    await this.#query(this.#sql.restore, [entry.kind, entry.id, JSON.stringify(entry.payload), entry.expiresAt ?? null, entry.consumedAt ?? null]);
  }

  /**
   * One statement per {@link WRITE_CHUNK} records (unnest of four arrays; a record written twice in
   * a chunk, the last one), one round trip and one commit each. A query per record, 500 at once,
   * queued for the pool's few connections: behind them every request waited, and under a bulk load
   * (8 batches at once) 410 of 2 100 writes timed out waiting for a connection. A record that cannot
   * be serialized is left out; a chunk the server refuses (not unreachable) is written record by
   * record, so one bad record costs only itself.
   */
  async upsertMany(records: readonly Upsert[]): Promise<void> {
    const failed: unknown[] = [];
    for (let i = 0; i < records.length; i += WRITE_CHUNK) {
      const chunk = new Map<string, [string, string, string, number | null]>();
      for (const r of records.slice(i, i + WRITE_CHUNK)) {
        try {
          const row = this.#write(r.kind, r.id, r.payload, r.ttlSeconds);
          const key = JSON.stringify([row[0], row[1]]);
          chunk.delete(key); // in the order of the last write
          chunk.set(key, row);
        } catch (e) { failed.push(e); }
      }
      if (chunk.size === 0) continue;
      const rows = [...chunk.values()];
      try {
        await this.#query(this.#sql.upsertMany, [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])]);
      } catch (e) {
        if (e instanceof StoreUnavailableError) { for (let n = 0; n < rows.length; n++) failed.push(e); continue; }
        for (const r of await Promise.allSettled(rows.map((row) => this.#query(this.#sql.upsert, row)))) if (r.status === 'rejected') failed.push(r.reason);
      }
    }
    throwFailures(failed, records.length);
  }

  async incrementMany(kind: string, counts: ReadonlyArray<readonly [id: string, by: number]>): Promise<void> {
    await inChunks(counts, ([id, by]) => this.increment(kind, id, by));
  }

  async increment(kind: string, id: string, by: number, ttlSeconds?: number): Promise<number> {
    checkKind(kind);
    checkIncrement(by);
    const exp = expiryFor(this.#now(), ttlSeconds) ?? null;
    const { rows } = await this.#query<{ value: string }>(this.#sql.increment, [kind, id, by, exp, this.#seconds()]);
    return Number(rows[0]!.value);
  }

  async purgeExpired(): Promise<Record<string, number>> {
    const removed: Record<string, number> = {};
    const now = this.#seconds();
    // In batches, so a large backlog never meets the command timeout and each step commits on its own.
    for (;;) {
      const { rows } = await this.#query<{ kind: string; n: number }>(this.#sql.purge, [now, PURGE_BATCH]);
      let batch = 0;
      for (const { kind, n } of rows) {
        removed[kind] = (removed[kind] ?? 0) + n;
        batch += n;
      }
      if (batch < PURGE_BATCH) return removed;
    }
  }

  async publish(channel: string, message: string): Promise<void> {
    const bytes = Buffer.byteLength(message);
    if (bytes >= NOTIFY_PAYLOAD_LIMIT) {
      throw new RangeError(`a message of ${bytes} bytes cannot be published: PostgreSQL NOTIFY carries at most ${NOTIFY_PAYLOAD_LIMIT - 1} bytes`);
    }
    // pg_notify takes the channel as a value, so no quoting is involved on this side.
    await this.#query('SELECT pg_notify($1, $2)', [this.channelName(channel), message]);
  }

  onMessagesLost(listener: () => void): void {
    this.#lossListeners.add(listener);
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    this.#open();
    const name = this.channelName(channel);
    let entry = this.#channels.get(name);
    if (!entry) {
      const ready = (async () => {
        await this.#init();
        const listener = await this.#connectListener();
        try {
          await listener.query(`LISTEN ${ident(name)}`);
        } catch (e) {
          throw storeError(e);
        }
      })();
      this.#channels.set(name, (entry = { handlers: new Set(), ready }));
      ready.catch(() => { if (this.#channels.get(name)?.ready === ready) this.#channels.delete(name); });
    }
    entry.handlers.add(onMessage);
    await entry.ready;
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1', []);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#checkTimer);
    this.#channels.clear();
    const listener = this.#listener ?? (await this.#listening?.catch(() => undefined));
    this.#listener = undefined;
    // A server that stopped answering never completes the goodbye: wait a little, then cut.
    const ended = Promise.all([listener?.end().catch(() => undefined), this.#pool.end().catch(() => undefined)]);
    await Promise.race([ended, sleep(2000)]);
    listener?.connection.stream.destroy();
    for (const client of this.#connections) client.connection.stream.destroy();
  }

  /**
   * The NOTIFY channel of a hub channel: `<schema>:<channel>`, or a digest of the channel when that
   * would exceed the 63 bytes of an identifier (PostgreSQL would silently truncate a long name, and
   * two channels sharing a prefix would then hear each other).
   */
  channelName(channel: string): string {
    const name = `${this.#schema}:${channel}`;
    if (Buffer.byteLength(name) <= MAX_CHANNEL) return name;
    const digest = createHash('sha256').update(channel).digest('base64url');
    return `${this.#schema}#${digest.slice(0, MAX_CHANNEL - this.#schema.length - 1)}`;
  }

  async #query<R extends QueryResultRow = QueryResultRow>(text: string, values: unknown[]): Promise<QueryResult<R>> {
    await this.#init();
    // A pooled connection the server ended (pg_terminate_backend, a restart, an idle timeout of
    // a proxy) can be handed out before its FATAL message has been read; the statement then never
    // ran, or ran in a transaction the server rolled back: again, on another connection. Every
    // idle connection may have been ended at once, so up to one try per pooled connection (and
    // one more, on a new one) before the store is called unavailable.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#pool.query<R>(text, values);
      } catch (e) {
        if (!backendEnded(e) || attempt >= this.#poolSize) throw storeError(e);
      }
    }
  }

  /** The schema, created or upgraded once per store (again after a failure: the server may be back). */
  #init(): Promise<void> {
    this.#open();
    this.#ready ??= this.#migrate().catch((e: unknown) => {
      this.#ready = undefined;
      throw storeError(e);
    });
    return this.#ready;
  }

  /**
   * Forward-only migrations in one transaction under an advisory lock: two hubs starting at once on
   * an empty database take turns, and the second finds the schema at the latest version. DDL is
   * transactional in PostgreSQL, so a failed upgrade leaves the previous version intact.
   */
  async #migrate(): Promise<void> {
    // A connection of its own, with room to wait for another hub's migration.
    const client = new pg.Client({ ...this.#config, query_timeout: MIGRATION_TIMEOUT_MS, statement_timeout: MIGRATION_TIMEOUT_MS });
    client.on('error', (err) => this.#onError(err));
    try {
      await client.connect();
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`mimir-auth-hub schema ${this.#schema}`]);
      const s = ident(this.#schema);
      // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists; a
      // schema made beforehand by an administrator is enough for a hub without that right.
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.#schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_version (
        version integer PRIMARY KEY,
        description text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: number }>(`SELECT coalesce(max(version), 0)::int AS version FROM ${s}.schema_version`);
      const current = rows[0]?.version ?? 0;
      const known = this.#migrations.at(-1)?.version ?? 0;
      if (current > known) throw new SchemaVersionError(this.#schema, current, known);
      for (const migration of this.#migrations) {
        if (migration.version <= current) continue;
        await client.query(migration.up(s));
        await client.query(`INSERT INTO ${s}.schema_version (version, description) VALUES ($1, $2)`, [migration.version, migration.description]);
      }
      await client.query('COMMIT');
    } finally {
      // Ending the session rolls back whatever did not commit and releases the lock.
      await Promise.race([client.end().catch(() => undefined), sleep(1000)]);
      client.connection.stream.destroy();
    }
  }

  /** The LISTEN connection, connecting it (and listening to every channel) when there is none. */
  #connectListener(): Promise<pg.Client> {
    if (this.#listener) return Promise.resolve(this.#listener);
    this.#listening ??= (async () => {
      const client = new pg.Client({ ...this.#config, application_name: 'mimir-auth-hub listener' });
      client.on('error', (err) => this.#listenerLost(client, err));
      client.on('end', () => this.#listenerLost(client));
      client.on('notification', (n) => this.#dispatch(n));
      try {
        await client.connect();
        const names = [...this.#channels.keys()];
        if (names.length) await client.query(names.map((n) => `LISTEN ${ident(n)}`).join('; '));
        if (this.#closed) throw new Error('PostgresStore is closed');
      } catch (e) {
        this.#listening = undefined;
        client.connection.stream.destroy();
        throw storeError(e);
      }
      this.#listener = client;
      this.#attempt = 0;
      this.#startCheck(client);
      if (this.#gap) {
        this.#gap = false;
        for (const told of [this.#onReconnect, ...this.#lossListeners]) {
          try { told(); } catch (e) { this.#onError(e as Error); }
        }
      }
      return client;
    })();
    return this.#listening;
  }

  #listenerLost(client: pg.Client, err?: Error): void {
    if (client !== this.#listener) return;
    this.#listener = undefined;
    this.#listening = undefined;
    this.#gap = true;
    clearInterval(this.#checkTimer);
    client.connection.stream.destroy();
    this.#onError(err ?? new Error('the PostgreSQL LISTEN connection ended'));
    this.#scheduleReconnect();
  }

  /** Next attempt at once after a loss, then backing off to at most 1 s between attempts. */
  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer) return;
    const delay = this.#attempt === 0 ? 0 : Math.min(100 * 2 ** (this.#attempt - 1), 1000);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#closed || this.#listener) return;
      this.#attempt++;
      this.#connectListener().catch(() => this.#scheduleReconnect());
    }, delay);
    this.#reconnectTimer.unref();
  }

  /**
   * A connection cut without a FIN (a partition, a paused server) looks idle forever to a listener:
   * a small statement every `listenerCheckMs` finds it within one command timeout.
   */
  #startCheck(client: pg.Client): void {
    clearInterval(this.#checkTimer);
    if (this.#checkMs <= 0) return;
    let inFlight = false;
    this.#checkTimer = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      client.query('SELECT 1').then(
        () => { inFlight = false; },
        (err: Error) => { inFlight = false; this.#listenerLost(client, err); },
      );
    }, this.#checkMs);
    this.#checkTimer.unref();
  }

  #dispatch(notification: Notification): void {
    const entry = this.#channels.get(notification.channel);
    if (!entry) return;
    for (const handler of entry.handlers) {
      // A throwing handler must not break the connection's message parsing.
      try { handler(notification.payload ?? ''); } catch (e) { this.#onError(e as Error); }
    }
  }

  #open(): void {
    if (this.#closed) throw new Error('PostgresStore is closed');
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }

  #write(kind: string, id: string, payload: object, ttlSeconds: number | undefined): [string, string, string, number | null] {
    checkKind(kind);
    return [kind, id, JSON.stringify(payload), expiryFor(this.#now(), ttlSeconds) ?? null];
  }
}

/** The statements, for one schema. Parameters: epoch seconds as integers, payloads as JSON text. */
function statements(schema: string) {
  const t = `${schema}.records`;
  const live = (now: string) => `(expires_at IS NULL OR expires_at > ${now})`;
  const expired = (now: string) => `(r.expires_at IS NOT NULL AND r.expires_at <= ${now})`;
  const replace = 'payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = NULL';
  return {
    find: `SELECT payload, expires_at, consumed_at FROM ${t} WHERE kind = $1 AND id = $2 AND ${live('$3')}`,
    // n: the position of the (kind, id) pair asked for, from 1; a pair with no live record has no row.
    findMany: `SELECT q.n, r.payload, r.expires_at, r.consumed_at
      FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q(kind, id, n)
      JOIN ${t} r ON r.kind = q.kind AND r.id = q.id
      WHERE r.expires_at IS NULL OR r.expires_at > $3`,
    list: `SELECT id, payload, expires_at, consumed_at FROM ${t} WHERE kind = $1 AND ${live('$2')} ORDER BY id`,
    // Keyset pages of scan() along the primary key: the first page, then those after the last id read
    // (two statements, so that an empty id is read too and each page is a range of the index).
    scanFirst: `SELECT id, payload, expires_at, consumed_at FROM ${t} WHERE kind = $1 AND ${live('$2')} ORDER BY id LIMIT $3`,
    scanNext: `SELECT id, payload, expires_at, consumed_at FROM ${t} WHERE kind = $1 AND id > $4 AND ${live('$2')} ORDER BY id LIMIT $3`,
    upsert: `INSERT INTO ${t} (kind, id, payload, expires_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT (kind, id) DO UPDATE SET ${replace}`,
    upsertMany: `INSERT INTO ${t} (kind, id, payload, expires_at)
      SELECT * FROM unnest($1::text[], $2::text[], $3::json[], $4::bigint[])
      ON CONFLICT (kind, id) DO UPDATE SET ${replace}`,
    // Succeeds when absent, or replaces a row that is expired but not purged yet; no row otherwise.
    insert: `INSERT INTO ${t} AS r (kind, id, payload, expires_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT (kind, id) DO UPDATE SET ${replace} WHERE ${expired('$5')}`,
    // Concurrent updates of one row queue on its lock; each re-checks `consumed_at IS NULL` on the
    // row as the winner left it (READ COMMITTED), so exactly one sees a row.
    consume: `UPDATE ${t} SET consumed_at = $3 WHERE kind = $1 AND id = $2 AND consumed_at IS NULL AND ${live('$3')}`,
    // One statement is one transaction: the successor is written only from the row `used` returns,
    // so it exists exactly when the consume won, and a crash leaves both or neither.
    consumeAndPut: `WITH used AS (
        UPDATE ${t} SET consumed_at = $3 WHERE kind = $1 AND id = $2 AND consumed_at IS NULL AND ${live('$3')} RETURNING 1
      )
      INSERT INTO ${t} (kind, id, payload, expires_at) SELECT $4::text, $5::text, $6::json, $7::bigint FROM used
      ON CONFLICT (kind, id) DO UPDATE SET ${replace}`,
    destroy: `DELETE FROM ${t} WHERE kind = $1 AND id = $2 RETURNING expires_at`,
    // Keyset pages, so no statement outlives the statement timeout however large the table.
    entries: `SELECT kind, id, payload, expires_at, consumed_at FROM ${t} WHERE (kind, id) > ($1, $2) AND ${live('$3')} ORDER BY kind, id LIMIT $4`,
    restore: `INSERT INTO ${t} (kind, id, payload, expires_at, consumed_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`,
    // An expired row restarts as a fresh counter; a live one gets payload.value += by (other fields,
    // expiry and consumption kept). ON CONFLICT DO UPDATE is atomic under concurrent inserts.
    increment: `INSERT INTO ${t} AS r (kind, id, payload, expires_at) VALUES ($1, $2, json_build_object('value', $3::bigint), $4)
      ON CONFLICT (kind, id) DO UPDATE SET
        payload = CASE WHEN ${expired('$5')} THEN excluded.payload ELSE jsonb_set(
          CASE WHEN json_typeof(r.payload) = 'object' THEN r.payload::jsonb ELSE '{}'::jsonb END, '{value}',
          to_jsonb(CASE WHEN json_typeof(r.payload -> 'value') = 'number' THEN (r.payload ->> 'value')::numeric ELSE 0 END + $3::bigint)
        )::json END,
        expires_at = CASE WHEN ${expired('$5')} THEN excluded.expires_at ELSE r.expires_at END,
        consumed_at = CASE WHEN ${expired('$5')} THEN NULL ELSE r.consumed_at END
      RETURNING (payload ->> 'value') AS value`,
    // The expiry is checked again on the DELETE itself: a row revived (insert, increment) by a
    // transaction that commits while this one waits on its lock is re-read as it now is, and kept;
    // the subquery's choice alone would not be re-evaluated.
    purge: `WITH gone AS (
        DELETE FROM ${t} WHERE (kind, id) IN (SELECT kind, id FROM ${t} WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)
          AND expires_at IS NOT NULL AND expires_at <= $1
        RETURNING kind
      )
      SELECT kind, count(*)::int AS n FROM gone GROUP BY kind`,
  } as const;
}

function toRecord<T>(row: Omit<Row, 'id'>): StoredRecord<T> {
  const record: StoredRecord<T> = { payload: row.payload as T };
  if (row.consumed_at !== null) record.consumedAt = Number(row.consumed_at);
  if (row.expires_at !== null) record.expiresAt = Number(row.expires_at);
  return record;
}
