/**
 * From an attacker's review of the SQLite store's remembered rows (SqliteStore.find, FoundRows): a
 * second store on the file in this process (two hubs, as the tests run them) writes, and its publish
 * reaches the first hub's caches at once (an EventEmitter); they drop the key and read the store
 * again in the same turn, and must not get the row as it was. (A commit by another process during a
 * turn is seen from the next turn on, as the change feed's messages are: test/storage/sqlite-found-rows.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite.ts';
import { ApiKeys } from '../../src/api-keys/index.ts';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function withFile(run: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-found-turn-'));
  try {
    await run(join(dir, 'store.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SqliteStore.find, a commit made during the turn', () => {
  it('a key revoked by a second hub on the file in this process is refused by the first in the same turn', async () => {
    await withFile(async (path) => {
      const [a, b] = [new SqliteStore(path), new SqliteStore(path)];
      try {
        const [keysA, keysB] = [new ApiKeys(a), new ApiKeys(b)];
        const { key, record } = await keysA.create({ name: 'ci', roles: ['admin'] });
        await nextTurn();
        assert.ok(await keysA.verify(key));
        let heard = false;
        await a.subscribe('api-key-revoked', () => { heard = true; }); // hub A's caches drop the key here
        assert.equal(await keysB.revoke(record.id), true);
        assert.ok(heard, 'hub A was told at once');
        assert.equal(await keysA.verify(key), null, 'hub A, told of the revocation, reads the store again');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  });
});
