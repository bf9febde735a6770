import type { Store } from './adapter.ts';
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import { describeRedis, redisVariables, type RedisTopology } from './redis-connection.ts';
import { SqliteStore, type PermissionFix } from './sqlite.ts';

export type { Store, StoredRecord, Successor } from './adapter.ts';
export { StoreUnavailableError } from './adapter.ts';
export { MemoryStore, type MemoryStoreOptions } from './memory.ts';
export { SqliteStore, type PermissionFix, type SqliteStoreOptions } from './sqlite.ts';
export { RedisStore, type RedisStoreOptions } from './redis.ts';
export type { HostPort, RedisTopology } from './redis-connection.ts';

export interface CreateStoreOptions {
  kind: 'memory' | 'sqlite' | 'redis';
  sqlitePath?: string;
  redis?: { url: string; db: number; keyPrefix: string; topology?: RedisTopology };
  /** SQLite: told which of the data directory and database files were found open and tightened. */
  onPermissionsFixed?: (fixed: PermissionFix[]) => void;
}

/** Opens the configured store; for Redis it connects and pings first, so a bad URL fails at startup. */
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
  }
}
