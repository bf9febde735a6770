import type { Store } from './adapter.ts';
import { MemoryStore } from './memory.ts';
import { redactUrl } from '../config/index.ts';
import { RedisStore } from './redis.ts';
import { SqliteStore, type PermissionFix } from './sqlite.ts';

export type { Store, StoredEntry, StoredRecord, Successor } from './adapter.ts';
export { StoreUnavailableError } from './adapter.ts';
export { MemoryStore, type MemoryStoreOptions } from './memory.ts';
export { SqliteStore, type PermissionFix, type SqliteStoreOptions } from './sqlite.ts';
export { RedisStore, type RedisStoreOptions } from './redis.ts';

export interface CreateStoreOptions {
  kind: 'memory' | 'sqlite' | 'redis';
  sqlitePath?: string;
  redis?: { url: string; db: number; keyPrefix: string };
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
      const url = options.redis?.url ?? 'redis://localhost:6379';
      const store = new RedisStore(options.redis ?? {});
      try {
        await store.connect();
      } catch (err) {
        throw new Error(
          `Redis at ${redactUrl(url)} is unreachable (check MIMIR_REDIS_URL): ${(err as Error).message}`,
          { cause: err },
        );
      }
      return store;
    }
  }
}
