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
import { createAudit, TOO_DEEP } from '../../src/audit/index.ts';
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

  it('a credential nested deeper than scrub reads is never written: the log line and the stored event say "[too deep]"', async () => {
    const file = join(dir, 'deep.log');
    const audit = createAudit({ audit: { enabled: true, destination: 'file', file, level: 'info' } } as unknown as Config);
    const store = new SqliteStore(join(dir, 'deep.db'));
    const log = new AuditStore(store, { retentionDays: 1, flushMs: 3_600_000 });
    audit.observe((e) => log.record(e));
    let nested: Record<string, unknown> = { note: API_KEY, client_secret: 'hunter2-hunter2' };
    for (let i = 0; i < 12; i++) nested = { level: nested };
    audit.record({ type: 'admin', outcome: 'success', action: 'deep', detail: nested, shallow: { client_secret: 'x' } });
    await audit.flush();
    await log.flush();
    const text = readFileSync(file, 'utf8');
    const stored = JSON.stringify((await store.list(AUDIT_EVENT_KIND)).map((r) => r.payload));
    await log.close();
    await store.close();
    for (const written of [text, stored]) {
      assert.ok(!written.includes(API_KEY) && !written.includes('hunter2'), `a nested credential was written: ${written}`);
      assert.ok(written.includes(TOO_DEEP), written);
      assert.match(written, /"client_secret":"\[redacted\]"/, 'shallow fields are still scrubbed field by field');
    }
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

  it('record() never throws, whatever a field of the coalescing key holds (a BigInt, a cycle): that event is stored on its own or left out, the others are stored', async () => {
    const store = new SqliteStore(join(dir, 'odd-key.db'));
    const log = new AuditStore(store, { retentionDays: 1, flushMs: 3_600_000 });
    const cycle: Record<string, unknown> = { name: 'x' };
    cycle.self = cycle;
    const odd = [
      { type: 'introspection', outcome: 'success', active: 1n, client: 'rs', ip: '10.0.0.1' },
      { type: 'api_key_used', outcome: 'success', client: 'k1', ip: cycle },
      { type: 'access_denied', outcome: 'failure', reason: 'forbidden', ip: '10.0.0.1', principal: { sub: cycle, auth_method: 'jwt' } },
    ] as unknown as Parameters<AuditStore['record']>[0][];
    try {
      for (const event of odd) assert.doesNotThrow(() => log.record(event), `record(${event.type}) threw`);
      for (let i = 0; i < 3; i++) log.record({ type: 'introspection', outcome: 'success', active: true, client: 'rs', ip: '10.0.0.1' });
      await log.flush().catch(() => undefined); // the BigInt one cannot be written: reported, the rest written
      const kept = (await store.list<{ type: string; details: { count?: number } }>(AUDIT_EVENT_KIND)).map((r) => `${r.payload.type} ${r.payload.details.count ?? 1}`).sort();
      assert.deepEqual(kept, ['access_denied 1', 'api_key_used 1', 'introspection 3']);
    } finally {
      await log.close();
      await store.close();
    }
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
