/**
 * README: "Errors name the variable or field at fault and what would be accepted". These start-up
 * failures of `mimir-auth serve` (and `keys create`, `doctor`) printed a raw library or errno
 * message naming neither, and exited 1: a bad MIMIR_TRUST_PROXY ("invalid IP address: yes"), a
 * missing or non-PEM TLS file ("ENOENT…", "PEM routines::no start line"), a data directory that is
 * a file ("EEXIST…"). Now each is a configuration error (exit 78) naming its variable. Found by a
 * new user's review; each test failed at 8f29cfc.
 */
import { after, describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../admin/support.ts';
import { freePort } from '../helpers/hub.ts';

const dirs: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-startup-'));
  dirs.push(dir);
  return dir;
};
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('serve: start-up errors name the variable at fault', () => {
  it('MIMIR_TRUST_PROXY=yes is a configuration error naming the variable and what it accepts', async () => {
    const dir = tmp();
    const r = await cli(['serve'], { MIMIR_TRUST_PROXY: 'yes', MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_AUTH_PORT: String(await freePort()), MIMIR_LOG_LEVEL: 'silent' }, dir);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /MIMIR_TRUST_PROXY/);
    assert.match(r.stderr, /true|false|CIDR/);
  });

  it('doctor reports an invalid MIMIR_TRUST_PROXY instead of "configuration: valid"', async () => {
    const dir = tmp();
    const r = await cli(['doctor'], { MIMIR_TRUST_PROXY: '10.0.0.0/33', MIMIR_DATA_DIR: join(dir, 'data') }, dir);
    assert.match(r.stdout + r.stderr, /MIMIR_TRUST_PROXY/);
    assert.notEqual(r.code, 0);
  });

  it('a missing or non-PEM TLS key or certificate names its own variable and file', async () => {
    const dir = tmp();
    const bad = join(dir, 'bad.pem');
    writeFileSync(bad, 'garbage\n');
    const key = join(dir, 'key.pem');
    writeFileSync(key, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cases = [
      { cert: join(dir, 'missing.pem'), key: join(dir, 'missing.key'), says: /MIMIR_TLS_KEY_FILE: \S*missing\.key cannot be read \(ENOENT\)/ },
      { cert: bad, key: bad, says: /MIMIR_TLS_KEY_FILE: \S*bad\.pem is not a PEM private key/ },
      { cert: bad, key, says: /MIMIR_TLS_CERT_FILE: \S*bad\.pem is not a PEM certificate/ },
    ];
    for (const c of cases) {
      const r = await cli(['serve'], { MIMIR_TLS_CERT_FILE: c.cert, MIMIR_TLS_KEY_FILE: c.key, MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_AUTH_PORT: String(await freePort()), MIMIR_LOG_LEVEL: 'silent' }, dir);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, c.says);
    }
  });

  it('a MIMIR_DATA_DIR that is a file (or not writable) names MIMIR_DATA_DIR, for serve and keys create', async () => {
    const dir = tmp();
    const file = join(dir, 'afile');
    writeFileSync(file, '');
    const serve = await cli(['serve'], { MIMIR_DATA_DIR: file, MIMIR_AUTH_PORT: String(await freePort()), MIMIR_LOG_LEVEL: 'silent' }, dir);
    assert.notEqual(serve.code, 0);
    assert.match(serve.stderr, /MIMIR_DATA_DIR/, serve.stderr);
    const keys = await cli(['keys', 'create', '--name', 'x', '--roles', 'admin'], { MIMIR_DATA_DIR: file }, dir);
    assert.notEqual(keys.code, 0);
    assert.match(keys.stderr, /MIMIR_DATA_DIR/, keys.stderr);
  });
});
