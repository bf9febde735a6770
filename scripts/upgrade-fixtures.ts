/**
 * Writes the data a previous release of the hub left behind, for the upgrade test
 * (test/storage/upgrade.test.ts): `node scripts/upgrade-fixtures.ts [commit]` (default b58d8a5)
 * extracts that commit's sources, runs them against a fresh SQLite directory and a fresh Redis
 * prefix (MIMIR_TEST_REDIS_URL, else 127.0.0.1:6379), creates one of every durable thing (API
 * keys, one revoked; service accounts, one disabled; a registered client; refresh families, one
 * revoked; the signing key; access tokens, one revoked) and saves the store's contents and the
 * secrets to test/fixtures/upgrade/<commit>/. Run once per release and commit the result; the
 * test never rebuilds it. Long lifetimes (ten years) keep the fixtures valid without a frozen clock.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const root = join(import.meta.dirname, '..');
const commit = process.argv[2] ?? 'b58d8a5';
const redisUrl = process.env.MIMIR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const out = join(root, 'test', 'fixtures', 'upgrade', commit);
const log = (m: string) => console.log(`[upgrade-fixtures] ${m}`);

const work = mkdtempSync(join(tmpdir(), `mimir-release-${commit}-`));
log(`extracting ${commit} into ${work}`);
execFileSync('sh', ['-c', `git -C "${root}" archive ${commit} src package.json | tar -x -C "${work}"`]);
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));

const WRITER = `
import { writeFileSync } from 'node:fs';
import { loadConfig } from './src/config/index.ts';
import { openHub } from './src/hub.ts';
import { clientsOf } from './src/oauth/clients/registry.ts';
import { RefreshTokens } from './src/oauth/refresh/refresh-tokens.ts';
const [storage, dataDir, redisUrl, prefix, secretsFile] = process.argv.slice(2);
const PUBLIC_URL = 'http://127.0.0.1:9042';
const config = loadConfig({
  MIMIR_DATA_DIR: dataDir, MIMIR_TOKEN_STORAGE: storage, MIMIR_REDIS_URL: redisUrl, MIMIR_REDIS_KEY_PREFIX: prefix,
  MIMIR_PUBLIC_URL: PUBLIC_URL, MIMIR_LOG_LEVEL: 'silent', MIMIR_LOG_AUTH_EVENTS: 'false',
}, { dotenv: false });
const hub = await openHub(config);
const TEN_YEARS = 10 * 365 * 86400;
const kept = await hub.apiKeys.create({ name: 'kept', roles: ['developer'] });
const revoked = await hub.apiKeys.create({ name: 'revoked', roles: ['viewer'] });
await hub.apiKeys.revoke(revoked.record.id);
const svc = await hub.serviceAccounts.create({ clientId: 'upgrade-svc', roles: ['viewer'], scopes: ['nodes:read'] });
const off = await hub.serviceAccounts.create({ clientId: 'upgrade-disabled', roles: ['viewer'] });
await hub.serviceAccounts.setDisabled('upgrade-disabled', true);
const registered = await clientsOf(hub).register({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });
const families = new RefreshTokens(hub.store, { lifetimeSeconds: TEN_YEARS, revocations: hub.revocations });
const grant = { sub: 'ada', clientId: registered.client.client_id, scope: 'nodes:read', roles: ['viewer'] };
const family = await families.issue(grant);
const revokedFamily = await families.issue(grant);
await families.revokeFamily(revokedFamily.familyId, 'revoked before the upgrade');
const access = await hub.signer.issue({ sub: 'ada', client_id: 'mimir-cli', roles: ['viewer'], scope: 'nodes:read' }, TEN_YEARS);
const revokedAccess = await hub.signer.issue({ sub: 'ada', client_id: 'mimir-cli', roles: ['viewer'], scope: 'nodes:read' }, TEN_YEARS);
await hub.revocations.revoke('jti', revokedAccess.jti, revokedAccess.expiresAt);
writeFileSync(secretsFile, JSON.stringify({
  publicUrl: PUBLIC_URL, kid: hub.keys.currentKid,
  apiKey: { key: kept.key, id: kept.record.id }, revokedApiKey: { key: revoked.key, id: revoked.record.id },
  serviceAccount: { id: 'upgrade-svc', secret: svc.clientSecret }, disabledServiceAccount: { id: 'upgrade-disabled', secret: off.clientSecret },
  client: { id: registered.client.client_id, secret: registered.clientSecret },
  refreshToken: family.token, revokedRefreshToken: revokedFamily.token,
  accessToken: access.token, revokedAccessToken: revokedAccess.token,
}, null, 2));
await hub.close();
`;
writeFileSync(join(work, 'writer.ts'), WRITER);
const node = join(root, 'node_modules', '.bin', 'node');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

for (const storage of ['sqlite', 'redis'] as const) {
  const dataDir = join(work, `${storage}-data`);
  const prefix = `mimir-upgrade-fixture:${Date.now()}:`;
  log(`writing with ${commit}'s code on ${storage}`);
  execFileSync(node, [join(work, 'writer.ts'), storage, dataDir, redisUrl, prefix, join(out, `${storage}-secrets.json`)], { cwd: work, stdio: 'inherit' });
  // The data directory as that release left it (the database, the key files that seal its signing keys).
  cpSync(dataDir, join(out, `${storage}-data`), { recursive: true });
  if (storage === 'redis') {
    const redis = new Redis(redisUrl);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    const dump = [];
    for (const key of [...new Set(keys)].sort()) {
      const [payload, ttl] = await Promise.all([redis.dumpBuffer(key), redis.pttl(key)]);
      if (payload) dump.push({ key: key.slice(prefix.length), dump: payload.toString('base64'), pttl: ttl });
      await redis.del(key);
    }
    await redis.quit();
    writeFileSync(join(out, 'redis-keys.json'), JSON.stringify(dump, null, 2));
    log(`${dump.length} Redis keys saved`);
  }
}
rmSync(work, { recursive: true, force: true });
log(`written: ${readdirSync(out).join(', ')}`);
