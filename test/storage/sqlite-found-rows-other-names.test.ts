/**
 * From a second attacker's review of the SQLite store's remembered rows (FoundRows in
 * src/storage/sqlite.ts): a write by any store of this process is seen at once by every other,
 * whatever name the file was opened by (two buses, or none) and whatever the write (the purge's
 * first statement runs on the store's own connection, by its own clock).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SqliteStore } from '../../src/storage/sqlite.ts';

describe('SqliteStore.find, one file under two names in one process (two buses)', () => {
  const cases: Array<[string, (dir: string, real: string) => string]> = [
    ['a symlink to the file', (dir, real) => { const p = join(dir, 'other.db'); symlinkSync(real, p); return p; }],
    ['a file: URI of the file', (_dir, real) => pathToFileURL(real).href],
  ];
  for (const [name, other] of cases) {
    it(`${name}: a write through the other name is read at once`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mimir-found-path-'));
      const real = join(dir, 'store.db');
      const b = new SqliteStore(real);
      const a = new SqliteStore(other(dir, real));
      try {
        await a.upsert('session', 's1', { revoked: false });
        assert.deepEqual((await b.find('session', 's1'))?.payload, { revoked: false });
        await a.upsert('session', 's1', { revoked: true });
        assert.deepEqual((await b.find('session', 's1'))?.payload, { revoked: true }, 'B answers the row it kept');
      } finally {
        await a.close();
        await b.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('SqliteStore.purgeExpired, first statement on the main connection', () => {
  it('another store of the process, on another clock, does not answer a purged row in the same turn', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-found-purge-'));
    const path = join(dir, 'store.db');
    const t = 1_700_000_000_000;
    const a = new SqliteStore(path, { now: () => t + 100_000 });
    const b = new SqliteStore(path, { now: () => t });
    try {
      await b.upsert('code', 'c1', { v: 1 }, 50);
      assert.deepEqual((await b.find('code', 'c1'))?.payload, { v: 1 });
      assert.deepEqual(await a.purgeExpired(), { code: 1 });
      assert.equal(await b.find('code', 'c1'), null, 'B answers the row A purged');
    } finally {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
