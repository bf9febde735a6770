/**
 * From an attacker's review of the SQLite store's remembered rows (6fb9026, SqliteStore #found): the rows find keeps are bounded in number (4096), not in
 * bytes. A dynamically registered client (open by default, MIMIR_ENABLE_DYNAMIC_CLIENT_REGISTRATION)
 * may carry up to ~1 MiB of metadata (private_key_jwt `jwks`: ten keys, members unchecked; the route
 * takes a 1 MiB JSON body), and every /auth/authorize or /auth/token naming it runs
 * ClientRegistry.get -> store.find, which now keeps the row's payload string. 4096 such clients pin
 * ~4 GiB of heap: the server dies of heap exhaustion. Before the change a find kept nothing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SqliteStore } from '../../src/storage/sqlite.ts';
import { ClientRegistry } from '../../src/oauth/clients/registry.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed; };

describe('SqliteStore.find keeps what it remembers bounded in bytes', () => {
  it('finding large client registrations does not pin their payloads in memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-found-mem-'));
    const store = new SqliteStore(join(dir, 'store.db'));
    try {
      const registry = new ClientRegistry(store, { developmentMode: false });
      // What an anonymous caller may register: ten public keys, each padded with an extra member.
      const pad = 'A'.repeat(100 * 1024);
      const metadata = {
        redirect_uris: ['https://attacker.example/cb'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: Array.from({ length: 10 }, (_, i) => ({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: String(i), pad })) },
      };
      const ids: string[] = [];
      for (let i = 0; i < 64; i++) ids.push((await registry.register(metadata)).client.client_id);
      const before = heap();
      for (const id of ids) assert.equal((await registry.get(id)).client_id, id);
      const retained = heap() - before;
      // 64 clients of ~1 MiB each: ~64 MiB held by #found (x64 = 4 GiB at its 4096-row bound).
      assert.ok(retained < 16 * 1024 * 1024, `finding 64 clients of ~1 MiB retained ${(retained / 2 ** 20).toFixed(1)} MiB of heap`);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
