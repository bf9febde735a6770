/**
 * Issue 17 review F4: on SQLite the CLI beside a running hub changes records in another process;
 * the hub hears it through the change feed, and every client authentication first catches up
 * with it (RevocationContact.assertFresh). The secret path did; private_key_jwt read the cached
 * record without it, so a service account disabled by the CLI still got tokens until the feed's
 * next poll. Now every path reads service accounts through one finder that catches up first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { basic, postForm } from '../helpers/http.ts';
import { startJwtIssuer, type JwtIssuer } from '../helpers/jwt-issuer.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('a service account disabled by the CLI in another process (SQLite) is refused at its very next authentication', () => {
  let t: TestHub;
  let keys: JwtIssuer;
  let secret: string;

  before(async () => {
    keys = await startJwtIssuer({ alg: 'ES256' });
    t = await startHub({ storage: 'sqlite' });
    await t.hub.serviceAccounts.createWithKeys({ clientId: 'key-agent', roles: ['developer'] }, { jwks: keys.jwks });
    secret = (await t.hub.serviceAccounts.create({ clientId: 'secret-agent', roles: ['developer'] })).clientSecret;
  });
  after(async () => {
    await t?.close();
    await keys?.close();
  });

  /** `mimir-auth service-accounts ACTION ID` in its own process, on the hub's data directory. */
  const cli = (action: string, id: string) => new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [BIN, 'service-accounts', action, id], { cwd: t.dataDir, env: { PATH: process.env.PATH ?? '', HOME: t.dataDir, MIMIR_DATA_DIR: t.dataDir, MIMIR_TOKEN_STORAGE: 'sqlite', MIMIR_LOG_LEVEL: 'warn' } },
      (err, _stdout, stderr) => (err ? reject(new Error(`${action} ${id}: ${stderr}`)) : resolve()));
  });

  const withKey = async () => postForm(`${t.url}/auth/token`, {
    grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE,
    client_assertion: await keys.sign({ iss: 'key-agent', sub: 'key-agent', aud: t.config.jwt.issuer }),
  });
  const withSecret = () => postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials' }, basic('secret-agent', secret));

  for (const [method, request, id] of [['private_key_jwt', withKey, 'key-agent'], ['client_secret_basic', withSecret, 'secret-agent']] as const) {
    it(`${method}: the first request after the CLI returns is invalid_client, every time`, async () => {
      for (let round = 0; round < 3; round++) {
        // A success first: the record is in the hub's cache when the CLI disables it.
        const ok = await request();
        assert.equal(ok.status, 200, `round ${round}: ${JSON.stringify(ok.body)}`);
        await cli('disable', id);
        const refused = await request();
        assert.equal(refused.status, 401, `round ${round}: still served from the cache (a token was issued)`);
        assert.equal(refused.body.error, 'invalid_client');
        await cli('enable', id);
      }
    });
  }
});
