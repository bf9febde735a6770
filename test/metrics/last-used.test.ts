import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKeys } from '../../src/api-keys/index.ts';
import { ServiceAccounts } from '../../src/service-accounts/index.ts';
import { MemoryStore } from '../../src/storage/memory.ts';

/** A store that remembers which kinds were written. */
function recordingStore() {
  const store = new MemoryStore();
  const writes: string[] = [];
  const upsert = store.upsert.bind(store);
  store.upsert = async (kind, id, payload, ttl) => { writes.push(kind); return upsert(kind, id, payload, ttl); };
  return { store, writes };
}

describe('last use is recorded without rewriting the credential (regression: a revocation undone by a concurrent last-use write)', () => {
  it('API keys: touch writes only a last-use record, and a revoked key stays revoked', async () => {
    const { store, writes } = recordingStore();
    const keys = new ApiKeys(store);
    const { key, record } = await keys.create({ name: 'k', roles: [] });
    const seen = await keys.verify(key);
    assert.ok(seen);
    await keys.revoke(record.id);
    writes.length = 0;
    await keys.touch(seen); // the stale record another instance still holds
    assert.deepEqual(writes, ['last_used']);
    assert.equal(await keys.verify(key), null);
    const listed = (await keys.list()).find((k) => k.id === record.id)!;
    assert.equal(listed.status, 'revoked');
    assert.equal(typeof listed.lastUsedAt, 'number');
  });

  it('service accounts: touch writes only a last-use record, and a disabled account stays disabled', async () => {
    const { store, writes } = recordingStore();
    const accounts = new ServiceAccounts(store);
    const { clientSecret } = await accounts.create({ clientId: 'svc', roles: [] });
    const seen = await accounts.authenticate('svc', clientSecret);
    assert.ok(seen);
    await accounts.setDisabled('svc', true);
    writes.length = 0;
    await accounts.touch(seen);
    assert.deepEqual(writes, ['last_used']);
    assert.equal(await accounts.authenticate('svc', clientSecret), null);
    const listed = (await accounts.list()).find((a) => a.clientId === 'svc')!;
    assert.equal(listed.disabled, true);
    assert.equal(typeof listed.lastUsedAt, 'number');
  });
});
