import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { newRedisPrefix, serviceAccountToken, startHub } from '../helpers/hub.ts';

const me = async (url: string, token: string) => (await fetch(`${url}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status;

describe('signing keys', () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA', 'HS256'] as const) {
    it(`${alg} tokens are issued and validated`, async () => {
      const env: Record<string, string> = { MIMIR_JWT_ALGORITHM: alg };
      if (alg === 'HS256') env.MIMIR_JWT_SECRET = 'a-test-secret-that-is-long-enough-0123456789';
      const t = await startHub({ storage: 'memory', env });
      try {
        const { token } = await serviceAccountToken(t);
        assert.equal(decodeProtectedHeader(token).alg, alg);
        assert.equal(await me(t.url, token), 200);
        const jwks = t.hub.keys.jwks().keys;
        // A shared HMAC secret is never published.
        assert.equal(jwks.length, alg === 'HS256' ? 0 : 1);
      } finally {
        await t.close();
      }
    });
  }

  it('rotation: the new key signs, the old stays published until its tokens expired, then leaves', async () => {
    let clock = Date.now();
    const t = await startHub({ storage: 'sqlite', now: () => clock, env: { MIMIR_SERVICE_ACCOUNT_TOKEN_LIFETIME: '600', MIMIR_ACCESS_TOKEN_LIFETIME: '600', MIMIR_ID_TOKEN_LIFETIME: '600' } });
    try {
      const before = await serviceAccountToken(t);
      const oldKid = t.hub.keys.currentKid;
      const rotated = await t.hub.keys.rotate();
      assert.notEqual(rotated.kid, oldKid);
      const after = await serviceAccountToken(t);
      assert.equal(decodeProtectedHeader(after.token).kid, rotated.kid);
      const kids = t.hub.keys.jwks().keys.map((k) => k.kid);
      assert.deepEqual(kids, [rotated.kid, oldKid], 'both published, the current first');
      assert.equal(await me(t.url, before.token), 200, 'a token signed before rotation still validates');
      clock += 601_000;
      assert.deepEqual(t.hub.keys.jwks().keys.map((k) => k.kid), [rotated.kid], 'the old key left after the overlap');
    } finally {
      await t.close();
    }
  });

  it('private keys are sealed at rest and the key file is 0600', async () => {
    const t = await startHub({ storage: 'sqlite' });
    try {
      const db = readFileSync(t.config.storage.sqlitePath).toString('latin1') + (() => { try { return readFileSync(`${t.config.storage.sqlitePath}-wal`).toString('latin1'); } catch { return ''; } })();
      assert.ok(!db.includes('PRIVATE KEY'));
      assert.ok(db.includes('"privateSealed":"v1.'));
      assert.equal(statSync(join(t.dataDir, 'signing-keys.key')).mode & 0o777, 0o600);
    } finally {
      await t.close();
    }
  });

  for (const storage of ['sqlite', 'redis'] as const) {
    it(`a restart on ${storage} loses no key, API key or service account, and earlier tokens still validate`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'mimir-restart-'));
      const redisPrefix = newRedisPrefix();
      // The issuer must stay the same across the restart, as a deployment's public URL does.
      const env = { MIMIR_JWT_ISSUER: 'https://mimir.test.example' };
      const first = await startHub({ storage, dataDir, redisPrefix, env });
      const sa = await serviceAccountToken(first, ['developer'], 'restart-svc');
      const { key } = await first.hub.apiKeys.create({ name: 'restart', roles: ['viewer'] });
      const kid = first.hub.keys.currentKid;
      await first.close({ keepData: true });

      const second = await startHub({ storage, dataDir, redisPrefix, env });
      try {
        assert.equal(second.hub.keys.currentKid, kid, 'the signing key survived');
        assert.equal(await me(second.url, sa.token), 200, 'a token issued before the restart validates');
        const keyRes = await fetch(`${second.url}/auth/me`, { headers: { 'x-api-key': key } });
        assert.equal(keyRes.status, 200, 'the API key survived');
        const again = await fetch(`${second.url}/auth/token`, {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'restart-svc', client_secret: sa.secret }).toString(),
        });
        assert.equal(again.status, 200, 'the service account survived');
      } finally {
        await second.close();
      }
    });
  }
});
