/**
 * The revocation contact (src/revocation/contact.ts) on the real stores: what counts as a lost
 * message and what does not. Heartbeats go out the way revocations do (the store's publish) and
 * come back through the subscription; a hole in their sequence is a loss only if it stays open,
 * and a subscription that comes back after a loss is one even when no heartbeat fell in it.
 */
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RevocationContact } from '../../src/revocation/contact.ts';
import { PostgresStore } from '../../src/storage/postgres.ts';
import { RedisStore } from '../../src/storage/redis.ts';
import type { Store } from '../../src/storage/adapter.ts';
import { newRedisPrefix, REDIS_URL } from '../helpers/hub.ts';
import { admin, freshDatabase, POSTGRES_URL, privateCluster, type FreshDatabase, type PrivateCluster } from '../helpers/postgres.ts';
import { throughProxy } from '../helpers/tcp-proxy.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A contact on `store` counting its resyncs and noting whether it ever refused (not fresh) while sampled every 20 ms. */
async function watchedContact(store: Store, maxStalenessMs: number) {
  let resyncs = 0;
  const contact = new RevocationContact(store, { maxStalenessMs, resync: async () => { resyncs++; } });
  await contact.start();
  let refusedAt: number | undefined;
  const sampler = setInterval(() => { if (!contact.fresh) refusedAt ??= performance.now(); }, 20);
  return {
    contact,
    get resyncs() { return resyncs; },
    get refused() { return refusedAt !== undefined; },
    close() { clearInterval(sampler); contact.close(); },
  };
}

/**
 * A contact with a heartbeat a second on `store`: `lose()` makes the subscription connection drop
 * and come back, most often between two heartbeats (none of them lost); the contact must resync
 * all the same, refusing until it has, and be fresh after.
 */
async function expectResyncAfterLoss(store: PostgresStore | RedisStore, lose: () => Promise<void>): Promise<void> {
  await store.connect();
  const w = await watchedContact(store, 40_000);
  try {
    await sleep(1200);
    assert.equal(w.resyncs, 0);
    await lose();
    for (let i = 0; i < 150 && w.resyncs === 0; i++) await sleep(20);
    assert.ok(w.resyncs >= 1, 'resynced after the subscription came back (at the next heartbeat, within about a second)');
    assert.equal(w.refused, true, 'answering stopped until then');
    for (let i = 0; i < 100 && !w.contact.fresh; i++) await sleep(20);
    assert.equal(w.contact.fresh, true, 'and fresh again after');
  } finally {
    w.close();
  }
}

