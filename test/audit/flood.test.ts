/**
 * Attacker review, H2: anonymous requests must not fill the audit store, and no audit query may
 * load all of it. A flood of bad token requests over real HTTP costs a handful of stored events
 * (with counts); an administrator's change made during the flood is stored; failures over the
 * per-address cap are dropped, counted and summed up; a query keeps only the newest 10 000.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuditStore, FAILURES_PER_IP_PER_MINUTE, QUERY_CAP } from '../../src/audit/store.ts';
import { MemoryStore } from '../../src/storage/index.ts';
import { cliActor } from '../../src/admin/service.ts';
import { startHub } from '../helpers/hub.ts';

describe('audit store under a flood (attacker review H2)', () => {
  let hub: Awaited<ReturnType<typeof startHub>>;
  before(async () => {
    hub = await startHub({ env: { MIMIR_TOKEN_STORAGE: 'sqlite' } });
  });
  after(async () => {
    await hub?.close();
  });

  it('3000 anonymous bad token requests are a handful of stored events with counts; an admin change during the flood is stored', async () => {
    const { key } = await hub.hub.admin.createApiKey(cliActor('flood-test'), { name: 'flood-admin', roles: ['admin'] });
    const log = hub.hub.auditLog!;
    await log.flush();
    const before = (await log.query({ perPage: 500 })).total;
    const N = 3000;
    let sent = 0;
    let adminStatus = 0;
    const worker = async () => {
      while (sent < N) {
        const i = sent++;
        if (i === N / 2) {
          const res = await fetch(`${hub.url}/auth/admin/api-keys`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'made-during-flood', roles: ['viewer'], expires_in: '1d' }) });
          adminStatus = res.status;
        }
        const res = await fetch(`${hub.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=x${i}` });
        assert.ok(res.status >= 400 && res.status < 500, String(res.status));
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    assert.equal(adminStatus, 201);
    await log.flush();
    const all = (await log.query({ perPage: 500 })).events;
    const failures = all.filter((e) => e.outcome === 'failure');
    assert.ok(all.length - before <= 40, `stored ${all.length - before} events for ${N} requests`);
    const counted = failures.reduce((a, e) => a + Number(e.details.count ?? 1), 0);
    assert.ok(counted >= N, `the counts add up to every refusal: ${counted}`);
    assert.ok(failures.some((e) => Number(e.details.count ?? 1) > 100), 'coalesced with a count');
    const created = all.find((e) => e.type === 'admin' && e.details.action === 'api_key_created' && e.principal?.sub === 'api-key:' + key.split('_')[1]);
    assert.ok(created, 'the admin change made during the flood is stored');
  });

  it('failures over the per-address cap are dropped, counted in the metric and summed up in one stored event; successes are not capped', async () => {
    const store = new MemoryStore();
    let clock = Date.UTC(2026, 11, 6, 12, 0, 0);
    const drops: Record<string, number> = {};
    const log = new AuditStore(store, { retentionDays: 1, now: () => clock, flushMs: 3_600_000, onDropped: (reason, n) => { drops[reason] = (drops[reason] ?? 0) + n; } });
    try {
      // Distinct reasons from one address: nothing to coalesce, so only the cap bounds them.
      for (let i = 0; i < 500; i++) log.record({ type: 'access_denied', outcome: 'failure', reason: `r${i}`, ip: '203.0.113.9' });
      for (let i = 0; i < 300; i++) log.record({ type: 'admin', outcome: 'success', action: 'api_key_created', target: `k${i}`, ip: '203.0.113.9' });
      await log.flush();
      const stored = (await log.query({ perPage: 500 }));
      const denied = stored.events.filter((e) => e.type === 'access_denied');
      assert.equal(denied.length, FAILURES_PER_IP_PER_MINUTE);
      assert.equal(stored.events.filter((e) => e.type === 'admin').length, 300, 'every admin event is stored');
      const summary = stored.events.filter((e) => e.type === 'audit_events_dropped');
      assert.equal(summary.length, 1);
      assert.deepEqual(summary[0]!.details.ips, { '203.0.113.9': 500 - FAILURES_PER_IP_PER_MINUTE });
      assert.equal(summary[0]!.details.count, 500 - FAILURES_PER_IP_PER_MINUTE);
      assert.equal(drops.ip_cap, 500 - FAILURES_PER_IP_PER_MINUTE);
      // The next minute the address may be heard again.
      clock += 60_000;
      log.record({ type: 'access_denied', outcome: 'failure', reason: 'fresh', ip: '203.0.113.9' });
      await log.flush();
      assert.equal((await log.query({ type: 'access_denied', perPage: 500 })).total, FAILURES_PER_IP_PER_MINUTE + 1);
    } finally {
      await log.close();
    }
  });

  it('a query keeps the newest 10 000 matching events and says it was capped', async () => {
    const store = new MemoryStore();
    let clock = Date.UTC(2026, 11, 6, 12, 0, 0);
    const log = new AuditStore(store, { retentionDays: 1, now: () => clock++, flushMs: 3_600_000 });
    try {
      for (let i = 0; i < QUERY_CAP + 500; i++) {
        log.record({ type: 'admin', outcome: 'success', action: 'api_key_created', target: `k${i}` });
        if (i % 5000 === 4999) await log.flush();
      }
      await log.flush();
      const page = await log.query({ perPage: 10 });
      assert.deepEqual([page.total, page.capped, page.pages], [QUERY_CAP, true, QUERY_CAP / 10]);
      assert.equal(page.events[0]!.details.target, `k${QUERY_CAP + 499}`, 'newest first');
      const last = await log.query({ perPage: 10, page: QUERY_CAP / 10 });
      assert.equal(last.events.at(-1)!.details.target, 'k500', 'the oldest kept is the 10 000th newest');
      const few = await log.query({ type: 'admin', principal: 'nobody' });
      assert.deepEqual([few.total, few.capped], [0, undefined]);
    } finally {
      await log.close();
    }
  });
});
