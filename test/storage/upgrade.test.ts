/**
 * Nothing lost on upgrade (issue 19): a hub of this release, started on the data the previous
 * release (b58d8a5) left in SQLite or Redis, keeps every API key (a revoked one stays revoked),
 * service account (a disabled one stays disabled), registered client, signing key, refresh family
 * (a revoked one stays revoked) and revocation. The data was written once by that release's own
 * code (scripts/upgrade-fixtures.ts) and is committed under test/fixtures/upgrade/.
 */
import { after, describe } from 'node:test';
import { newRedisPrefix, startHub, type TestHub } from '../helpers/hub.ts';
import { nothingLost, RELEASE, releaseDataDir, releaseSecrets, restoreReleaseRedis } from '../helpers/release-data.ts';

for (const storage of ['sqlite', 'redis'] as const) {
  describe(`upgrading from ${RELEASE} on ${storage}: nothing is lost`, () => {
    const s = releaseSecrets(storage);
    let t: TestHub | undefined;
    const hub = async (): Promise<TestHub> => {
      if (t) return t;
      const prefix = newRedisPrefix();
      if (storage === 'redis') await restoreReleaseRedis(prefix);
      t = await startHub({ storage, dataDir: releaseDataDir(storage), redisPrefix: prefix, env: { MIMIR_PUBLIC_URL: s.publicUrl } });
      return t;
    };
    after(async () => { await t?.close(); });
    nothingLost(hub, s);
  });
}