describe('revocation contact on PostgreSQL', () => {
  let db: FreshDatabase;
  before(async () => { db = await freshDatabase(); });
  after(async () => db?.drop());

  it('heartbeats held by a short silent partition, run out of order when it heals or failed to publish, cost no resync and no 503', async (t) => {
    const { proxy, url } = await throughProxy(db.url, 5432);
    // No listener check: the partition holds the listener (a check would replace it, a real loss).
    const store = new PostgresStore({ url, listenerCheckMs: 0, commandTimeoutMs: 10_000 });
    const seen: number[][] = [];
    let w: Awaited<ReturnType<typeof watchedContact>> | undefined;
    try {
      await store.connect();
      // The same thing the heartbeat does, visible: sequence numbers through the pool.
      const order: number[] = [];
      await store.subscribe('order-probe', (m) => order.push(Number(m)));
      w = await watchedContact(store, 6000); // a heartbeat a second
      await sleep(1200);
      for (let cycle = 0; cycle < 4; cycle++) {
        order.length = 0;
        proxy.blackhole();
        for (let i = 1; i <= 6; i++) { void store.publish('order-probe', String(i)).catch(() => undefined); await sleep(350); }
        await proxy.pass();
        await sleep(800);
        seen.push([...order]);
      }
      // Held on a pooled connection: run when it heals, in any order; waiting for a new connection: failed (connect timeout).
      t.diagnostic(`six publishes in each partition came back as: ${seen.map((o) => o.join(' ')).join(' | ')}`);
      assert.ok(seen.some((o) => o.length > 0), 'what was held was delivered after healing');
      assert.equal(w.resyncs, 0, 'no heartbeat sent was lost (those whose publish failed tell nothing), so no resync');
      assert.equal(w.refused, false, 'and the hub never stopped answering (each partition was shorter than the staleness bound)');
    } finally {
      w?.close();
      await proxy.pass();
      await store.close();
      await proxy.close();
    }
  });

  it('a listener that is back after a loss, between two heartbeats, is a loss: resync, and 503 until it is done', async () => {
    const store = new PostgresStore({ url: db.url });
    try {
      await expectResyncAfterLoss(store, async () => {
        const ended = await admin("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mimir-auth-hub listener'", [], db.url);
        assert.ok(ended.rows.length >= 1);
      });
    } finally {
      await store.close();
    }
  });

  describe('listener and pool on different servers (a cut-over to a new primary while the old one runs)', () => {
    let oldPrimary: PrivateCluster;
    before(async () => {
      oldPrimary = await privateCluster();
      await admin(`CREATE DATABASE ${db.name}`, [], oldPrimary.url);
    });
    after(async () => oldPrimary?.cleanup());

    it('the heartbeat goes out through the pool, so what the other hubs publish not reaching this listener makes the contact stale', async () => {
      const proxy = await switchableProxy(oldPrimary.port);
      const viaProxy = new URL(db.url);
      viaProxy.port = String(proxy.port);
      const a = new PostgresStore({ url: viaProxy.toString(), listenerCheckMs: 200 });
      const b = new PostgresStore({ url: db.url }); // another hub, on the new primary
      let w: Awaited<ReturnType<typeof watchedContact>> | undefined;
      try {
        await Promise.all([a.connect(), b.connect()]);
        w = await watchedContact(a, 800);
        const heard: string[] = [];
        await a.subscribe('refresh-family-revoked', (m) => heard.push(m));
        await sleep(300);
        assert.equal(w.contact.fresh, true, 'fresh before the cut-over');
        // New connections reach the new primary; the pooled ones on the old server end (an idle
        // timeout, a reset), the listener's, kept busy by its check, does not.
        proxy.target = Number(new URL(POSTGRES_URL).port || 5432);
        await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mimir-auth-hub' AND pid <> pg_backend_pid()", [], oldPrimary.url.replace(/\/postgres$/, `/${db.name}`));
        await sleep(100);
        await b.upsert('probe', 'where', { server: 'new' });
        assert.deepEqual((await a.find('probe', 'where'))?.payload, { server: 'new' }, 'A now reads the new primary');
        await b.publish('refresh-family-revoked', 'family-1');
        await sleep(2000);
        assert.ok(!heard.includes('family-1'), 'the revocation did not reach A');
        assert.equal(w.contact.fresh, false, 'and A knows it cannot vouch for its revocations');
      } finally {
        w?.close();
        await Promise.all([a.close(), b.close()]);
        await proxy.close();
      }
    });
  });
});

describe('revocation contact on Redis', () => {
  it('a subscriber that reconnects between two heartbeats is a loss: resync, and 503 until it is done', async () => {
    const { proxy, url } = await throughProxy(REDIS_URL, 6379);
    const store = new RedisStore({ url, keyPrefix: newRedisPrefix() });
    try {
      await expectResyncAfterLoss(store, async () => {
        await proxy.cut();
        await proxy.pass(); // back at once: ioredis reconnects within ~100 ms, usually before the next heartbeat
      });
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});

/** A TCP forwarder whose target port can be changed: connections made after the change go there. */
async function switchableProxy(targetPort: number): Promise<{ port: number; target: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { target: targetPort };
  const server: Server = createServer((client) => {
    const upstream = createConnection({ port: state.target, host: '127.0.0.1' });
    for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get target() { return state.target; },
    set target(p: number) { state.target = p; },
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
