/**
 * From an attacker's review of the SQLite store's remembered rows (6fb9026, SqliteStore #found): entries() steps one statement across awaits, so the
 * store's connection holds one read transaction (one snapshot of the WAL) until it ends. A find
 * meanwhile reads that snapshot — as before — but now keeps it: the follower (its own connection)
 * saw the commit and moved `changes` already, the Map was cleared before the old row was read and
 * kept, and nothing moves `changes` again. After the iteration the old row is answered on every
 * later turn, until some unrelated commit. Before the change the first find after it read the file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteStore } from '../../src/storage/sqlite.ts';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('SqliteStore.find after entries()', () => {
  it('a row rewritten by another connection during entries() is read as it is once the iteration is over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-found-snap-'));
    const path = join(dir, 'store.db');
    const store = new SqliteStore(path);
    const raw = new DatabaseSync(path); // the CLI, or another hub
    try {
      await store.upsert('api_key', 'k', { revoked: false });
      await store.upsert('api_key', 'l', { other: true });
      const reading = store.entries()[Symbol.asyncIterator]();
      await reading.next(); // a copy / backup under way
      raw.prepare(`UPDATE records SET payload = '{"revoked":true}' WHERE kind = 'api_key' AND id = 'k'`).run();
      await nextTurn();
      await store.find('api_key', 'k'); // a request meanwhile (reads the snapshot, as before the change)
      while (!(await reading.next()).done) { /* the iteration ends */ }
      await new Promise((resolve) => setTimeout(resolve, 450)); // two follower polls, many turns
      assert.deepEqual((await store.find('api_key', 'k'))?.payload, { revoked: true });
    } finally {
      raw.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
