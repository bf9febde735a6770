/**
 * What only the PostgreSQL store has: its versioned schema, LISTEN/NOTIFY, and its behaviour when
 * the server goes away. Real servers: a fresh database on MIMIR_TEST_POSTGRES_URL, and for the
 * faults a private cluster this test kills, pauses and restarts (test/helpers/postgres.ts).
 * The shared Store contract runs in contract.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createStore, StoreUnavailableError, type Store } from '../../src/storage/index.ts';
import { MIGRATIONS, NOTIFY_PAYLOAD_LIMIT, PostgresStore, SchemaVersionError, type Migration } from '../../src/storage/postgres.ts';
import { admin, freshDatabase, privateCluster, type FreshDatabase, type PrivateCluster } from '../helpers/postgres.ts';
import { throughProxy } from '../helpers/tcp-proxy.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { basic, postForm } from '../helpers/http.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves with the first message on `channel` at `store`, or fails after `ms`. */
function nextMessage(store: Store, channel: string, ms = 3000): { subscribed: Promise<void>; message: Promise<string> } {
  let deliver: (m: string) => void = () => {};
  const message = new Promise<string>((resolve, reject) => {
    deliver = resolve;
    setTimeout(() => reject(new Error(`no message on ${channel} within ${ms} ms`)), ms).unref();
  });
  return { subscribed: store.subscribe(channel, (m) => deliver(m)), message };
}

/** Polls `check` until true; returns the milliseconds it took, or fails after `ms`. */
async function within(ms: number, what: string, check: () => boolean | Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (!(await check())) {
    if (performance.now() - t0 > ms) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
  return performance.now() - t0;
}

/** Counts the statements every PostgreSQL pool sends from now until restore(). */
function countStatements(): { readonly count: number; restore(): void } {
  const original = pg.Pool.prototype.query;
  let count = 0;
  pg.Pool.prototype.query = function (this: pg.Pool, ...args: unknown[]) {
    count++;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  return { get count() { return count; }, restore: () => { pg.Pool.prototype.query = original; } };
}

async function rows<T>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await admin(sql, values, url)).rows as T[];
}

