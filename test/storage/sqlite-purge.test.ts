/**
 * Issue 20, goal 6: SQLite's cleanup works in bounded batches. node:sqlite is synchronous, so one
 * DELETE of a large backlog would hold the server's event loop (and the file's write lock) for
 * its whole length; in batches, requests are served between them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { PURGE_BATCH, SqliteStore } from '../../src/storage/sqlite.ts';

describe('SQLite purgeExpired', () => {
  it('removes a backlog of several batches, counting per kind, and lets the event loop run between batches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-purge-'));
    const path = join(dir, 'store.db');
    const store = new SqliteStore(path);
    try {
      const backlog = PURGE_BATCH * 5 + 17;
      // Rows that expired long ago, written directly (the store refuses a TTL in the past).
      const db = new DatabaseSync(path);
      db.exec('BEGIN');
      const insert = db.prepare("INSERT INTO records (kind, id, payload, expires_at) VALUES (:kind, :id, '{}', 1)");
      for (let i = 0; i < backlog; i++) insert.run({ kind: i % 2 ? 'refresh_token' : 'authz_code', id: `old-${i}` });
      db.exec('COMMIT');
      db.close();
      await store.upsert('refresh_token', 'live', { ok: true }, 600);
      await store.upsert('api_key', 'forever', { ok: true });

      let turns = 0;
      let counting = true;
      const tick = () => { turns++; if (counting) setImmediate(tick); };
      setImmediate(tick);
      const removed = await store.purgeExpired();
      counting = false;

      assert.deepEqual(removed, { refresh_token: Math.floor(backlog / 2), authz_code: Math.ceil(backlog / 2) });
      assert.ok(turns >= 5, `the event loop turned between batches (${turns} turns during the purge)`);
      assert.deepEqual((await store.find('refresh_token', 'live'))?.payload, { ok: true });
      assert.deepEqual(await store.find('api_key', 'forever'), { payload: { ok: true } });
      assert.deepEqual(await store.purgeExpired(), {});
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
