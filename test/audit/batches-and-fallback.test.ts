/**
 * Found by the attacker review of issue 20's performance changes: what an unserializable event or
 * a shutdown mid-batch must not cost the audit trail, on the real parts (the audit log's line
 * writer, AuditStore over SQLite).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAudit } from '../../src/audit/index.ts';
import { AUDIT_EVENT_KIND, AuditStore } from '../../src/audit/store.ts';
import type { Config } from '../../src/config/index.ts';
import { SqliteStore } from '../../src/storage/index.ts';

const API_KEY = `mimir_0123456789abcdef_${'A'.repeat(43)}`;

describe('audit log line and audit store batches under faults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-audit-faults-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the fallback line of an unserializable event still redacts a token-shaped reason and keeps who did it', async () => {
    const file = join(dir, 'audit.log');
    const audit = createAudit({ audit: { enabled: true, destination: 'file', file, level: 'info' } } as unknown as Config);
    audit.record({ type: 'authentication_failed', outcome: 'failure', reason: API_KEY, principal: { sub: 'user:alice', auth_method: 'jwt' }, ip: '203.0.113.9', n: 1n });
    await audit.flush();
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(API_KEY), `an API key reached the audit log: ${text}`);
    const line = JSON.parse(text) as { principal?: { sub?: string }; ip?: string };
    assert.equal(line.principal?.sub, 'user:alice');
    assert.equal(line.ip, '203.0.113.9');
  });

  it('an event field named level, time or log never stands in for the line\'s own', async () => {
    const file = join(dir, 'fields.log');
    const audit = createAudit({ audit: { enabled: true, destination: 'file', file, level: 'info' } } as unknown as Config);
    audit.record({ type: 'admin', outcome: 'success', level: 10, time: 'then', log: 'other' });
    await audit.flush();
    const line = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.equal(line.level, 30);
    assert.notEqual(line.time, 'then');
    assert.equal(line.log, 'audit');
    assert.deepEqual(Object.keys(line).slice(0, 3), ['level', 'time', 'log']);
  });

  it('one event the store cannot serialize does not lose the rest of its batch (SQLite upsertMany)', async () => {
    const store = new SqliteStore(join(dir, 'bad-record.db'));
    const log = new AuditStore(store, { retentionDays: 1, flushMs: 3_600_000 });
    for (let i = 0; i < 10; i++) log.record({ type: 'login', outcome: 'success', principal: { sub: `user:${i}`, auth_method: 'session' } });
    log.record({ type: 'admin', outcome: 'success', action: 'odd', n: 1n });
    await log.flush().catch(() => undefined);
    const kept = (await store.list(AUDIT_EVENT_KIND)).length;
    await log.close();
    await store.close();
    assert.equal(kept, 10, 'the ten serializable events of the batch were lost with the one that is not');
  });

  it('close() waits for a flush under way: a batch over 500 events is not cut at shutdown (hub.close order)', async () => {
    const file = join(dir, 'shutdown.db');
    const store = new SqliteStore(file);
    const log = new AuditStore(store, { retentionDays: 1, flushMs: 3_600_000 });
    for (let i = 0; i < 1200; i++) log.record({ type: 'login', outcome: 'success', principal: { sub: `user:${i}`, auth_method: 'session' } });
    const inFlight = log.flush().catch(() => undefined); // the timer's flush, under way when the hub stops
    await log.close(); // as hub.close(): auditLog.close(), then store.close()
    await store.close();
    await inFlight;
    const reopened = new SqliteStore(file);
    const kept = (await reopened.list(AUDIT_EVENT_KIND)).length;
    await reopened.close();
    assert.equal(kept, 1200);
  });
});
