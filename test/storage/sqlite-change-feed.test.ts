/**
 * Issue 18, item 6: SQLite's pub/sub crosses processes on the same file (the change feed), so what
 * the CLI publishes reaches a running server within 1 s instead of at the next 30 s resync; in the
 * publishing process it stays immediate and is never delivered twice.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SqliteStore } from '../../src/storage/sqlite.ts';

const STORE_MODULE = new URL('../../src/storage/sqlite.ts', import.meta.url).href;

/** Publishes `messages` on `channel` from another process, then closes its store. */
async function publishFromAnotherProcess(path: string, channel: string, messages: string[]): Promise<void> {
  const child = `
    const { SqliteStore } = await import(${JSON.stringify(STORE_MODULE)});
    const store = new SqliteStore(${JSON.stringify(path)});
    for (const m of ${JSON.stringify(messages)}) await store.publish(${JSON.stringify(channel)}, m);
    await store.close();`;
  await promisify(execFile)(process.execPath, ['--no-warnings', '--input-type=module', '-e', child]);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('the SQLite change feed', () => {
  it('a message published by another process on the same file reaches subscribers here within 1 s, once each and in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-feed-'));
    const path = join(dir, 'store.db');
    const store = new SqliteStore(path);
    try {
      const received: Array<{ message: string; at: number }> = [];
      await store.subscribe('feed-test', (message) => received.push({ message, at: performance.now() }));
      await publishFromAnotherProcess(path, 'feed-test', ['one', 'two', 'three']);
      const published = performance.now();
      while (received.length < 3 && performance.now() - published < 1000) await sleep(20);
      await sleep(600); // a few more polls: nothing may arrive twice
      assert.deepEqual(received.map((r) => r.message), ['one', 'two', 'three']);
      assert.ok(received.every((r) => r.at - published < 1000), `arrived after ${received.map((r) => (r.at - published).toFixed(0)).join(', ')} ms`);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in the publishing process delivery is immediate and not doubled by the feed, across stores on one file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-feed-'));
    const path = join(dir, 'store.db');
    const [a, b] = [new SqliteStore(path), new SqliteStore(path)];
    try {
      const received: string[] = [];
      await b.subscribe('local', (m) => received.push(m));
      await a.publish('local', 'hello');
      assert.deepEqual(received, ['hello'], 'delivered before publish resolved');
      await sleep(700);
      assert.deepEqual(received, ['hello'], 'and not again from the feed');
    } finally {
      await Promise.all([a.close(), b.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('messages older than a minute are pruned when a newer one is published', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-feed-'));
    const path = join(dir, 'store.db');
    const store = new SqliteStore(path);
    try {
      await store.publish('old', 'x');
      const { DatabaseSync } = await import('node:sqlite');
      const raw = new DatabaseSync(path);
      raw.prepare('UPDATE changes SET at = at - 120000').run();
      await store.publish('new', 'y');
      const rows = raw.prepare('SELECT channel FROM changes ORDER BY seq').all() as Array<{ channel: string }>;
      raw.close();
      assert.deepEqual(rows.map((r) => r.channel), ['new']);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
