/**
 * Unknown `kid`s while the store cannot be read: every caller answers "unknown" once a read begun
 * after it arrived has failed, not only the one that began it. Before (0b07fa1), callers that found
 * another's failing read under way waited for it, then for the next second's read, one answered per
 * second: six concurrent lookups took up to six seconds, and a flood piled requests up. Found by an
 * attacker's review of that commit; failed before the fix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { KeyRing } from '../../src/jwt/keys.ts';
import { createStore } from '../../src/storage/index.ts';
import type { Store } from '../../src/storage/adapter.ts';

describe('unknown kids while the store is down', () => {
  let dir: string; let config: Config; let store: Store;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mimir-unknown-kid-'));
    config = loadConfig({ MIMIR_DATA_DIR: dir, MIMIR_JWT_ALGORITHM: 'ES256', MIMIR_JWT_SECRET: `rv-${randomBytes(24).toString('hex')}` }, { dotenv: false });
    store = await createStore({ kind: 'sqlite', sqlitePath: join(dir, 'hub.db') });
  });
  after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });

  it('six concurrent unknown-kid lookups are all answered by one failed read of the store', async () => {
    let down = false; let reads = 0;
    const flaky = new Proxy(store, {
      get(t, p, r) {
        if (p === 'list') return async (kind: string) => { reads += 1; if (down) throw new Error('store down'); return t.list(kind); };
        const v = Reflect.get(t, p, r) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const ring = await KeyRing.open(flaky, config);
    down = true;
    reads = 0;
    const found = await Promise.all(Array.from({ length: 6 }, (_, i) => ring.refreshForUnknownKid(`attacker-${i}`)));
    assert.deepEqual(found, Array(6).fill(false));
    // One failed read answers all six (before: one read a second until the last was answered, six).
    assert.equal(reads, 1, `${reads} store reads for six concurrent lookups`);
  });
});
