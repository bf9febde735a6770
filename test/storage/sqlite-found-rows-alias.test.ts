/**
 * From an attacker's review of the SQLite store's remembered rows (6fb9026, SqliteStore #found): the Map's key is the JavaScript id, but SQLite keys the
 * row by its UTF-8 bytes, and node:sqlite writes a lone surrogate as U+FFFD: "a\uD800",
 * "a\uDC00" and "a\uFFFD" are one row, three Map keys. A write forgets only the spelling it was
 * given, so a row found under another spelling is answered as it was: in ':memory:' (no follower,
 * nothing else ever clears the Map) on every later turn; on a file within the turn, the store's own
 * write included ("its own writes are read at once"). Ids with lone surrogates reach the store
 * from JSON bodies (the token endpoint takes JSON, strings only: client_id "x\ud800" is a string).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite.ts';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('SqliteStore.find, one row under two spellings of its id', () => {
  it('in memory: a row destroyed and rewritten is read as it now is under the other spelling', async () => {
    const store = new SqliteStore(':memory:');
    try {
      await store.upsert('service_account', 'svc\uFFFD', { disabled: false });
      assert.deepEqual((await store.find('service_account', 'svc\uD800'))?.payload, { disabled: false }, 'the same row');
      await store.upsert('service_account', 'svc\uFFFD', { disabled: true });
      await nextTurn();
      assert.deepEqual((await store.find('service_account', 'svc\uD800'))?.payload, { disabled: true }, 'rewritten');
      assert.equal(await store.destroy('service_account', 'svc\uDC00'), true);
      await nextTurn();
      assert.equal(await store.find('service_account', 'svc\uD800'), null, 'destroyed');
    } finally {
      await store.close();
    }
  });

  it("on a file: the store's own write is read at once under the other spelling", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-found-alias-'));
    const store = new SqliteStore(join(dir, 'store.db'));
    try {
      await store.upsert('client', 'c\uFFFD', { v: 1 });
      assert.deepEqual((await store.find('client', 'c\uD800'))?.payload, { v: 1 });
      assert.equal(await store.destroy('client', 'c\uFFFD'), true);
      assert.equal(await store.find('client', 'c\uD800'), null);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
