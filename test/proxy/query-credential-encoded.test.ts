/**
 * A credential in the query under a percent-encoded name (`%61ccess_token=`, `%61pi_key=`) is
 * `access_token` / `api_key` to Mimir's query parser, which decodes names: the hub drops it as it
 * drops the plain spelling, so no credential the hub never checked reaches the upstream. Found by
 * an attacker's review; each test failed at 8f29cfc (the filter looked for "access"/"api" as written).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { signMimirJwt, startMimir, type Mimir } from '../helpers/mimir.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { RBAC_FIXTURE } from '../proxy/setup.ts';

const MIMIR_SECRET = randomBytes(32).toString('base64url');

for (const mode of ['mimir-jwt', 'none'] as const) {
  describe(`encoded credential query names (MIMIR_UPSTREAM_AUTH=${mode}, Mimir security on)`, () => {
    let mimir: Mimir;
    let t: TestHub;
    let viewer: string;
    let victim: string;
    before(async () => {
      mimir = await startMimir({ security: { jwtSecret: MIMIR_SECRET } });
      t = await startHub({
        storage: 'memory',
        env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, MIMIR_UPSTREAM_AUTH: mode, ...(mode === 'mimir-jwt' ? { MIMIR_UPSTREAM_JWT_SECRET: MIMIR_SECRET } : {}) },
      });
      viewer = (await t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
      // A token without "access"/"api" in it (the filter's shortcut looks at the whole raw query).
      do victim = await signMimirJwt(MIMIR_SECRET, { sub: 'victim', email: 'victim@example.com', roles: ['admin'], n: randomBytes(4).toString('hex') } as never);
      while (/access|api/i.test(victim));
    });
    after(async () => { await t?.close(); await mimir?.close(); });

    for (const name of ['%61ccess_token', '%61pi_key']) {
      it(`${name}=<another user's Mimir token> never reaches Mimir`, async () => {
        const before = mimir.received.length;
        const res = await rawRequest(t.url, { method: 'GET', target: `/api/nodes/types?${name}=${victim}&keep=1`, headers: [['X-API-Key', viewer]] });
        assert.equal(mimir.received.length, before + 1, `status ${res.status}`);
        const seen = mimir.received.at(-1)!;
        assert.ok(!seen.originalUrl.includes(victim), `Mimir received the unchecked credential: ${seen.originalUrl.slice(0, 60)}… (Mimir saw ${JSON.stringify(seen.identity.user)} via ${seen.identity.channel}, status ${res.status})`);
      });
    }
  });
}
