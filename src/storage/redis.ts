import { Cluster } from 'ioredis';
import { SCAN_PAGE, StoreUnavailableError, type Store, type StoredEntry, type StoredRecord, type Successor, inChunks, type Upsert } from './adapter.ts';
import { checkIncrement, checkKind, checkTtl } from './memory.ts';
import { dataNodes, duplicateClient, openRedisClient, publisher, replicaAcknowledgement, type RedisClient } from './redis-connection.ts';
import { STANDALONE, type RedisTopology } from './redis-topology.ts';
import { TurnBatches } from './turn-batches.ts';

export interface RedisStoreOptions {
  url?: string;
  /** Overrides a database number in the URL path. */
  db?: number;
  keyPrefix?: string;
  /**
   * Where the servers are: the URL's host (default), a master found through Sentinel, or a Cluster.
   * The URL's user, password, database and `rediss:` scheme apply to each.
   */
  topology?: RedisTopology;
  /** Clock in epoch milliseconds, used for `consumedAt` and `expiresAt`. Expiry itself is Redis's own. */
  now?: () => number;
  /** Connection errors (ioredis reconnects by itself; commands fail meanwhile). */
  onError?: (err: Error) => void;
}

/*
 * Each record is a hash at `${keyPrefix}${kind}:${id}` with fields `payload` (JSON), `consumed`
 * (epoch seconds) and, for counters, `value` (HINCRBY integer, overlaid on payload.value when read).
 * TTLs are native key expiry. Every write that sets a TTL is one Lua script, so a key never exists
 * without its TTL; scripts are atomic (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
 */
const SCRIPTS = {
  mimirUpsert: `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'payload', ARGV[1])
if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1`,
  // Expired keys do not exist for EXISTS, so this also succeeds over an expired record.
  mimirInsert: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'payload', ARGV[1])
if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1`,
  // HSET on an existing key keeps its TTL.
  mimirConsume: `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'consumed') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'consumed', ARGV[1])
return 1`,
  // consume(KEYS[1]) and upsert(KEYS[2]) in one script: both or neither.
  mimirConsumeAndPut: `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'consumed') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'consumed', ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'payload', ARGV[2])
if ARGV[3] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return 1`,
  // A new counter gets the TTL; an existing record keeps its own. A record written by upsert starts
  // from its payload.value, like the other stores.
  mimirIncrement: `
if redis.call('EXISTS', KEYS[1]) == 0 then
  local v = redis.call('HINCRBY', KEYS[1], 'value', ARGV[1])
  if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  return v
end
if redis.call('HEXISTS', KEYS[1], 'value') == 0 then
  local ok, obj = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'payload') or '{}')
  local base = 0
  if ok and type(obj) == 'table' and type(obj.value) == 'number' then base = obj.value end
  redis.call('HSET', KEYS[1], 'value', string.format('%d', base))
end
return redis.call('HINCRBY', KEYS[1], 'value', ARGV[1])`,
  // A record exactly as read: payload, consumption, absolute expiry (seconds).
  mimirRestore: `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'payload', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'consumed', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('EXPIREAT', KEYS[1], ARGV[3]) end
return 1`,
  // Fields and remaining TTL read together, so a record cannot expire between the two.
  // With Redis's own clock (ms), so the absolute expiry is exact, whatever our clock says.
  // Each key's fields and TTL (one find, or a turn's finds: see RedisStore.find), then the clock.
  mimirGetMany: `
