/**
 * Issue 20, goal 4: SqliteStore.find answers a row it read again from memory, while the file has
 * not changed. What these tests hold: nothing it answers is older than the file as of the turn of
 * the event loop it is asked in — a change by another process, another connection of this process
 * (a second hub on the file, the raw file), or this store's own writes (seen at once, in the same
 * turn), and a record's expiry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { SqliteStore } from '../../src/storage/sqlite.ts';
import { ApiKeys } from '../../src/api-keys/index.ts';

const STORE_MODULE = new URL('../../src/storage/sqlite.ts', import.meta.url).href;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function withFile(run: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-found-'));
  try {
    await run(join(dir, 'store.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `body` (statements on `store`, an open SqliteStore on `path`) in another process. */
async function inAnotherProcess(path: string, body: string): Promise<void> {
  const child = `
    const { SqliteStore } = await import(${JSON.stringify(STORE_MODULE)});
    const store = new SqliteStore(${JSON.stringify(path)});
    ${body}
    await store.close();`;
  await promisify(execFile)(process.execPath, ['--no-warnings', '--input-type=module', '-e', child]);
}

describe('SqliteStore.find, answered from memory while the file has not changed', () => {
  it('a record another process consumes, rewrites or removes is read as it now is on the next turn', async () => {
    await withFile(async (path) => {
      const store = new SqliteStore(path);
      try {
        await store.upsert('refresh_token', 'a', { v: 1 }, 3600);
        await store.upsert('api_key', 'b', { v: 1 }, 3600);
        await store.upsert('client', 'c', { v: 1 });
        for (let i = 0; i < 3; i++) assert.equal((await store.find('refresh_token', 'a'))?.consumedAt, undefined);
        assert.deepEqual((await store.find('api_key', 'b'))?.payload, { v: 1 });
        assert.ok(await store.find('client', 'c'));
        await inAnotherProcess(path, `
          await store.consume('refresh_token', 'a');
          await store.upsert('api_key', 'b', { v: 2, revoked: true }, 3600);
          await store.destroy('client', 'c');`);
        await nextTurn();
        assert.notEqual((await store.find('refresh_token', 'a'))?.consumedAt, undefined, 'the rotation another process made');
        assert.deepEqual((await store.find('api_key', 'b'))?.payload, { v: 2, revoked: true });
        assert.equal(await store.find('client', 'c'), null);
      } finally {
        await store.close();
      }
    });
  });

  it('a change through another connection of this process (a second store, the raw file) is read on the next turn', async () => {
    await withFile(async (path) => {
      const [a, b] = [new SqliteStore(path), new SqliteStore(path)];
      const raw = new DatabaseSync(path);
      try {
        await a.upsert('api_key', 'k', { owner: 'alice' });
        assert.deepEqual((await a.find('api_key', 'k'))?.payload, { owner: 'alice' });
        assert.deepEqual((await b.find('api_key', 'k'))?.payload, { owner: 'alice' });
        await b.upsert('api_key', 'k', { owner: 'bob' });
        await nextTurn();
        assert.deepEqual((await a.find('api_key', 'k'))?.payload, { owner: 'bob' }, 'written by the second store');
        raw.prepare("UPDATE records SET payload = '{\"owner\":\"carol\"}' WHERE kind = 'api_key' AND id = 'k'").run();
        await nextTurn();
        assert.deepEqual((await a.find('api_key', 'k'))?.payload, { owner: 'carol' }, 'written to the file directly');
        assert.deepEqual((await b.find('api_key', 'k'))?.payload, { owner: 'carol' });
      } finally {
        raw.close();
        await Promise.all([a.close(), b.close()]);
      }
    });
  });

  it('a key revoked by a second hub on the file in this process is refused by the first in the same turn (from an attacker\'s review)', async () => {
    // Its publish reaches the first hub's caches at once (an EventEmitter): they drop the key and
    // read the store again in the same turn, and must not get the row as it was.
    await withFile(async (path) => {
      const [a, b] = [new SqliteStore(path), new SqliteStore(path)];
      try {
        const [keysA, keysB] = [new ApiKeys(a), new ApiKeys(b)];
        const { key, record } = await keysA.create({ name: 'ci', roles: ['admin'] });
        await nextTurn();
        assert.ok(await keysA.verify(key));
        let heard = false;
        await a.subscribe('api-key-revoked', () => { heard = true; });
        assert.equal(await keysB.revoke(record.id), true);
        assert.ok(heard, 'hub A was told at once');
        assert.equal(await keysA.verify(key), null, 'hub A, told of the revocation, reads the store again');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  });

  it("the store's own writes are read at once, in the same turn", async () => {
    await withFile(async (path) => {
      const store = new SqliteStore(path);
      try {
        const id = 'r';
        await store.upsert('refresh_token', id, { generation: 0 }, 3600);
        assert.equal((await store.find('refresh_token', id))?.consumedAt, undefined);
        assert.equal(await store.consume('refresh_token', id), true);
        assert.notEqual((await store.find('refresh_token', id))?.consumedAt, undefined, 'consume');

        await store.upsert('refresh_token', id, { generation: 1 }, 3600);
        assert.deepEqual((await store.find('refresh_token', id))?.payload, { generation: 1 }, 'upsert');
        assert.equal(await store.consumeAndPut('refresh_token', id, { kind: 'refresh_token', id: 'next', payload: { generation: 2 }, ttlSeconds: 3600 }), true);
        assert.notEqual((await store.find('refresh_token', id))?.consumedAt, undefined, 'consumeAndPut: the consumed one');

        assert.deepEqual((await store.find('refresh_token', 'next'))?.payload, { generation: 2 });
        await store.upsertMany([{ kind: 'refresh_token', id: 'next', payload: { generation: 3 }, ttlSeconds: 3600 }]);
        assert.deepEqual((await store.find('refresh_token', 'next'))?.payload, { generation: 3 }, 'upsertMany');
        assert.equal(await store.destroy('refresh_token', 'next'), true);
        assert.equal(await store.find('refresh_token', 'next'), null, 'destroy');
        await store.restore({ kind: 'refresh_token', id: 'next', payload: { generation: 4 }, expiresAt: Math.floor(Date.now() / 1000) + 60 });
        assert.deepEqual((await store.find('refresh_token', 'next'))?.payload, { generation: 4 }, 'restore');

        await store.increment('rate', 'x', 1, 60);
        assert.deepEqual((await store.find('rate', 'x'))?.payload, { value: 1 });
        await store.increment('rate', 'x', 2, 60);
        assert.deepEqual((await store.find('rate', 'x'))?.payload, { value: 3 }, 'increment');
        await store.incrementMany('rate', [['x', 4]]);
        assert.deepEqual((await store.find('rate', 'x'))?.payload, { value: 7 }, 'incrementMany');

        await store.upsert('client', 'c', { v: 1 });
        assert.ok(await store.find('client', 'c'));
        assert.equal(await store.insert('client', 'c', { v: 2 }), false, 'a live row is not replaced by insert');
        assert.deepEqual((await store.find('client', 'c'))?.payload, { v: 1 });
      } finally {
        await store.close();
      }
    });
  });

  it('a record read before its expiry is not answered after it', async () => {
    let now = 1_700_000_000_000;
    const store = new SqliteStore(':memory:', { now: () => now });
    try {
      await store.upsert('refresh_token', 'e', { v: 1 }, 10);
      assert.ok(await store.find('refresh_token', 'e'));
      now += 9_000;
      assert.ok(await store.find('refresh_token', 'e'));
      now += 1_000;
      assert.equal(await store.find('refresh_token', 'e'), null);
    } finally {
      await store.close();
    }
  });

  it('a write made between two chunks of upsertMany is not hidden by a row read in between', async () => {
    {
      // In memory: no other connection, so nothing but the write itself can tell the rows changed.
      const store = new SqliteStore(':memory:');
      try {
        const many = Array.from({ length: 1200 }, (_, i) => ({ kind: 'api_key', id: `k${String(i).padStart(4, '0')}`, payload: { v: 1 } }));
        await store.upsertMany(many);
        for (const r of many) assert.deepEqual((await store.find('api_key', r.id))?.payload, { v: 1 });
        const writing = store.upsertMany(many.map((r) => ({ ...r, payload: { v: 2 } })));
        // Read while the later chunks are still to be written: each row as it is at that moment.
        for (const r of many.slice(-10)) await store.find('api_key', r.id);
        await writing;
        for (const r of many) assert.deepEqual((await store.find('api_key', r.id))?.payload, { v: 2 }, r.id);
      } finally {
        await store.close();
      }
    }
  });
});
