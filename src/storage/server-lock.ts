/**
 * One SQLite data directory, one server (issue 18, item 6). Two hubs serving from one directory
 * each believe they own it: they generated different signing keys at once and refused each
 * other's tokens. `mimir-auth serve` holds this lock for its lifetime; the CLI's admin commands do
 * not take it, so they keep working beside a running server (their changes reach it through the
 * store's change feed).
 *
 * The lock is SQLite's own: an EXCLUSIVE lock on a small database of its own (`serve.lock`), taken
 * with no busy wait and held until the process ends. It is an fcntl() lock owned by the process,
 * so the kernel drops it when the process goes, however it goes (kill -9, a crash, a power cut
 * on a local disk): nothing is left behind to clean up, and no PID (which the system may have
 * given to another process since) is ever guessed about. Not for network filesystems, whose
 * locks SQLite itself does not trust either.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export const LOCK_FILE = 'serve.lock';

export class DataDirectoryInUseError extends Error {
  constructor(dir: string) {
    super(`another mimir-auth server is already serving from the data directory ${dir} (MIMIR_DATA_DIR). `
      + 'SQLite serves one instance: stop the other server, give this one its own MIMIR_DATA_DIR, or, to run several '
      + 'instances, use Redis or PostgreSQL (MIMIR_TOKEN_STORAGE).');
    this.name = 'DataDirectoryInUseError';
  }
}

export interface ServerLock {
  release(): void;
}

/**
 * Takes the directory for this process, or throws {@link DataDirectoryInUseError} when a live
 * server holds it. The directory exists (the store creates it first).
 *
 * @example
 * const lock = lockDataDirectory(config.dataDir);
 * try { await run(); } finally { lock.release(); }
 */
export function lockDataDirectory(dir: string): ServerLock {
  const path = join(dir, LOCK_FILE);
  // Created owner-only, like the database beside it (SQLite gives its journal the same mode).
  closeSync(openSync(path, 'a', 0o600));
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    // locking_mode=EXCLUSIVE keeps the lock after the transaction; BEGIN EXCLUSIVE takes it now,
    // or fails at once (SQLITE_BUSY) while another process holds it.
    db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;');
  } catch (e) {
    db.close();
    if ((e as { errcode?: number }).errcode === 5 /* SQLITE_BUSY */) throw new DataDirectoryInUseError(dir);
    throw e;
  }
  return {
    release() {
      if (db.isOpen) db.close();
    },
  };
}