local t = redis.call('TIME')
local out = {}
for i, key in ipairs(KEYS) do out[i] = { redis.call('HGETALL', key), redis.call('PTTL', key) } end
return { out, t[1] * 1000 + math.floor(t[2] / 1000) }`,
} as const;

type Scripted = {
  [name in Exclude<keyof typeof SCRIPTS, 'mimirGetMany'>]: (key: string, ...args: string[]) => Promise<number>;
} & {
  /** The number of keys, then the keys. */
  mimirGetMany(count: number, ...keys: string[]): Promise<[Array<[string[], number]>, number]>;
};

/** Scripts with two keys; mimirGetMany takes any number (given first); the others take one. */
const TWO_KEYS: ReadonlySet<string> = new Set(['mimirConsumeAndPut']);
/** Finds read by one mimirGetMany at most. */
const FIND_BATCH = 256;

interface PendingFind {
  key: string;
  resolve: (record: StoredRecord<unknown> | null) => void;
  reject: (error: unknown) => void;
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  /** On a Cluster no script may touch two keys of different slots (see #consumeThenKeep). */
  readonly #cluster: boolean;
  /** Sentinel: waits for a replica to hold what was just written (see replicaAcknowledgement). */
  readonly #replicated: () => Promise<void>;
  readonly #cmd: Scripted;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #onError: (err: Error) => void;
  #lastError: Error | undefined;
  #subscriber: Promise<RedisClient> | undefined;
  /** The finds of this turn, read together at its end. */
  readonly #finds = new TurnBatches<PendingFind>(FIND_BATCH, (f) => this.#findOne(f), (batch) => this.#findMany(batch));
  readonly #channels = new Map<string, { handlers: Set<(message: string) => void>; ready: Promise<unknown> }>();
  readonly #lossListeners = new Set<() => void>();
  /**
   * Store.onMessagesLost, on a single server and Sentinel only: there the subscriber's connection
   * says 'ready' again after every reconnection. A Cluster moves its subscriber to another node by
   * itself without a word, so it cannot tell every loss, and says nothing (the revocation contact
   * then counts every heartbeat it does not hear, those it failed to publish too).
   */
  readonly onMessagesLost?: (listener: () => void) => void;

  constructor(options: RedisStoreOptions = {}) {
    this.#prefix = options.keyPrefix ?? 'mimir:tokens:';
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#redis = openRedisClient(options.url ?? 'redis://localhost:6379', options.db, options.topology ?? STANDALONE, {
      // Fail fast, never queue (issue 18: a request that needs an unreachable store is a 503 within
      // 1 s): connect() rejects on the first failure; a command issued while disconnected fails at
      // once, one under way when the connection drops fails then, and one unanswered fails after
      // 800 ms. ioredis reconnects by itself (at most a second apart), and commands work again.
      lazyConnect: true,
      enableOfflineQueue: false,
      connectTimeout: 1000,
      commandTimeout: 800,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
      // TCP keepalive after 30 s idle (ioredis 5 leaves the OS default, 2 h on Linux): a half-open
      // subscriber connection would otherwise miss revocations unnoticed for that long.
      keepAlive: 30_000,
    });
    this.#cluster = this.#redis instanceof Cluster;
    if (!this.#cluster) this.onMessagesLost = (listener) => { this.#lossListeners.add(listener); };
    const acknowledged = replicaAcknowledgement(this.#redis, options.topology ?? STANDALONE);
    this.#replicated = () => reachable(acknowledged());
    this.#watch(this.#redis);
    for (const [name, lua] of Object.entries(SCRIPTS)) this.#redis.defineCommand(name, name === 'mimirGetMany' ? { lua } : { lua, numberOfKeys: TWO_KEYS.has(name) ? 2 : 1 });
    this.#cmd = this.#redis as unknown as Scripted;
  }

  /** Connects and pings; on failure stops reconnecting and throws with the underlying cause. */
  async connect(): Promise<void> {
    try {
      if (this.#redis.status === 'wait') await this.#redis.connect();
      await this.ping();
    } catch (err) {
      this.#redis.disconnect();
      // connect() only says "Connection is closed."; the socket error (ECONNREFUSED, ...) came as an event.
      const reason = this.#lastError?.message ?? (err as Error).message;
      throw new Error(`cannot connect to Redis: ${reason}`, { cause: err });
    }
  }

  async upsert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<void> {
    await reachable(this.#cmd.mimirUpsert(this.#key(kind, id), JSON.stringify(payload), ttlArg(ttlSeconds)));
    await this.#replicated();
  }

  async insert(kind: string, id: string, payload: object, ttlSeconds?: number): Promise<boolean> {
    return this.#replicatedIf((await reachable(this.#cmd.mimirInsert(this.#key(kind, id), JSON.stringify(payload), ttlArg(ttlSeconds)))) === 1);
  }

  /**
   * The finds of one turn of the event loop are read together, one script for up to
   * {@link FIND_BATCH} of them (at `setImmediate`, as PostgresStore does): a command per find was
   * a write to the Redis connection each, a third of the hub's CPU when introspecting refresh
   * tokens under load (ioredis's own automatic pipelining batches them too, but its Pipeline per
   * batch cost as much again). A find alone in its turn is sent alone, as before. Not on a
   * Cluster: one script cannot read keys of several slots.
   */
  find<T = Record<string, unknown>>(kind: string, id: string): Promise<StoredRecord<T> | null> {
    return new Promise((resolve, reject) => {
      const key = this.#key(kind, id); // a throw here rejects, as from an async function
      if (this.#cluster) return void this.#get<T>(key).then(resolve, reject);
      this.#finds.add({ key, resolve: resolve as PendingFind['resolve'], reject });
    });
  }

  #findOne(f: PendingFind): void {
    this.#get(f.key).then(f.resolve, f.reject);
  }

  async #findMany(batch: readonly PendingFind[]): Promise<void> {
    const [rows, redisNow] = await reachable(this.#cmd.mimirGetMany(batch.length, ...batch.map((f) => f.key)));
    batch.forEach((f, i) => {
      try {
        const [flat, pttl] = rows[i]!;
        f.resolve(toRecord(flat, pttl, redisNow));
      } catch (e) {
        f.reject(e);
      }
    });
  }

  async consume(kind: string, id: string): Promise<boolean> {
    return this.#replicatedIf((await reachable(this.#cmd.mimirConsume(this.#key(kind, id), String(this.#seconds())))) === 1);
  }

  async consumeAndPut(kind: string, id: string, next: Successor): Promise<boolean> {
    if (this.#cluster) return this.#consumeThenKeep(kind, id, next);
    const args = [this.#key(kind, id), this.#key(next.kind, next.id), String(this.#seconds()), JSON.stringify(next.payload), ttlArg(next.ttlSeconds)];
    return this.#replicatedIf((await reachable(this.#cmd.mimirConsumeAndPut(...(args as [string, ...string[]])))) === 1);
  }

  /*
   * consumeAndPut on a Cluster. The old and the new record hash to different slots (usually on
   * different nodes), and a script may only touch keys of one slot. A hash tag cannot bring them
   * together: a refresh token's record is found by its token's hash alone, so its key cannot carry
   * the family. So the successor is written first (insert: never over an existing record), then the
   * old record consumed, the atomic single-use step that picks exactly one winner, and a loser
   * removes its successor. Nobody holds a loser's successor token (it is only ever returned to the
   * winner), so the record it leaves for that moment, or for good if the process dies first, can
   * never be used; and a crash between the two steps leaves the old token unused: nothing is lost.
   */
  async #consumeThenKeep(kind: string, id: string, next: Successor): Promise<boolean> {
    checkKind(kind);
    if (!(await this.insert(next.kind, next.id, next.payload, next.ttlSeconds))) return false;
    if (await this.consume(kind, id)) return true;
    await this.destroy(next.kind, next.id).catch(() => undefined); // left behind, it is unreachable anyway
    return false;
  }

  async destroy(kind: string, id: string): Promise<boolean> {
    return this.#replicatedIf((await reachable(this.#redis.del(this.#key(kind, id)))) === 1);
  }

  async list<T = Record<string, unknown>>(kind: string): Promise<Array<{ id: string } & StoredRecord<T>>> {
    const base = this.#key(kind, '');
    const keys = new Set<string>(); // SCAN may return a key more than once
    // A Cluster's keys are spread over its masters: each is scanned.
    for (const node of dataNodes(this.#redis)) {
      let cursor = '0';
      do {
        const [next, batch] = await reachable(node.scan(cursor, 'MATCH', `${escapeGlob(base)}*`, 'COUNT', 500));
        cursor = next;
        for (const key of batch) keys.add(key);
      } while (cursor !== '0');
    }
    return (await this.#read<T>(base, [...keys])).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * SCAN's batches (COUNT {@link SCAN_PAGE}), each read and yielded before the next SCAN: master by
   * master on a Cluster, like list(). No set of the keys seen is kept (it would grow with the kind):
   * a key SCAN returns twice, when the keyspace is resized meanwhile, is yielded twice.
   */
  async *scan<T = Record<string, unknown>>(kind: string): AsyncIterable<{ id: string } & StoredRecord<T>> {
    const base = this.#key(kind, '');
    for (const node of dataNodes(this.#redis)) {
      let cursor = '0';
      do {
        const [next, batch] = await reachable(node.scan(cursor, 'MATCH', `${escapeGlob(base)}*`, 'COUNT', SCAN_PAGE));
        cursor = next;
        yield* await this.#read<T>(base, batch);
      } while (cursor !== '0');
    }
  }

  /**
   * The live records at `keys` (all starting with `base`), in their order. In chunks: a hundred
   * thousand reads sent at once queue every other command of this hub (the requests being served)
   * behind them, past the command timeout (a store "down" for seconds).
   */
  async #read<T>(base: string, keys: string[]): Promise<Array<{ id: string } & StoredRecord<T>>> {
    const found: Array<{ id: string } & StoredRecord<T>> = [];
    for (let i = 0; i < keys.length; i += READ_CHUNK) {
      const records = await Promise.all(keys.slice(i, i + READ_CHUNK).map((key) => this.#get<T>(key)));
      records.forEach((record, j) => {
        if (record) found.push({ id: keys[i + j]!.slice(base.length), ...record });
      });
    }
    return found;
  }

  async *entries(): AsyncIterable<StoredEntry> {
    const pattern = `${escapeGlob(this.#prefix)}*`;
    const seen = new Set<string>(); // SCAN may return a key more than once
    // A Cluster's keys are spread over its masters: each is scanned.
    for (const node of dataNodes(this.#redis)) {
      let cursor = '0';
      do {
        const [next, batch] = await reachable(node.scan(cursor, 'MATCH', pattern, 'COUNT', 500));
        cursor = next;
        for (const key of batch) {
          if (seen.has(key)) continue;
          seen.add(key);
          const rest = key.slice(this.#prefix.length);
          const colon = rest.indexOf(':');
          if (colon <= 0) continue;
          const record = await this.#get<Record<string, unknown>>(key);
          if (record) yield { kind: rest.slice(0, colon), id: rest.slice(colon + 1), ...record };
        }
      } while (cursor !== '0');
    }
  }

  async restore(entry: StoredEntry): Promise<void> {
    const key = this.#key(entry.kind, entry.id);
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.#seconds()) return;
    await this.#replicatedIf((await reachable(this.#cmd.mimirRestore(key, JSON.stringify(entry.payload), entry.consumedAt === undefined ? '' : String(entry.consumedAt),
      entry.expiresAt === undefined ? '' : String(entry.expiresAt)))) === 1);
  }

  async upsertMany(records: readonly Upsert[]): Promise<void> {
    await inChunks(records, (r) => this.upsert(r.kind, r.id, r.payload, r.ttlSeconds));
  }

  async incrementMany(kind: string, counts: ReadonlyArray<readonly [id: string, by: number]>): Promise<void> {
    await inChunks(counts, ([id, by]) => this.increment(kind, id, by));
  }

  async increment(kind: string, id: string, by: number, ttlSeconds?: number): Promise<number> {
    checkIncrement(by);
    return reachable(this.#cmd.mimirIncrement(this.#key(kind, id), String(by), ttlArg(ttlSeconds)));
  }

  async purgeExpired(): Promise<Record<string, number>> {
    return {};
  }

  async publish(channel: string, message: string): Promise<void> {
    await reachable(publisher(this.#redis).publish(this.#prefix + channel, message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    const name = this.#prefix + channel;
    let entry = this.#channels.get(name);
    if (!entry) {
      const ready = reachable(this.#subscriberConnection().then((sub) => sub.subscribe(name)));
      this.#channels.set(name, (entry = { handlers: new Set(), ready }));
      ready.catch(() => this.#channels.delete(name));
    }
    entry.handlers.add(onMessage);
    await entry.ready;
  }

  async ping(): Promise<void> {
    await reachable(this.#redis.ping());
  }

  async close(): Promise<void> {
    const sub = await this.#subscriber?.catch(() => undefined);
    this.#channels.clear();
    await Promise.all([this.#redis, sub].map((conn) => (conn ? quit(conn) : undefined)));
  }

  /**
   * Subscribing puts a connection into subscriber mode (RESP2), so it gets its own. With Sentinel
   * it reconnects through the sentinels like the main one (to the new master after a failover) and
   * subscribes again; on a Cluster, where PUBLISH reaches every node, ioredis keeps one subscriber
   * connection to some node and moves it to another when that node goes.
   */
  #subscriberConnection(): Promise<RedisClient> {
    this.#subscriber ??= (async () => {
      const sub = duplicateClient(this.#redis);
      this.#watch(sub);
      sub.on('message', (channel: string, message: string) => {
        for (const handler of this.#channels.get(channel)?.handlers ?? []) handler(message);
      });
      // Ready again after the first time: reconnected (and subscribed again); what was published
      // while it was away is lost (Redis keeps no pub/sub messages).
      let readies = 0;
      sub.on('ready', () => {
        if (readies++ === 0) return;
        for (const told of this.#lossListeners) {
          try { told(); } catch (e) { this.#onError(e as Error); }
        }
      });
      try {
        await sub.connect();
        return sub;
      } catch (err) {
        sub.disconnect();
        this.#subscriber = undefined;
        throw err;
      }
    })();
    return this.#subscriber;
  }

  async #replicatedIf(wrote: boolean): Promise<boolean> {
    if (wrote) await this.#replicated();
    return wrote;
  }

  #watch(conn: RedisClient): void {
    // Without a listener ioredis prints every connection error to the console.
    conn.on('error', (err: Error) => {
      this.#lastError = err;
      this.#onError(err);
    });
    conn.on('ready', () => (this.#lastError = undefined));
  }

  async #get<T>(key: string): Promise<StoredRecord<T> | null> {
    const [rows, redisNow] = await reachable(this.#cmd.mimirGetMany(1, key));
    const [flat, pttl] = rows[0]!;
    return toRecord<T>(flat, pttl, redisNow);
  }

  #key(kind: string, id: string): string {
    checkKind(kind); // no ':' in kinds, so `${kind}:` is an unambiguous key (and SCAN) prefix
    return `${this.#prefix}${kind}:${id}`;
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

/** A record as mimirGetMany reads it: its hash's fields (flat), its remaining TTL and Redis's clock (ms). */
function toRecord<T>(flat: string[], pttl: number, redisNow: number): StoredRecord<T> | null {
  if (flat.length === 0) return null;
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i] as string, flat[i + 1] as string);
  const payload = JSON.parse(fields.get('payload') ?? '{}') as Record<string, unknown>;
  const value = fields.get('value');
  if (value !== undefined) payload.value = Number(value);
  const record: StoredRecord<T> = { payload: payload as T };
  const consumed = fields.get('consumed');
  if (consumed !== undefined) record.consumedAt = Number(consumed);
  // Same rounding as the other stores: the first whole second at which the record is gone.
  if (pttl > 0) record.expiresAt = Math.ceil((redisNow + pttl) / 1000);
  return record;
}

/** Escapes Redis glob metacharacters for SCAN MATCH (https://redis.io/docs/latest/commands/keys/). */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}


/** Records read at once by list() and scan(). */
const READ_CHUNK = 256;

/**
 * Redis's answer, or StoreUnavailableError when Redis could not give one: not connected, the
 * connection lost, no answer within the command timeout, or a server that cannot serve now
 * (loading, a replica after failover, a cluster slot moving). Any other error reply is a fault
 * of the command and stays what it is.
 */
async function reachable<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (e) {
    throw isReplyError(e) && !TRANSIENT_REPLY.test(e.message) ? e : new StoreUnavailableError('Redis', e);
  }
}

/** Error replies that say "not now" rather than "not this" (https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors). */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS)\b/;

function isReplyError(e: unknown): e is Error {
  return e instanceof Error && e.name === 'ReplyError';
}

function ttlArg(ttlSeconds: number | undefined): string {
  return checkTtl(ttlSeconds) === undefined ? '' : String(ttlSeconds);
}

async function quit(conn: RedisClient): Promise<void> {
  if (conn.status !== 'ready') return conn.disconnect();
  await conn.quit().catch(() => conn.disconnect());
}
