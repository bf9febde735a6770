import { StoreUnavailableError, type Store } from './adapter.ts';
import { MemoryStore } from './memory.ts';
import { redactUrl, type Config } from '../config/index.ts';
import { describeRedis, redisVariables, type RedisTopology } from './redis-topology.ts';
import { SqliteStore, type PermissionFix } from './sqlite.ts';

export type { Store, StoredEntry, StoredRecord, Successor } from './adapter.ts';
export { StoreUnavailableError } from './adapter.ts';
export { MemoryStore, type MemoryStoreOptions } from './memory.ts';
export { SqliteStore, type PermissionFix, type SqliteStoreOptions } from './sqlite.ts';
// RedisStore and PostgresStore are imported from their own modules (./redis.ts, ./postgres.ts):
// createStore loads a driver only when it is configured, so a hub on SQLite never holds ioredis or
// pg in memory (about 8 MB resident, issue 20 goal 7).
export type { RedisStoreOptions } from './redis.ts';
export type { PostgresStoreOptions } from './postgres.ts';
export type { HostPort } from '../config/values.ts';
export type { RedisTopology } from './redis-topology.ts';

export interface CreateStoreOptions {
  kind: 'memory' | 'sqlite' | 'redis' | 'postgres';
  sqlitePath?: string;
  redis?: { url: string; db: number; keyPrefix: string; topology?: RedisTopology };
  /** PostgreSQL (MIMIR_DATABASE_URL); `onReconnect`: the LISTEN connection is back after a loss (messages in the gap are lost). */
  postgres?: { url: string; onReconnect?: () => void; onError?: (err: Error) => void } | undefined;
  /** SQLite: told which of the data directory and database files were found open and tightened. */
  onPermissionsFixed?: (fixed: PermissionFix[]) => void;
}

/** Opens the configured store; for Redis and PostgreSQL it connects and pings first, so a bad URL fails at startup. */
export async function createStore(options: CreateStoreOptions): Promise<Store> {
  switch (options.kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      if (!options.sqlitePath) throw new Error('storage kind "sqlite" needs a sqlitePath');
      // The configured database lives in MIMIR_DATA_DIR, the hub's own directory.
      return new SqliteStore(options.sqlitePath, {
        privateDirectory: true, ...(options.onPermissionsFixed ? { onPermissionsFixed: options.onPermissionsFixed } : {}),
      });
    case 'redis': {
      const redis = { url: 'redis://localhost:6379', ...options.redis };
      const { RedisStore } = await import('./redis.ts');
      const store = new RedisStore(redis);
      try {
        await store.connect();
      } catch (err) {
        throw new Error(
          `Redis (${describeRedis(redis)}) is unreachable (check ${redisVariables(redis.topology)}): ${(err as Error).message}`,
          { cause: err },
        );
      }
      return store;
    }
    case 'postgres': {
      const url = options.postgres?.url;
      if (!url) throw new Error('storage kind "postgres" needs a URL (MIMIR_DATABASE_URL)');
      const { onReconnect, onError } = options.postgres ?? {};
      const { describeFailure, PostgresStore, SchemaVersionError } = await import('./postgres.ts');
      const store = new PostgresStore({ url, ...(onReconnect ? { onReconnect } : {}), ...(onError ? { onError } : {}) });
      try {
        await store.connect(); // creates or upgrades the schema
      } catch (err) {
        await store.close();
        if (err instanceof SchemaVersionError) throw err;
        // The driver's reason never holds the password, but a URL it failed to parse might.
        const password = passwordOf(url);
        const reason = password ? describeFailure(err).split(password).join('***') : describeFailure(err);
        // Unreachable (refused, timed out, no such database, bad credentials), or reached but refusing
        // the schema's set-up (a missing right: CREATE on the database, or on an existing schema).
        const what = err instanceof StoreUnavailableError ? 'is unreachable' : 'cannot be used';
        throw new Error(`PostgreSQL at ${redactUrl(url)} ${what} (check MIMIR_DATABASE_URL): ${reason}`, { cause: err });
      }
      return store;
    }
  }
}

/** What the start banner says about the store: which one, and where (passwords masked). */
export function describeStorage(config: Pick<Config, 'storage' | 'variables'>): string {
  const { storage } = config;
  switch (storage.kind) {
    case 'redis':
      return `redis (${describeRedis(storage.redis)})`;
    case 'postgres': {
      const why = config.variables.MIMIR_TOKEN_STORAGE === 'database' ? '; MIMIR_TOKEN_STORAGE=database with a postgres MIMIR_DATABASE_URL' : '';
      return `postgres (${redactUrl(storage.postgres?.url ?? '')}${why})`;
    }
    case 'sqlite':
      return `sqlite (${storage.sqlitePath})`;
    case 'memory':
      return 'memory (development only: nothing survives a restart)';
  }
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}
