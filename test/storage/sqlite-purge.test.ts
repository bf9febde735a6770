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

  it('on disk, purges in a worker thread: the hub writes meanwhile, and closing the store stops it between statements', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-purge-'));
    const path = join(dir, 'store.db');
    const store = new SqliteStore(path);
    try {
      const backlog = 40_000;
      const db = new DatabaseSync(path);
      db.exec('BEGIN');
      const insert = db.prepare("INSERT INTO records (kind, id, payload, expires_at) VALUES ('refresh_token', :id, '{}', 1)");
      for (let i = 0; i < backlog; i++) insert.run({ id: `old-${i}` });
      db.exec('COMMIT');
      db.close();

      const purge = store.purgeExpired();
      // This thread writes while the worker holds the file between its statements.
      for (let i = 0; i < 20; i++) await store.upsert('api_key', `k${i}`, { i });
      const removed = await purge;
      assert.deepEqual(removed, { refresh_token: backlog });
      assert.equal((await store.list('api_key')).length, 20);

      // Again, closed while under way: it stops (rejects), and what it removed is gone for good.
      const again = new DatabaseSync(path);
      again.exec('BEGIN');
      const more = again.prepare("INSERT INTO records (kind, id, payload, expires_at) VALUES ('refresh_token', :id, '{}', 1)");
      for (let i = 0; i < backlog; i++) more.run({ id: `older-${i}` });
      again.exec('COMMIT');
      const stopped = store.purgeExpired();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await store.close();
      await assert.rejects(stopped, /closed/);
      const left = (again.prepare("SELECT COUNT(*) AS n FROM records WHERE kind = 'refresh_token'").get() as { n: number }).n;
      again.close();
      assert.ok(left >= 0 && left <= backlog, `${left} rows left`);
      const reopened = new SqliteStore(path);
      assert.deepEqual(await reopened.purgeExpired(), left ? { refresh_token: left } : {});
      await reopened.close();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in memory (:memory:), purges in this thread', async () => {
    const store = new SqliteStore(':memory:');
    try {
      await store.upsert('refresh_token', 'live', { ok: true }, 600);
      assert.deepEqual(await store.purgeExpired(), {});
    } finally {
      await store.close();
    }
  });
});