describe('PostgreSQL store: schema', () => {
  let db: FreshDatabase;
  before(async () => {
    db = await freshDatabase();
  });
  after(async () => db?.drop());

  it('is created on first start in schema mimir_auth, its version recorded in schema_version', async () => {
    const store = new PostgresStore({ url: db.url });
    try {
      await store.connect();
      const versions = await rows<{ version: number; description: string }>(db.url, 'SELECT version, description FROM mimir_auth.schema_version ORDER BY version');
      assert.deepEqual(versions, MIGRATIONS.map((m) => ({ version: m.version, description: m.description })));
      assert.equal(MIGRATIONS[0]?.version, 1, 'migrations are numbered from 1');
      const tables = await rows<{ table_name: string }>(db.url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mimir_auth' ORDER BY table_name");
      assert.deepEqual(tables.map((t) => t.table_name), ['records', 'schema_version']);
    } finally {
      await store.close();
    }
  });

  it('migrations run forward, in order, each once: a later release applies only the new ones and keeps the data', async () => {
    const schema = `m_${randomUUID().slice(0, 8)}`;
    const first: Migration[] = [{ version: 1, description: 'records', up: MIGRATIONS[0]!.up }];
    // Version 2 creates a table without IF NOT EXISTS: running it twice would fail.
    const second: Migration[] = [...first, { version: 2, description: 'an extra table', up: (s) => `CREATE TABLE ${s}.extra (n int)` }];
    const v1 = new PostgresStore({ url: db.url, schema, migrations: first });
    await v1.upsert('k', 'kept', { from: 'v1' });
    await v1.close();
    for (let start = 0; start < 2; start++) {
      const v2 = new PostgresStore({ url: db.url, schema, migrations: second });
      try {
        assert.deepEqual(await v2.find('k', 'kept'), { payload: { from: 'v1' } });
      } finally {
        await v2.close();
      }
    }
    const versions = await rows<{ version: number }>(db.url, `SELECT version FROM ${schema}.schema_version ORDER BY version`);
    assert.deepEqual(versions.map((v) => v.version), [1, 2]);
    assert.deepEqual(await rows(db.url, `SELECT n FROM ${schema}.extra`), []);
  });

  it('a migration that fails leaves the schema at the previous version, and the store does not open', async () => {
    const schema = `m_${randomUUID().slice(0, 8)}`;
    const first: Migration[] = [{ version: 1, description: 'records', up: MIGRATIONS[0]!.up }];
    const v1 = new PostgresStore({ url: db.url, schema, migrations: first });
    await v1.connect();
    await v1.close();
    const broken = new PostgresStore({
      url: db.url, schema,
      migrations: [...first, { version: 2, description: 'half done', up: (s) => `CREATE TABLE ${s}.half (n int); SELECT no_such_function()` }],
    });
    try {
      await assert.rejects(broken.connect(), (err: Error) => !(err instanceof StoreUnavailableError));
    } finally {
      await broken.close();
    }
    const versions = await rows<{ version: number }>(db.url, `SELECT version FROM ${schema}.schema_version`);
    assert.deepEqual(versions.map((v) => v.version), [1]);
    assert.deepEqual(await rows(db.url, "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'half'", [schema]), []);
  });

  it('a database written by a newer schema version is refused at start, naming both versions', async () => {
    const schema = `m_${randomUUID().slice(0, 8)}`;
    const store = new PostgresStore({ url: db.url, schema });
    await store.connect();
    await store.close();
    const newer = MIGRATIONS.at(-1)!.version + 1;
    await admin(`INSERT INTO ${schema}.schema_version (version, description) VALUES ($1, 'from the future')`, [newer], db.url);
    const older = new PostgresStore({ url: db.url, schema });
    try {
      await assert.rejects(older.connect(), (err: Error) => {
        assert.ok(err instanceof SchemaVersionError, String(err));
        assert.match(err.message, new RegExp(`version ${newer}\\b`));
        assert.match(err.message, new RegExp(`up to ${newer - 1}\\b`));
        return true;
      });
      await assert.rejects(older.upsert('k', 'x', {}), SchemaVersionError, 'and nothing is written');
    } finally {
      await older.close();
    }
    assert.deepEqual(await rows(db.url, `SELECT 1 FROM ${schema}.records`), []);
    // Through createStore (what `serve` uses) the same error, not "unreachable".
    const fresh = await freshDatabase();
    try {
      await (await createStore({ kind: 'postgres', postgres: { url: fresh.url } })).close();
      await admin(`INSERT INTO mimir_auth.schema_version (version, description) VALUES ($1, 'from the future')`, [newer], fresh.url);
      await assert.rejects(createStore({ kind: 'postgres', postgres: { url: fresh.url } }), SchemaVersionError);
    } finally {
      await fresh.drop();
    }
  });
});

describe('PostgreSQL store: many records in one statement (upsertMany; the finds of one turn)', () => {
  let db: FreshDatabase;
  before(async () => {
    db = await freshDatabase();
  });
  after(async () => db?.drop());

  it('writes a chunk in one statement; a record the server refuses (a NUL in its id) costs only itself', async () => {
    const store = new PostgresStore({ url: db.url });
    try {
      await store.connect();
      await assert.rejects(store.upsertMany([
        { kind: 'k', id: 'one', payload: { v: 1 } }, { kind: 'k', id: 'n\u0000ul', payload: {} }, { kind: 'k', id: 'two', payload: { v: 2 } },
      ]), /0x00|null character|invalid byte/i);
      assert.deepEqual((await store.list('k')).map((r) => [r.id, r.payload]), [['one', { v: 1 }], ['two', { v: 2 }]]);
    } finally {
      await store.close();
    }
  });

  it('300 finds asked in one turn (two statements) answer each its own record, on one connection; an id with a NUL is not found and spoils nothing', async () => {
    const { proxy, url } = await throughProxy(db.url, 5432);
    const store = new PostgresStore({ url, listenerCheckMs: 0 });
    try {
      await store.connect();
      await store.upsertMany(Array.from({ length: 200 }, (_, i) => ({ kind: i % 2 ? 'odd' : 'even', id: `r${i}`, payload: { i } })));
      await store.upsert('even', 'short-lived', { gone: true }, 1);
      await store.upsert('even', 'used', { used: true });
      assert.equal(await store.consume('even', 'used'), true);
      const asked: Array<[string, string]> = [];
      for (let i = 0; i < 300; i++) asked.push([i % 3 === 0 ? 'odd' : 'even', `r${i % 250}`]);
      asked.push(['even', 'r0'], ['even', 'r0'], ['even', 'used'], ['odd', 'missing']);
      const baseline = proxy.connections;
      // All asked in this turn, none awaited before the last is asked.
      const answers = await Promise.all(asked.map(([kind, id]) => store.find(kind, id)));
      assert.ok(proxy.connections - baseline <= 1, `at most one more connection (${proxy.connections - baseline}): the finds did not each take one of the pool's`);
      asked.forEach(([kind, id], n) => {
        const i = Number(id.slice(1));
        const expected = id === 'used' ? { payload: { used: true } } : Number.isInteger(i) && i < 200 && (i % 2 ? 'odd' : 'even') === kind ? { payload: { i } } : null;
        if (expected && id === 'used') {
          assert.deepEqual(answers[n]!.payload, expected.payload);
          assert.ok(answers[n]!.consumedAt !== undefined, 'consumed is told');
        } else {
          assert.deepEqual(answers[n] && { payload: answers[n].payload }, expected, `find #${n} (${kind}, ${id})`);
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 2100));
      const [expired, present] = await Promise.all([store.find('even', 'short-lived'), store.find('even', 'r2')]);
      assert.equal(expired, null, 'an expired record is not found');
      assert.deepEqual(present?.payload, { i: 2 });

      // An id no record can have (PostgreSQL text holds no NUL): not found, and the others' statement is not spoiled.
      const statements = countStatements();
      try {
        const mixed = await Promise.all([...Array.from({ length: 100 }, (_, i) => store.find('even', `r${2 * i}`)), store.find('even', 'n\u0000ul')]);
        assert.equal(mixed.filter((r) => r !== null).length, 100);
        assert.equal(mixed.at(-1), null);
        assert.equal(statements.count, 1, 'one statement for the 101 finds');
      } finally {
        statements.restore();
      }
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});

describe('PostgreSQL store behind a hub: a NUL where an id is looked up', () => {
  let db: FreshDatabase;
  let t: TestHub;
  before(async () => {
    db = await freshDatabase();
    t = await startHub({ storage: 'postgres', env: { MIMIR_DATABASE_URL: db.url } });
  });
  after(async () => {
    await t?.close();
    await db?.drop();
  });

  it('a Basic client_id holding a NUL at introspection and revocation is 401 invalid_client, as at the token endpoint, never 500', async () => {
    const auth = basic('a\u0000b', 'x');
    const answers = await Promise.all(['introspect', 'revoke', 'token'].map((path) =>
      postForm(`${t.url}/auth/${path}`, path === 'token' ? { grant_type: 'client_credentials' } : { token: 'x' }, auth)));
    assert.deepEqual(answers.map((a) => [a.status, a.body.error]), [[401, 'invalid_client'], [401, 'invalid_client'], [401, 'invalid_client']]);
  });
});

describe('PostgreSQL store: two hubs starting at once on an empty database', () => {
  it('create one schema between them and both work (10 fresh databases)', async () => {
    for (let round = 0; round < 10; round++) {
      const db = await freshDatabase();
      const [a, b] = [new PostgresStore({ url: db.url }), new PostgresStore({ url: db.url })];
      try {
        await Promise.all([a.connect(), b.connect()]);
        await a.upsert('k', 'from-a', { round });
        assert.deepEqual(await b.find('k', 'from-a'), { payload: { round } });
        assert.equal(await b.insert('k', 'from-b', {}), true);
        assert.equal(await a.insert('k', 'from-b', {}), false);
        const versions = await rows<{ version: number }>(db.url, 'SELECT version FROM mimir_auth.schema_version');
        assert.deepEqual(versions.map((v) => v.version), MIGRATIONS.map((m) => m.version), `round ${round}`);
      } finally {
        await Promise.all([a.close(), b.close()]);
        await db.drop();
      }
    }
  });
});

describe('PostgreSQL store: LISTEN/NOTIFY', () => {
  let db: FreshDatabase;
  let a: PostgresStore;
  let b: PostgresStore;
  before(async () => {
    db = await freshDatabase();
    [a, b] = [new PostgresStore({ url: db.url }), new PostgresStore({ url: db.url })];
    await Promise.all([a.connect(), b.connect()]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await db?.drop();
  });

  it('a message published by one store reaches the other within 1 s, in order', async (t) => {
    const channel = `revocations-${randomUUID()}`;
    const received: string[] = [];
    await b.subscribe(channel, (m) => received.push(m));
    let arrived = () => {};
    await b.subscribe(channel, () => arrived());
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const delivered = new Promise<void>((resolve) => (arrived = resolve));
      const t0 = performance.now();
      await a.publish(channel, `m${i}`);
      await Promise.race([delivered, sleep(1000).then(() => assert.fail(`m${i} not delivered within 1 s`))]);
      times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    t.diagnostic(`NOTIFY reach (publish called → handler ran), 20 messages: median ${times[10]!.toFixed(1)} ms, max ${times[19]!.toFixed(1)} ms`);
    assert.deepEqual(received, Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  it('channel names are safe: long, quoted and unicode names are delivered to their own subscribers only', async () => {
    const base = `x${'y'.repeat(70)}`; // over the 63 bytes of an identifier
    const names = [`${base}-1`, `${base}-2`, 'quote"d \' ; LISTEN "other', 'ünïcødé ✓'];
    const got = new Map<string, string[]>(names.map((n) => [n, []]));
    for (const name of names) await b.subscribe(name, (m) => got.get(name)!.push(m));
    for (const name of names) await a.publish(name, `for ${name}`);
    await within(2000, 'delivery', () => [...got.values()].every((g) => g.length >= 1));
    await sleep(100);
    for (const name of names) assert.deepEqual(got.get(name), [`for ${name}`], name);
    assert.notEqual(a.channelName(`${base}-1`), a.channelName(`${base}-2`));
    for (const name of names) assert.ok(Buffer.byteLength(a.channelName(name)) <= 63);
  });

  it('a message of 8000 bytes or more is refused with a RangeError; 7999 bytes are delivered', async () => {
    const channel = `big-${randomUUID()}`;
    const next = nextMessage(b, channel);
    await next.subscribed;
    await assert.rejects(a.publish(channel, 'x'.repeat(NOTIFY_PAYLOAD_LIMIT)), (err: Error) => err instanceof RangeError && /8000|7999/.test(err.message));
    await assert.rejects(a.publish(channel, 'é'.repeat(4000)), RangeError, 'bytes count, not characters');
    await a.publish(channel, 'x'.repeat(NOTIFY_PAYLOAD_LIMIT - 1));
    assert.equal((await next.message).length, NOTIFY_PAYLOAD_LIMIT - 1);
  });

  it('stores on another schema of the same database do not hear each other', async () => {
    const other = new PostgresStore({ url: db.url, schema: 'mimir_other' });
    try {
      const channel = `c-${randomUUID()}`;
      const heard: string[] = [];
      await other.subscribe(channel, (m) => heard.push(m));
      const next = nextMessage(b, channel);
      await next.subscribed;
      await a.publish(channel, 'for mimir_auth');
      assert.equal(await next.message, 'for mimir_auth');
      await sleep(200);
      assert.deepEqual(heard, []);
    } finally {
      await other.close();
    }
  });

  it('the listener reconnects after its backend is terminated, says so, and hears what is published after', async (t) => {
    let reconnects = 0;
    const listener = new PostgresStore({ url: db.url, onReconnect: () => reconnects++ });
    try {
      const channel = `after-${randomUUID()}`;
      const received: string[] = [];
      await listener.subscribe(channel, (m) => received.push(m));
      // Every listener of this database (the other stores' too: they reconnect as well).
      const terminated = await rows<{ ok: boolean }>(db.url,
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mimir-auth-hub listener'");
      assert.ok(terminated.length >= 1, 'a listener backend was terminated');
      const took = await within(3000, 'reconnection', () => reconnects >= 1);
      t.diagnostic(`listener back ${took.toFixed(0)} ms after pg_terminate_backend`);
      await a.publish(channel, 'after the reconnection');
      await within(1000, 'delivery after the reconnection', () => received.length === 1);
      assert.deepEqual(received, ['after the reconnection']);
    } finally {
      await listener.close();
    }
  });

  it('idle pooled connections terminated by the server: the process lives on and the next command succeeds', async () => {
    const errors: Error[] = [];
    const store = new PostgresStore({ url: db.url, onError: (e) => errors.push(e) });
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.upsert('k', `idle-${i}`, {})));
      const terminated = await rows(db.url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mimir-auth-hub' AND pid <> pg_backend_pid()");
      assert.ok(terminated.length >= 1);
      await within(2000, 'the pool notices', () => errors.length >= 1);
      assert.deepEqual(await store.find('k', 'idle-0'), { payload: {} });
    } finally {
      await store.close();
    }
  });

  it('purgeExpired removes a backlog larger than one batch, counting per kind', async () => {
    const kind = `purge_${randomUUID().slice(0, 8)}`;
    const store = new PostgresStore({ url: db.url });
    try {
      await store.ping();
      // 12,000 rows that expired long ago, written directly (the store refuses a TTL in the past).
      await admin(`INSERT INTO mimir_auth.records (kind, id, payload, expires_at) SELECT $1, 'old-' || n, '{}', 1 FROM generate_series(1, 12000) AS n`, [kind], db.url);
      await store.upsert(kind, 'live', {}, 600);
      const removed = await store.purgeExpired();
      assert.equal(removed[kind], 12000);
      assert.deepEqual((await store.list(kind)).map((r) => r.id), ['live']);
    } finally {
      await store.close();
    }
  });

  it('a record revived while purgeExpired runs (insert or increment over an expired row) is not purged', async () => {
    // The purge picks its rows in a subquery; a row revived by a transaction that commits while the
    // DELETE waits on its lock must be re-checked as it now is (READ COMMITTED re-evaluates only the
    // DELETE's own conditions), or a live record written after the purge began is lost.
    const kind = `revive_${randomUUID().slice(0, 8)}`;
    const store = new PostgresStore({ url: db.url });
    const reviver = new pg.Client({ connectionString: db.url });
    try {
      await store.ping();
      await reviver.connect();
      await admin(`INSERT INTO mimir_auth.records (kind, id, payload, expires_at) VALUES ($1, 'back', '{"n":1}', 1), ($1, 'dead', '{}', 1)`, [kind], db.url);
      await reviver.query('BEGIN');
      await reviver.query(`UPDATE mimir_auth.records SET payload = '{"n":2}', expires_at = NULL WHERE kind = $1 AND id = 'back'`, [kind]);
      const purging = store.purgeExpired();
      // The purge is now blocked on the revived row's lock (it cannot finish before the commit).
      await within(5000, 'the purge waits on the locked row', async () =>
        (await rows<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%DELETE FROM%'"))[0]!.n > 0);
      await reviver.query('COMMIT');
      const removed = await purging;
      assert.equal(removed[kind], 1, 'only the row still expired is purged');
      assert.deepEqual(await store.find(kind, 'back'), { payload: { n: 2 } });
      assert.equal(await store.find(kind, 'dead'), null);
    } finally {
      await reviver.end().catch(() => {});
      await store.close();
    }
  });

  it('close() ends every connection of the store, and a closed store refuses work', async () => {
    const store = new PostgresStore({ url: db.url, listenerCheckMs: 50 });
    const mark = `closing-${randomUUID()}`;
    await store.subscribe(mark, () => {});
    await store.ping();
    const connections = async () => (await rows(db.url,
      "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'mimir-auth-hub%'")).length;
    const before = await connections();
    await store.close();
    await within(2000, 'connections closed', async () => (await connections()) <= before - 2);
    await assert.rejects(store.ping(), /closed/);
    await assert.rejects(store.subscribe(mark, () => {}), /closed/);
  });
});

describe('PostgreSQL store: server faults (a private cluster, killed and paused)', { timeout: 180_000 }, () => {
  let cluster: PrivateCluster;
  let store: PostgresStore;
  let peer: PostgresStore;
  let reconnects = 0;
  const errors: Error[] = [];
  const channel = `faults-${randomUUID()}`;
  const received: string[] = [];

  before(async () => {
    cluster = await privateCluster();
    store = new PostgresStore({ url: cluster.url, onReconnect: () => reconnects++, onError: (e) => errors.push(e) });
    peer = new PostgresStore({ url: cluster.url });
    await Promise.all([store.connect(), peer.connect()]);
    await store.subscribe(channel, (m) => received.push(m));
    await store.upsert('k', 'live', { v: 1 }, 600);
    await store.upsert('k', 'doomed', {}, 600);
  });
  after(async () => {
    await Promise.all([store?.close(), peer?.close()]);
    await cluster?.cleanup();
  });

  /**
   * Every method of the Store, each timed; all must reject with StoreUnavailableError. Writes go to
   * other records than 'live': a paused server still runs what it had received once it resumes
   * (the client gave up, the statement was sent), as any database would.
   */
  async function everyMethodFails(what: string, diagnostic: (m: string) => void): Promise<void> {
    const calls: Record<string, () => Promise<unknown>> = {
      upsert: () => store.upsert('k', 'x', {}, 60),
      insert: () => store.insert('k', 'y', {}),
      find: () => store.find('k', 'live'),
      consume: () => store.consume('k', 'doomed'),
      consumeAndPut: () => store.consumeAndPut('k', 'doomed', { kind: 'k', id: 'next', payload: {} }),
      destroy: () => store.destroy('k', 'doomed'),
      list: () => store.list('k'),
      scan: async () => { for await (const r of store.scan('k')) void r; },
      increment: () => store.increment('k', 'n', 1),
      purgeExpired: () => store.purgeExpired(),
      publish: () => store.publish(channel, 'lost'),
      subscribe: () => store.subscribe(`new-${randomUUID()}`, () => {}),
      ping: () => store.ping(),
    };
    const outcomes = await Promise.all(Object.entries(calls).map(async ([name, call]) => {
      const t0 = performance.now();
      try {
        await call();
        return { name, ms: performance.now() - t0, err: undefined };
      } catch (err) {
        return { name, ms: performance.now() - t0, err };
      }
    }));
    for (const o of outcomes) {
      assert.ok(o.err instanceof StoreUnavailableError, `${what}: ${o.name} ${o.err === undefined ? 'succeeded' : `rejected with ${String(o.err)}`}`);
      // A correctness bound (no hang, no waiting on a retry queue), not a speed goal: about 1 s expected.
      assert.ok(o.ms < 3000, `${what}: ${o.name} took ${o.ms.toFixed(0)} ms`);
    }
    diagnostic(`${what}: every method rejected with StoreUnavailableError, slowest ${Math.max(...outcomes.map((o) => o.ms)).toFixed(0)} ms `
      + `(${outcomes.map((o) => `${o.name} ${o.ms.toFixed(0)}`).join(', ')})`);
  }

  /** After the server is back: the same instances work, and the listener hears again. */
  async function worksAgain(what: string, diagnostic: (m: string) => void, reconnectsBefore: number): Promise<void> {
    const t0 = performance.now();
    await store.ping();
    assert.deepEqual((await store.find('k', 'live'))?.payload, { v: 1 }, `${what}: data kept`);
    await store.upsert('k', 'after', { ok: true });
    assert.deepEqual(await peer.find('k', 'after'), { payload: { ok: true } });
    await within(5000, `${what}: the listener reconnects`, () => reconnects > reconnectsBefore);
    diagnostic(`${what}: listener back ${(performance.now() - t0).toFixed(0)} ms after the server`);
    const count = received.length;
    await peer.publish(channel, `after ${what}`);
    await within(1000, `${what}: a message after the reconnection`, () => received.length > count);
    assert.equal(received.at(-1), `after ${what}`);
  }

  it('killed (kill -9): every method rejects with StoreUnavailableError, fast; restarted, the same store works again', async (t) => {
    const reconnectsBefore = reconnects;
    await cluster.kill();
    await everyMethodFails('server killed', (m) => t.diagnostic(m));
    assert.ok(errors.length > 0, 'the lost connections were reported (and did not crash the process)');
    await cluster.start();
    await worksAgain('restart', (m) => t.diagnostic(m), reconnectsBefore);
  });

  it('paused (SIGSTOP, nothing answers): every method rejects with StoreUnavailableError within the command timeout; resumed, the same store works again', async (t) => {
    const reconnectsBefore = reconnects;
    cluster.pause();
    const pausedAt = performance.now();
    try {
      await everyMethodFails('server paused', (m) => t.diagnostic(m));
      // Long enough for the listener's liveness check (every 1 s, 1 s timeout) to give up on it too.
      await sleep(3500 - (performance.now() - pausedAt));
    } finally {
      cluster.resume();
    }
    await worksAgain('resume', (m) => t.diagnostic(m), reconnectsBefore);
  });

  it('a listener whose backend stops answering (a silent loss) is replaced, and the gap is reported', async (t) => {
    const reconnectsBefore = reconnects;
    const [backend] = await rows<{ pid: number }>(cluster.url,
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'mimir-auth-hub listener' ORDER BY backend_start DESC LIMIT 1");
    assert.ok(backend, 'the listener backend is found');
    process.kill(backend.pid, 'SIGSTOP');
    try {
      const took = await within(5000, 'the silent loss is found and the listener replaced', () => reconnects > reconnectsBefore);
      t.diagnostic(`silent listener loss found and replaced in ${took.toFixed(0)} ms`);
      const count = received.length;
      await peer.publish(channel, 'after a silent loss');
      await within(1000, 'a message after the replacement', () => received.length > count);
    } finally {
      process.kill(backend.pid, 'SIGCONT');
    }
  });
});

/** Guards the helper itself: pg errors never leak out of the store as they are. */
describe('PostgreSQL store: errors', () => {
  it('an unreachable server is a StoreUnavailableError, never the driver\'s error', async () => {
    const store = new PostgresStore({ url: 'postgres://nobody@127.0.0.1:1/none' });
    try {
      await assert.rejects(store.find('k', 'x'), (err: Error) => {
        assert.ok(err instanceof StoreUnavailableError);
        assert.ok(!(err instanceof pg.DatabaseError));
        return true;
      });
    } finally {
      await store.close();
    }
  });
});
