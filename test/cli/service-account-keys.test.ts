/**
 * `mimir-auth service-accounts create --jwks-file FILE` / `--jwks-uri URL`: a service account that
 * authenticates with private_key_jwt (RFC 7523 §2.2), made by the real CLI on the store a real hub
 * then serves; the key pair belongs to a JWT issuer on loopback.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { cli } from '../admin/support.ts';
import { startHub } from '../helpers/hub.ts';
import { postForm } from '../helpers/http.ts';
import { startJwtIssuer, type JwtIssuer } from '../helpers/jwt-issuer.ts';

describe('mimir-auth service-accounts create --jwks-file / --jwks-uri', () => {
  let keys: JwtIssuer;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    keys = await startJwtIssuer({ alg: 'ES256' });
    dir = mkdtempSync(join(tmpdir(), 'mimir-cli-keys-'));
    env = { MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_TOKEN_STORAGE: 'sqlite', MIMIR_LOG_AUTH_EVENTS: 'false' };
  });
  after(async () => { await keys.close(); });

  it('creates an account with no secret whose client assertions the hub accepts', async () => {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify(keys.jwks));
    const created = await cli(['service-accounts', 'create', '--id', 'keyed-agent', '--roles', 'developer', '--jwks-file', file, '--json'], env, dir);
    assert.equal(created.code, 0, created.stderr);
    const account = JSON.parse(created.stdout) as Record<string, unknown>;
    assert.equal(account.client_id, 'keyed-agent');
    assert.equal(account.client_secret, undefined, 'no secret is made');
    assert.deepEqual(account.jwks, keys.jwks);
    const human = await cli(['service-accounts', 'create', '--id', 'keyed-by-uri', '--roles', 'viewer', '--jwks-uri', keys.jwksUri], env, dir);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /private_key_jwt/);
    assert.doesNotMatch(human.stdout, /client_secret:/);

    const t = await startHub({ storage: 'sqlite', dataDir: env.MIMIR_DATA_DIR! });
    try {
      for (const id of ['keyed-agent', 'keyed-by-uri']) {
        const assertion = await keys.sign({ iss: id, sub: id, aud: t.config.jwt.issuer });
        const res = await postForm(`${t.url}/auth/token`, {
          grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
        });
        assert.equal(res.status, 200, `${id}: ${JSON.stringify(res.body)}`);
        assert.equal(decodeJwt(res.body.access_token).sub, id);
      }
    } finally {
      await t.close({ keepData: true });
    }
  });

  it('refuses an unreadable file, a private key, both options and a plain-http jwks_uri (exit 64, nothing created)', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateFile = join(dir, 'private.json');
    writeFileSync(privateFile, JSON.stringify({ keys: [await exportJWK(privateKey)] }));
    const cases: string[][] = [
      ['--jwks-file', join(dir, 'missing.json')],
      ['--jwks-file', privateFile],
      ['--jwks-file', privateFile, '--jwks-uri', keys.jwksUri],
      ['--jwks-uri', 'http://keys.example/jwks'],
    ];
    for (const [i, extra] of cases.entries()) {
      const res = await cli(['service-accounts', 'create', '--id', `refused-${i}`, '--roles', 'viewer', ...extra], env, dir);
      assert.equal(res.code, 64, `${extra.join(' ')}: ${res.stdout}${res.stderr}`);
      assert.doesNotMatch(res.stderr, /"d":/, 'the private key is not echoed');
    }
    const list = await cli(['service-accounts', 'list', '--json'], env, dir);
    assert.ok(!(JSON.parse(list.stdout) as Array<{ clientId: string }>).some((a) => a.clientId.startsWith('refused-')));
  });
});
