/**
 * An instance meeting a token signed with a key another instance just rotated in verifies it, even
 * when its own reload of the key set was already under way and had read the store before the key
 * was written (a heartbeat's resync, on a busy Redis Cluster holding many keys: the clean-clone
 * suite failed "a signing key rotated on A is honoured by B, at once" that way, 401). It waited for
 * that reload, found no key, and refused to read the store again within the second. Now it reads
 * again (still at most once a second), and a reload that began first never replaces the key set of
 * one that began after it.
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

/** `store`, whose next list() reads at once but answers only when `release` is called: a read of the store as it was. */
function delayedList(store: Store): { store: Store; hold(): { release(): void; read: Promise<void> } } {
  let held: { gate: Promise<void>; read: () => void } | undefined;
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'list' && held) {
        const { gate, read } = held;
        held = undefined;
        return async (kind: string) => {
          const rows = await target.list(kind);
          read();
          await gate;
          return rows;
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    store: wrapped,
    hold() {
      let release!: () => void;
      let read!: () => void;
      const gate = new Promise<void>((r) => { release = r; });
      const wasRead = new Promise<void>((r) => { read = r; });
      held = { gate, read };
      return { release, read: wasRead };
    },
  };
}

describe('the key set reloaded while another instance rotates', () => {
  let dir: string;
  let config: Config;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mimir-reload-race-'));
    config = loadConfig({ MIMIR_DATA_DIR: dir, MIMIR_JWT_ALGORITHM: 'ES256', MIMIR_JWT_SECRET: `reload-race-${randomBytes(24).toString('hex')}` }, { dotenv: false });
    store = await createStore({ kind: 'sqlite', sqlitePath: join(dir, 'hub.db') });
  });
  after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });

  it('a token of the new key is verified although the reload under way read the store before the key was written', async () => {
    const a = await KeyRing.open(store, config);
    const slow = delayedList(store);
    const b = await KeyRing.open(slow.store, config);
    await new Promise((r) => setTimeout(r, 1100)); // B's opening reload is over a second old
    const stale = slow.hold();
    const underWay = b.reload();
    await stale.read; // B has read the key set: the rotation comes after
    const rotated = await a.rotate();
    const found = b.refreshForUnknownKid(rotated.kid);
    stale.release();
    await underWay;
    assert.equal(await found, true, 'B found the key A rotated in');
    assert.ok(b.verificationKey(rotated.kid));
  });

  it('a reload that began first and ends last does not put back the key set without the new key', async () => {
    const a = await KeyRing.open(store, config);
    const slow = delayedList(store);
    const b = await KeyRing.open(slow.store, config);
    const stale = slow.hold();
    const first = b.reload();
    await stale.read;
    const rotated = await a.rotate();
    await b.reload(); // told of the rotation: reads the store with the new key
    assert.ok(b.verificationKey(rotated.kid));
    stale.release();
    await first;
    assert.ok(b.verificationKey(rotated.kid), 'the older reload, ending last, did not replace the newer key set');
    assert.equal(b.currentKid, rotated.kid);
  });
});
