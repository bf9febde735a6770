/**
 * Issue 21, item 3: the audit log is kept in the store as well as written to its destination, so
 * every instance's events are there for the admin console — on SQLite, Redis and PostgreSQL alike,
 * through the Store contract; older than MIMIR_AUDIT_RETENTION_DAYS, the cleanup job purges them
 * (SQLite, PostgreSQL) or Redis expires them; what is stored is scrubbed like the log line.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_EVENT_KIND, AuditStore, QUERY_CAP } from '../../src/audit/store.ts';
import { runCleanup } from '../../src/jobs/cleanup.ts';
import { MemoryStore, SqliteStore, type Store, type StoredRecord } from '../../src/storage/index.ts';
import { PostgresStore } from '../../src/storage/postgres.ts';
import { RedisStore } from '../../src/storage/redis.ts';
import { cliActor } from '../../src/admin/service.ts';
import { newRedisPrefix, REDIS_URL, startHub } from '../helpers/hub.ts';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.ts';

const DAY = 86_400_000;

describe('audit events kept in the store (issue 21, item 3)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-audit-store-'));
  const databases: FreshDatabase[] = [];
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    for (const db of databases) await db.drop();
  });

  /** Two stores over the same data (two hub instances), on one clock. */
  async function open(kind: 'sqlite' | 'redis' | 'postgres', now: () => number): Promise<[Store, Store]> {
    if (kind === 'sqlite') {
      const file = join(dir, `${Math.random().toString(36).slice(2)}.db`);
      return [new SqliteStore(file, { now }), new SqliteStore(file, { now })];
    }
    if (kind === 'redis') {
      const keyPrefix = newRedisPrefix();
      const pair: [Store, Store] = [new RedisStore({ url: REDIS_URL, keyPrefix, now }), new RedisStore({ url: REDIS_URL, keyPrefix, now })];
      for (const s of pair) await (s as RedisStore).connect();
      return pair;
    }
    const db = await freshDatabase();
    databases.push(db);
    const a = new PostgresStore({ url: db.url, now });
    await a.ping();
    return [a, new PostgresStore({ url: db.url, now })];
  }

  for (const kind of ['sqlite', 'redis', 'postgres'] as const) {
    it(`${kind}: every instance's events, filtered, newest first, paginated; gone after the retention`, async () => {
      let clock = Date.UTC(2026, 11, 6, 12, 0, 0);
      const now = () => clock;
      const [storeA, storeB] = await open(kind, now);
      const a = new AuditStore(storeA, { retentionDays: 7, now, flushMs: 60_000 });
      const b = new AuditStore(storeB, { retentionDays: 7, now, flushMs: 60_000 });
      try {
        a.record({ type: 'login', outcome: 'success', principal: { sub: 'alice', auth_method: 'session', provider: 'corp' }, ip: '10.0.0.1', request_id: 'r1' });
        clock += 1000;
        b.record({ type: 'access_denied', outcome: 'failure', reason: 'insufficient_scope', permission: 'admin:manage', principal: { sub: 'bob', auth_method: 'session' } });
        clock += 1000;
        // A credential that slipped into an event is stored redacted, as the log line is.
        b.record({ type: 'admin', outcome: 'success', action: 'api_key_created', target: 'k1', client_secret: 'hunter2', principal: { sub: 'alice', auth_method: 'session' } });
        for (let i = 0; i < 5; i++) {
          clock += 10;
          a.record({ type: 'authentication_failed', outcome: 'failure', reason: 'invalid_token', ip: `10.0.1.${i}` });
        }
        await a.flush();
        await b.flush();

        // Instance A reads B's events too: they are in the shared store.
        const all = await a.query({});
        assert.equal(all.total, 8);
        assert.deepEqual(all.events.map((e) => e.time), [...all.events.map((e) => e.time)].sort((x, y) => y - x), 'newest first');
        assert.equal(all.events.at(-1)!.type, 'login');
        assert.deepEqual(all.events.at(-1)!.principal, { sub: 'alice', auth_method: 'session', provider: 'corp' });
        assert.equal(all.events.at(-1)!.ip, '10.0.0.1');

        assert.deepEqual((await a.query({ principal: 'ALI' })).events.map((e) => e.type), ['admin', 'login'], 'by principal (part, any case)');
        assert.deepEqual((await a.query({ type: 'access_denied' })).events.map((e) => e.details.permission), ['admin:manage'], 'by event');
        assert.equal((await a.query({ outcome: 'failure' })).total, 6, 'by outcome');
        const start = Date.UTC(2026, 11, 6, 12, 0, 0);
        assert.deepEqual((await a.query({ from: start + 500, to: start + 1500 })).events.map((e) => e.type), ['access_denied'], 'by time');
        const secret = (await a.query({ type: 'admin' })).events[0]!;
        assert.equal(secret.details.client_secret, '[redacted]');
        assert.equal(secret.details.action, 'api_key_created');

        const page1 = await a.query({ perPage: 3 });
        const page3 = await a.query({ perPage: 3, page: 3 });
        assert.deepEqual([page1.pages, page1.events.length, page3.page, page3.events.length], [3, 3, 3, 2]);
        assert.equal(page3.events.at(-1)!.type, 'login', 'the last page holds the oldest');
        assert.equal((await a.query({ perPage: 3, page: 99 })).page, 3, 'a page past the end is the last');

        const stored = await storeA.list(AUDIT_EVENT_KIND);
        for (const r of stored) {
          assert.ok(r.expiresAt !== undefined, 'every stored event expires');
          // Redis keeps its own clock for the TTL: within the retention from now either way.
          const left = r.expiresAt! * 1000 - (kind === 'redis' ? Date.now() : clock);
          assert.ok(left > 7 * DAY - 60_000 && left <= 7 * DAY + 1000, `expires after the retention (${left} ms)`);
        }

        if (kind !== 'redis') {
          // Past the retention: no longer read, and the cleanup job removes them.
          clock += 7 * DAY + 60_000;
          assert.equal((await a.query({})).total, 0);
          const report = await runCleanup(storeA);
          assert.equal(report.removed[AUDIT_EVENT_KIND], 8);
        }
      } finally {
        await a.close();
        await b.close();
        await storeA.close();
        await storeB.close();
      }
    });
  }
  for (const kind of ['sqlite', 'redis', 'postgres'] as const) {
    it(`${kind}: a query reads every stored event, page after page of the store's scan: the newest first, each once`, async () => {
      let clock = Date.UTC(2026, 11, 6, 12, 0, 0);
      const now = () => clock;
      const [store, peer] = await open(kind, now);
      const log = new AuditStore(store, { retentionDays: 7, now, flushMs: 60_000 });
      try {
        const n = 1234; // more than two of the store's scan pages
        for (let i = 0; i < n; i++) {
          clock += 1;
          log.record({ type: i % 2 ? 'admin' : 'login', outcome: 'success', action: 'api_key_created', target: `k${i}` });
        }
        await log.flush();
        const first = await log.query({ perPage: 500 });
        assert.deepEqual([first.total, first.pages, first.capped], [n, 3, undefined]);
        assert.equal(first.events[0]!.details.target, `k${n - 1}`, 'newest first');
        const last = await log.query({ perPage: 500, page: 3 });
        assert.deepEqual(last.events.map((e) => e.details.target), Array.from({ length: n - 1000 }, (_, i) => `k${n - 1001 - i}`));
        const admins = await log.query({ type: 'admin', perPage: 500 });
        assert.equal(admins.total, n / 2);
        assert.equal(new Set(admins.events.map((e) => e.details.target)).size, 500);
      } finally {
        await log.close();
        await store.close();
        await peer.close();
      }
    });
  }

  it('an event the scan yields more than once (Redis SCAN while the keyspace is resized) is counted and shown once, capped or not', async () => {
    let clock = Date.UTC(2026, 11, 6, 12, 0, 0);
    const store = new MemoryStore({ now: () => clock });
    // The real store's scan, each run of 300 records yielded again after the next (repeats apart, as SCAN's are).
    const scan = store.scan.bind(store);
    store.scan = <T>(kind: string) => (async function* () {
      let previous: Array<{ id: string } & StoredRecord<T>> = [];
      let run: typeof previous = [];
      for await (const r of scan<T>(kind)) {
        yield r;
        run.push(r);
        if (run.length === 300) {
          yield* previous;
          [previous, run] = [run, []];
        }
      }
      yield* previous;
      yield* run;
    })();
    const log = new AuditStore(store, { retentionDays: 1, now: () => clock++, flushMs: 3_600_000 });
    try {
      for (let i = 0; i < 1000; i++) log.record({ type: 'admin', outcome: 'success', action: 'api_key_created', target: `k${i}` });
      await log.flush();
      const few = await log.query({ perPage: 500 });
      assert.deepEqual([few.total, few.pages, few.capped], [1000, 2, undefined]);
      assert.deepEqual(few.events.map((e) => e.details.target), Array.from({ length: 500 }, (_, i) => `k${999 - i}`));
      for (let i = 1000; i < QUERY_CAP + 500; i++) {
        log.record({ type: 'admin', outcome: 'success', action: 'api_key_created', target: `k${i}` });
        if (i % 5000 === 4999) await log.flush();
      }
      await log.flush();
      const page = await log.query({ perPage: 500 });
      assert.deepEqual([page.total, page.capped, page.pages], [QUERY_CAP, true, QUERY_CAP / 500]);
      assert.equal(page.events[0]!.details.target, `k${QUERY_CAP + 499}`, 'newest first');
      // A repeat kept would push the oldest kept event off the end: the window is exactly k10499..k500.
      assert.deepEqual(page.events.map((e) => e.details.target), Array.from({ length: 500 }, (_, i) => `k${QUERY_CAP + 499 - i}`));
      const last = await log.query({ perPage: 500, page: page.pages });
      assert.deepEqual(last.events.map((e) => e.details.target), Array.from({ length: 500 }, (_, i) => `k${999 - i}`), 'each once, the newest QUERY_CAP');
    } finally {
      await log.close();
    }
  });

  it('the events of every request, and refused authentications, are stored one per credential (or reason) and address a batch, counted', async () => {
    const store = new SqliteStore(join(dir, 'coalesce.db'));
    const log = new AuditStore(store, { retentionDays: 1, flushMs: 60_000 });
    try {
      for (let i = 0; i < 50; i++) log.record({ type: 'api_key_used', outcome: 'success', client: 'k1', ip: '10.0.0.9', principal: { sub: 'api-key:k1', auth_method: 'api-key', client_id: 'k1' } });
      log.record({ type: 'api_key_used', outcome: 'success', client: 'k2', ip: '10.0.0.9', principal: { sub: 'api-key:k2', auth_method: 'api-key', client_id: 'k2' } });
      for (let i = 0; i < 30; i++) log.record({ type: 'authentication_failed', outcome: 'failure', reason: 'invalid_token', ip: '10.6.6.6' });
      log.record({ type: 'authentication_failed', outcome: 'failure', reason: 'invalid_request', ip: '10.6.6.6' });
      // Not coalesced: every admin change is its own event.
      for (let i = 0; i < 3; i++) log.record({ type: 'admin', outcome: 'success', action: 'api_key_created', target: `k${i}` });
      await log.flush();
      const shown = (await log.query({})).events.map((e) => `${e.type} ${e.client ?? e.reason ?? e.details.target} ${String(e.details.count ?? 1)}`).sort();
      assert.deepEqual(shown, [
        'admin k0 1', 'admin k1 1', 'admin k2 1', 'api_key_used k1 50', 'api_key_used k2 1',
        'authentication_failed invalid_request 1', 'authentication_failed invalid_token 30',
      ]);
      // The next batch starts counting afresh.
      log.record({ type: 'api_key_used', outcome: 'success', client: 'k1', ip: '10.0.0.9' });
      await log.flush();
      assert.equal((await log.query({ type: 'api_key_used' })).total, 3);
    } finally {
      await log.close();
      await store.close();
    }
  });

  it('successful introspections are stored one per caller, address and answer a batch, counted; the jti only while all were of one token', async () => {
    const store = new SqliteStore(join(dir, 'coalesce-introspection.db'));
    const log = new AuditStore(store, { retentionDays: 1, flushMs: 60_000 });
    const user = (sub: string) => ({ sub, auth_method: 'jwt' as const, provider: 'okta' });
    try {
      for (let i = 0; i < 40; i++) log.record({ type: 'introspection', outcome: 'success', active: true, jti: 'jti-one', client: 'rs-a', ip: '10.0.0.1' });
      for (let i = 0; i < 10; i++) log.record({ type: 'introspection', outcome: 'success', active: true, jti: `jti-${i}`, client: 'rs-b', ip: '10.0.0.1' });
      for (let i = 0; i < 5; i++) log.record({ type: 'introspection', outcome: 'success', active: false, client: 'rs-a', ip: '10.0.0.1' });
      log.record({ type: 'introspection', outcome: 'success', active: true, jti: 'jti-one', client: 'rs-a', ip: '10.0.0.2' });
      // Two people introspecting with their own bearer tokens (no client id) from one address: two events.
      for (let i = 0; i < 3; i++) log.record({ type: 'introspection', outcome: 'success', active: true, jti: 'jti-u', principal: user('alice'), ip: '10.0.0.3' });
      log.record({ type: 'introspection', outcome: 'success', active: true, jti: 'jti-u', principal: user('bob'), ip: '10.0.0.3' });
      // A sub that would join another's fields with the separator of a naive key is still its own.
      log.record({ type: 'introspection', outcome: 'success', active: true, principal: user('carol\n10.0.0.3'), ip: '' });
      log.record({ type: 'introspection', outcome: 'success', active: true, principal: user('carol'), ip: '10.0.0.3\n' });
      await log.flush();
      const shown = (await log.query({ type: 'introspection' })).events
        .map((e) => `${e.client ?? JSON.stringify(e.principal?.sub)} ${e.ip} ${String(e.details.active)} ${String(e.details.count ?? 1)} ${String(e.details.jti)}`).sort();
      assert.deepEqual(shown, [
        '"alice" 10.0.0.3 true 3 jti-u', '"bob" 10.0.0.3 true 1 jti-u',
        '"carol" 10.0.0.3\n true 1 undefined', '"carol\\n10.0.0.3"  true 1 undefined',
        'rs-a 10.0.0.1 false 5 undefined', 'rs-a 10.0.0.1 true 40 jti-one', 'rs-a 10.0.0.2 true 1 jti-one',
        'rs-b 10.0.0.1 true 10 undefined',
      ]);
    } finally {
      await log.close();
      await store.close();
    }
  });

  it('one sub at two IdPs, or one account by two methods, is never one stored event: the coalescing key names the provider and auth method', async () => {
    const store = new SqliteStore(join(dir, 'coalesce-provider.db'));
    const log = new AuditStore(store, { retentionDays: 1, flushMs: 60_000 });
    // IdP subs are not namespaced by provider: "12345" at one IdP is someone else than "12345" at another.
    const at = (provider: string) => ({ sub: '12345', auth_method: 'jwt' as const, client_id: 'console', provider });
    try {
      log.record({ type: 'introspection', outcome: 'success', active: true, jti: 'j1', principal: at('okta'), client: 'console', ip: '10.0.0.9' });
      for (let i = 0; i < 5; i++) log.record({ type: 'introspection', outcome: 'success', active: true, jti: 'j1', principal: at('github'), client: 'console', ip: '10.0.0.9' });
      // A service account by its secret, then by its own bearer token: the store says which.
      log.record({ type: 'introspection', outcome: 'success', active: true, principal: { sub: 'rs', auth_method: 'client', client_id: 'rs' }, client: 'rs', ip: '10.0.0.9' });
      log.record({ type: 'introspection', outcome: 'success', active: true, principal: { sub: 'rs', auth_method: 'jwt', client_id: 'rs' }, client: 'rs', ip: '10.0.0.9' });
      log.record({ type: 'access_denied', outcome: 'failure', reason: 'forbidden', principal: at('okta'), ip: '10.0.0.9' });
      log.record({ type: 'access_denied', outcome: 'failure', reason: 'forbidden', principal: at('github'), ip: '10.0.0.9' });
      await log.flush();
      const shown = (await log.query()).events
        .map((e) => `${e.type} ${e.principal?.sub}@${e.principal?.provider ?? '-'}/${e.principal?.auth_method} ${String(e.details.count ?? 1)}`).sort();
      assert.deepEqual(shown, [
        'access_denied 12345@github/jwt 1', 'access_denied 12345@okta/jwt 1',
        'introspection 12345@github/jwt 5', 'introspection 12345@okta/jwt 1',
        'introspection rs@-/client 1', 'introspection rs@-/jwt 1',
      ]);
    } finally {
      await log.close();
      await store.close();
    }
  });

  it('MIMIR_AUDIT_RETENTION_DAYS=0 keeps none in the store: the admin API says so (404), naming the variable', async () => {
    const t = await startHub({ storage: 'memory', env: { MIMIR_AUDIT_RETENTION_DAYS: '0' } });
    try {
      assert.equal(t.hub.auditLog, undefined);
      const { key } = await t.hub.admin.createApiKey(cliActor('test'), { name: 'a', roles: ['admin'] });
      const res = await fetch(`${t.url}/auth/admin/audit`, { headers: { 'x-api-key': key } });
      const body = await res.json() as Record<string, string>;
      assert.equal(res.status, 404);
      assert.match(body.error_description!, /MIMIR_AUDIT_RETENTION_DAYS=0/);
      assert.equal((await t.hub.store.list(AUDIT_EVENT_KIND)).length, 0);
    } finally {
      await t.close();
    }
  });
});
