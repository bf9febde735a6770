/**
 * From an attacker's review of the SQLite store's remembered rows (6fb9026, SqliteStore #found): Bus.join counts the store as a user before it opens the
 * follower (`this.#users++ > 0`). When opening or first reading the follower throws (SQLITE_BUSY
 * past its 100 ms timeout, an I/O error; here a fault injected through the schema), the constructor
 * throws but the bus stays in `buses` with one user and no follower, and every later SqliteStore on
 * that file in this process joins it without one. Before the change that silenced the change feed
 * (AuthCaches still bounded by MIMIR_CREDENTIAL_CACHE_MAX_AGE, and find read the file); now
 * `changes` never moves, so #found is never cleared by another connection's commit: a row the CLI
 * revoked is answered for ever (until this store writes it, or 4096 other rows push it out).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteStore } from '../../src/storage/sqlite.ts';

describe('SqliteStore.find after a store on the file failed to open', () => {
  it("another connection's commit is still seen by a store opened after the failure", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-found-nofollow-'));
    const path = join(dir, 'store.db');
    const raw = new DatabaseSync(path); // the CLI, or an administrator's sqlite3
    try {
      // Fault: the follower's first read fails (the store's own set-up does not).
      raw.exec('CREATE TABLE changes (channel TEXT, message TEXT, origin TEXT, at INTEGER)'); // no seq
      assert.throws(() => new SqliteStore(path), /seq/);
      raw.exec('DROP TABLE changes'); // the fault is gone; the process goes on (a retry, a second hub)
      const store = new SqliteStore(path);
      try {
        await store.upsert('api_key', 'k', { revoked: false });
        assert.deepEqual((await store.find('api_key', 'k'))?.payload, { revoked: false });
        raw.prepare(`UPDATE records SET payload = '{"revoked":true}' WHERE kind = 'api_key' AND id = 'k'`).run();
        await new Promise((resolve) => setTimeout(resolve, 450)); // two polls of the feed, many turns
        assert.deepEqual((await store.find('api_key', 'k'))?.payload, { revoked: true });
      } finally {
        await store.close();
      }
    } finally {
      raw.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
