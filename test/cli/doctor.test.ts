/**
 * `mimir-auth doctor` (issue 21, item 6): the seed's troubleshooting checks in one go, run as a user
 * runs it (the real CLI), against a real OpenID provider (oidc-provider on loopback) and the
 * Mimir-shaped upstream: a healthy setup is ok throughout; broken ones show each problem with the
 * variable to fix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../admin/support.ts';
import { freePort } from '../helpers/hub.ts';
import { startIdp, type TestIdp } from '../helpers/idp.ts';
import { startMimir, type Mimir } from '../helpers/mimir.ts';

interface Check { name: string; verdict: 'ok' | 'warning' | 'problem'; detail: string; fix?: string }

async function doctor(env: Record<string, string>, cwd: string): Promise<{ code: number; checks: Check[]; stdout: string; stderr: string }> {
  const r = await cli(['doctor', '--json'], env, cwd);
  let checks: Check[];
  try {
    checks = JSON.parse(r.stdout) as Check[];
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  return { code: r.code, checks, stdout: r.stdout, stderr: r.stderr };
}

function check(checks: Check[], name: string): Check {
  const found = checks.find((c) => c.name === name);
  assert.ok(found, `no check "${name}" in ${checks.map((c) => c.name).join(', ')}`);
  return found;
}

/** An HTTP proxy to `target` whose answers carry a Date `skewSeconds` off: a server with a wrong clock. */
async function skewedProxy(target: string, skewSeconds: number): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const answer = await fetch(new URL(req.url ?? '/', target), { method: req.method ?? 'GET', headers: { accept: req.headers.accept ?? '*/*' } });
      res.setHeader('date', new Date(Date.now() + skewSeconds * 1000).toUTCString());
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' });
      res.end(Buffer.from(await answer.arrayBuffer()));
    })().catch(() => { res.statusCode = 502; res.end(); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A certificate that expired in 2020 (openssl ca with explicit dates), and its key. */
function expiredCertificate(dir: string): { cert: string; key: string } {
  const ca = join(dir, 'ca');
  mkdirSync(ca);
  writeFileSync(join(ca, 'index.txt'), '');
  writeFileSync(join(ca, 'serial'), '01\n');
  writeFileSync(join(ca, 'ca.cnf'), '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n');
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', '/CN=localhost'], { cwd: ca, stdio: 'ignore' });
  execFileSync('openssl', ['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'key.pem', '-in', 'req.csr', '-out', 'cert.pem',
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z'], { cwd: ca, stdio: 'ignore' });
  return { cert: join(ca, 'cert.pem'), key: join(ca, 'key.pem') };
}

describe('mimir-auth doctor', () => {
  let idp: TestIdp;
  let mimir: Mimir;
  let secured: Mimir;
  const redirect = 'http://127.0.0.1:9042/auth/callback';
  before(async () => {
    idp = await startIdp({ kind: 'generic', redirectUris: [redirect] });
    mimir = await startMimir();
    secured = await startMimir({ security: { jwtSecret: 'm'.repeat(40) } });
  });
  after(async () => {
    await Promise.all([idp?.close(), mimir?.close(), secured?.close()]);
  });

  const idpEnv = () => ({
    MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_ISSUER: idp.issuer, MIMIR_OAUTH_CLIENT_ID: idp.clientId,
    MIMIR_OAUTH_CLIENT_SECRET: idp.clientSecret, MIMIR_OAUTH_REDIRECT_URI: redirect,
  });

  it('a healthy setup: every check ok, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-doctor-'));
    const { code, checks } = await doctor({ MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_UPSTREAM_URL: mimir.url, ...idpEnv() }, dir);
    assert.equal(code, 0, JSON.stringify(checks, null, 2));
    assert.deepEqual(checks.map((c) => c.name), [
      'configuration', 'RBAC', 'store', 'signing keys', 'identity provider generic', 'clock', 'upstream', 'upstream security', 'route coverage',
    ]);
    for (const c of checks) assert.equal(c.verdict, 'ok', `${c.name}: ${c.detail}`);
    assert.match(check(checks, 'identity provider generic').detail, /discovery OK .*JWKS OK: 1 key/);
    assert.match(check(checks, 'clock').detail, /within 5 s of identity provider generic and the upstream/);
    assert.match(check(checks, 'upstream security').detail, /security is off/);
    assert.match(check(checks, 'RBAC').detail, /4 roles|roles \(/);
  });

  it('a broken setup shows each problem with its fix, and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-doctor-'));
    const rbacFile = join(dir, 'rbac.json');
    writeFileSync(rbacFile, '{\n  "roleMappings": {\n    "admin": x\n  }\n}\n');
    const skewed = await skewedProxy(secured.url, 600);
    const tls = expiredCertificate(dir);
    try {
      const { code, checks, stderr } = await doctor({
        MIMIR_DATA_DIR: join(dir, 'data'),
        MIMIR_AUTH_PROT: '8080',
        MIMIR_RBAC_CONFIG: rbacFile,
        MIMIR_TOKEN_STORAGE: 'postgres', MIMIR_DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/nowhere`,
        ...idpEnv(), MIMIR_OAUTH_ISSUER: `${idp.origin}/not-the-issuer`,
        MIMIR_UPSTREAM_URL: skewed.url,
        MIMIR_TLS_CERT_FILE: tls.cert, MIMIR_TLS_KEY_FILE: tls.key,
      }, dir);
      assert.equal(code, 1);
      assert.doesNotMatch(stderr, /warning: MIMIR_AUTH_PROT/, 'doctor says it in its configuration check, not twice');
      const configuration = check(checks, 'configuration');
      assert.equal(configuration.verdict, 'warning');
      assert.match(configuration.detail, /MIMIR_AUTH_PROT is not a variable of the hub or of Mimir and is ignored; did you mean MIMIR_AUTH_PORT\?/);
      const rbac = check(checks, 'RBAC');
      assert.equal(rbac.verdict, 'problem');
      assert.match(rbac.detail, /^MIMIR_RBAC_CONFIG: .*rbac\.json is not valid JSON: Unexpected token 'x' at position 35 \(line 3, column 14\)/);
      assert.match(rbac.fix ?? '', /MIMIR_RBAC_CONFIG/);
      const store = check(checks, 'store');
      assert.equal(store.verdict, 'problem');
      assert.match(store.fix ?? '', /MIMIR_TOKEN_STORAGE.*MIMIR_DATABASE_URL/);
      assert.equal(checks.find((c) => c.name === 'signing keys'), undefined, 'no store, no keys to check');
      const provider = check(checks, 'identity provider generic');
      assert.equal(provider.verdict, 'problem');
      assert.match(provider.detail, /discovery failed for issuer .*not-the-issuer.*MIMIR_OAUTH_ISSUER/);
      assert.match(provider.fix ?? '', /MIMIR_OAUTH_ISSUER/);
      const clock = check(checks, 'clock');
      assert.equal(clock.verdict, 'problem');
      assert.match(clock.detail, /this machine's clock is (599|600|601) s behind the upstream/);
      assert.match(clock.fix ?? '', /NTP/);
      const security = check(checks, 'upstream security');
      assert.equal(security.verdict, 'problem');
      assert.match(security.detail, /MIMIR_ENABLE_SECURITY.*MIMIR_UPSTREAM_AUTH is none/);
      assert.match(security.fix ?? '', /MIMIR_UPSTREAM_AUTH=mimir-jwt and MIMIR_UPSTREAM_JWT_SECRET/);
      const cert = check(checks, 'TLS');
      assert.equal(cert.verdict, 'problem');
      assert.match(cert.detail, /expired on Feb {1,2}1 00:00:00 2020 GMT/);
      assert.match(cert.fix ?? '', /MIMIR_TLS_CERT_FILE/);
    } finally {
      await skewed.close();
    }
  });

  it('PCTX\'s service account (MIMIR_SERVICE_ACCOUNT_ID/SECRET), signing keys sealed under another MIMIR_JWT_SECRET, a route table Mimir lacks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-doctor-'));
    const data = join(dir, 'data');
    const first = await doctor({ MIMIR_DATA_DIR: data, MIMIR_JWT_SECRET: 'a'.repeat(40), MIMIR_UPSTREAM_URL: mimir.url }, dir);
    assert.equal(check(first.checks, 'signing keys').verdict, 'ok', 'the first run makes the keys');
    assert.equal(first.checks.find((c) => c.name === 'service account'), undefined, 'no MIMIR_SERVICE_ACCOUNT_ID, no check');
    const created = await cli(['service-accounts', 'create', '--id', 'pctx-service', '--roles', 'developer', '--json'], { MIMIR_DATA_DIR: data, MIMIR_JWT_SECRET: 'a'.repeat(40) }, dir);
    const secret = (JSON.parse(created.stdout) as { client_secret: string }).client_secret;
    const pctx = await doctor({ MIMIR_DATA_DIR: data, MIMIR_JWT_SECRET: 'a'.repeat(40), MIMIR_UPSTREAM_URL: mimir.url, MIMIR_SERVICE_ACCOUNT_ID: 'pctx-service', MIMIR_SERVICE_ACCOUNT_SECRET: secret }, dir);
    assert.equal(pctx.code, 0, JSON.stringify(pctx.checks));
    assert.match(check(pctx.checks, 'service account').detail, /^"pctx-service" exists, enabled, roles \[developer\]; MIMIR_SERVICE_ACCOUNT_SECRET matches$/);
    const unknownAccount = await doctor({ MIMIR_DATA_DIR: data, MIMIR_JWT_SECRET: 'a'.repeat(40), MIMIR_UPSTREAM_URL: mimir.url, MIMIR_SERVICE_ACCOUNT_ID: 'pctx-servce' }, dir);
    assert.equal(unknownAccount.code, 1);
    assert.match(check(unknownAccount.checks, 'service account').detail, /MIMIR_SERVICE_ACCOUNT_ID: no service account "pctx-servce"/);
    const rbac = JSON.stringify({ roleMappings: { admin: { permissions: ['*'] } }, routes: [{ method: 'GET', path: '/api/nodes/*', permission: 'nodes:read' }, { method: 'GET', path: '/api/no-such-route', permission: 'nodes:read' }] });
    const { code, checks, stdout } = await doctor({
      MIMIR_DATA_DIR: data, MIMIR_JWT_SECRET: 'b'.repeat(40), MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: rbac,
      MIMIR_SERVICE_ACCOUNT_ID: 'pctx-service', MIMIR_SERVICE_ACCOUNT_SECRET: `${secret}x`,
    }, dir);
    assert.equal(code, 1);
    const keys = check(checks, 'signing keys');
    assert.equal(keys.verdict, 'problem', keys.detail);
    assert.match(keys.fix ?? '', /MIMIR_JWT_SECRET must be the secret the stored keys were sealed with/);
    const coverage = check(checks, 'route coverage');
    assert.equal(coverage.verdict, 'warning');
    assert.match(coverage.detail, /1 of 2 GET routes .*missing: \/api\/no-such-route/);
    assert.match(coverage.fix ?? '', /"routes" of MIMIR_RBAC_CONFIG/);
    const account = check(checks, 'service account');
    assert.equal(account.verdict, 'problem');
    assert.match(account.detail, /MIMIR_SERVICE_ACCOUNT_SECRET is not the secret of "pctx-service"/);
    assert.match(account.fix ?? '', /mimir-auth service-accounts rotate-secret pctx-service/);
    assert.ok(!stdout.includes(secret), 'the secret is never shown');
  });

  it('an invalid configuration is the one problem it reports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-doctor-'));
    const { code, checks } = await doctor({ MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_JWT_ALGORITHM: 'RS257' }, dir);
    assert.equal(code, 1);
    assert.equal(checks.length, 1);
    assert.equal(checks[0]!.name, 'configuration');
    assert.equal(checks[0]!.verdict, 'problem');
    assert.match(checks[0]!.detail, /MIMIR_JWT_ALGORITHM: "RS257" is not one of RS256, ES256, EdDSA, HS256/);
  });

  it('prints ok / warning / problem with the fix for people', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-doctor-'));
    const r = await cli(['doctor'], { MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}` }, dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^ok {7}store: sqlite answers$/m);
    assert.match(r.stdout, /^problem {2}upstream: http:\/\/127\.0\.0\.1:\d+ cannot be reached: .*\n {11}fix: start Mimir, or correct MIMIR_UPSTREAM_URL$/m);
  });
});
