/**
 * Attacker review, L2: the client metadata document allowlist refuses a wildcard over a whole
 * top-level domain (`*.com` is every .com host) and a bare `*`, naming the entry; `*.example.com`
 * is accepted. Over HTTP, through the admin API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliActor } from '../../src/admin/service.ts';
import { startHub } from '../helpers/hub.ts';

describe('CIMD allowlist wildcards (attacker review L2)', () => {
  let hub: Awaited<ReturnType<typeof startHub>>;
  let key: string;
  const put = async (hosts: string[]) => {
    const res = await fetch(`${hub.url}/auth/admin/cimd-allowlist`, { method: 'PUT', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ hosts }) });
    return { status: res.status, body: await res.json() as any };
  };
  before(async () => {
    hub = await startHub({ env: { MIMIR_TOKEN_STORAGE: 'sqlite' } });
    key = (await hub.hub.admin.createApiKey(cliActor('cimd-test'), { name: 'admin', roles: ['admin'] })).key;
  });
  after(async () => {
    await hub?.close();
  });

  it('refuses *.com, *.io (with a port too) and * with 400 naming the entry; accepts *.example.com', async () => {
    for (const [entry, index] of [['*.com', 1], ['*.io:443', 1], ['*', 1], ['*.IO', 1]] as const) {
      const res = await put(['tools.example.com', entry]);
      assert.equal(res.status, 400, entry);
      assert.equal(res.body.error, 'invalid_request');
      assert.match(res.body.error_description, new RegExp(`^hosts\\.${index}: `), res.body.error_description);
      if (entry !== '*') assert.ok(res.body.error_description.includes(`"${entry.toLowerCase()}"`), res.body.error_description);
    }
    const got = await fetch(`${hub.url}/auth/admin/cimd-allowlist`, { headers: { 'x-api-key': key } });
    assert.deepEqual((await got.json() as any).hosts, [], 'nothing was saved');
    const ok = await put(['*.example.com', 'tools.example.io', '*.apps.example.io:8443']);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.hosts, ['*.apps.example.io:8443', '*.example.com', 'tools.example.io'].sort());
  });
});
