/**
 * Issue 20: SQLite's bulk writes (the audit events of a second, request counts) commit a chunk of
 * records at a time. node:sqlite is synchronous and every commit syncs the file: one commit per
 * record held the server's event loop for seconds under load (2000 audit events a second: about
 * 0.45 s of every second). Each chunk is its own transaction, with a turn of the event loop between.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { WRITE_CHUNK } from '../../src/storage/adapter.ts';
import { SqliteStore } from '../../src/storage/sqlite.ts';

describe('SQLite upsertMany and incrementMany', () => {
  it('commit a chunk at a time (other connections see whole chunks), letting the event loop run between chunks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-batch-'));
    const path = join(dir, 'store.db');
    const store = new SqliteStore(path);
    const other = new DatabaseSync(path);
    try {
      const count = other.prepare("SELECT count(*) AS n FROM records WHERE kind = 'audit_event'");
      const seen: number[] = [];
      let counting = true;
      const tick = () => { if (!counting) return; seen.push(Number((count.get() as { n: number }).n)); setImmediate(tick); };
      setImmediate(tick);
      const n = 3 * WRITE_CHUNK + 5;
      await store.upsertMany(Array.from({ length: n }, (_, i) => ({ kind: 'audit_event', id: `e${i}`, payload: { i }, ttlSeconds: 600 })));
      counting = false;
      assert.equal((count.get() as { n: number }).n, n);
      // Between chunks, another connection saw every chunk committed whole, never a part of one.
      const between = [...new Set(seen)];
      assert.ok(between.length >= 3, `the event loop turned between chunks (counts seen: ${between.join(', ')})`);
      for (const c of between) assert.ok(c % WRITE_CHUNK === 0 || c === n, `${c} records committed: whole chunks only`);

      await store.incrementMany('request_count', [['api_key.a', 3], ['api_key.b', 1]]);
      await store.incrementMany('request_count', [['api_key.a', 2]]);
      assert.equal(await store.increment('request_count', 'api_key.a', 0), 5);
      // A count that cannot be written is left out, the rest written, the failure thrown; the store is usable after it.
      await assert.rejects(store.incrementMany('request_count', [['api_key.c', 1], ['api_key.d', 1.5]]), RangeError);
      assert.equal(await store.increment('request_count', 'api_key.c', 0), 1);
      assert.equal(await store.find('request_count', 'api_key.d'), null);
      await store.upsert('api_key', 'after', { ok: true });
      assert.deepEqual((await store.find('api_key', 'after'))?.payload, { ok: true });
    } finally {
      other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
