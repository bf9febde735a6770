/**
 * Issue 21, item 6: errors that help, from the real CLI as a user meets them. Each names the
 * variable or field at fault and what would be accepted: a port in use (MIMIR_AUTH_PORT), an RBAC
 * file that cannot be read or is not JSON (MIMIR_RBAC_CONFIG, with the position), a providers file
 * entry (the entry, the field, the allowed values, a did-you-mean), MIMIR_* names nothing reads (a
 * warning, once, with a did-you-mean; Mimir's own variables are known), roles RBAC does not define;
 * and the CLI's audit lines go to the audit file, never to stderr.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditLines, cli, OS_USER } from '../admin/support.ts';
import { freePort } from '../helpers/hub.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));
const tmp = () => mkdtempSync(join(tmpdir(), 'mimir-cli-errors-'));

describe('mimir-auth errors name the variable or field and what would be accepted', () => {
  it('a port in use: MIMIR_AUTH_PORT, the port, and what to do; the process exits 1 by itself', async () => {
    const dir = tmp();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await cli(['serve'], { MIMIR_AUTH_PORT: String(port), MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_LEVEL: 'silent' }, dir);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`^mimir-auth: MIMIR_AUTH_PORT: port ${port} on 127\\.0\\.0\\.1 is already in use .*; stop it, or set MIMIR_AUTH_PORT to a free port \\(1-65535; 0 picks any free one\\)$`, 'm'));
      assert.doesNotMatch(r.stdout, /listening/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('an RBAC file that cannot be read, or is not JSON: MIMIR_RBAC_CONFIG, why, and where', async () => {
    const dir = tmp();
    const missing = await cli(['routes'], { MIMIR_RBAC_CONFIG: join(dir, 'nope', 'rbac.json') }, dir);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `mimir-auth: MIMIR_RBAC_CONFIG: ${join(dir, 'nope', 'rbac.json')} cannot be read (no such file); set it to the path of a readable rbac.json, an https URL, or inline JSON\n`);

    const file = join(dir, 'rbac.json');
    writeFileSync(file, '{\n  "roleMappings": {\n    "admin": { "permissions": ["*"], }\n  }\n}\n');
    const serve = await cli(['serve'], { MIMIR_RBAC_CONFIG: file, MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_AUTH_PORT: String(await freePort()), MIMIR_LOG_LEVEL: 'silent' }, dir);
    assert.equal(serve.code, 1);
    assert.match(serve.stderr, /^mimir-auth: MIMIR_RBAC_CONFIG: .*rbac\.json is not valid JSON: Expected double-quoted property name at position 59 \(line 3, column 38\) \(expected Mimir's rbac\.json format: \{claimPath, defaultRole, roleMappings: \{role: \{permissions: \[\]\}\}\}\)$/m);

    const inline = await cli(['routes'], { MIMIR_RBAC_CONFIG: '{"roleMappings": {"admin": x}}' }, dir);
    assert.equal(inline.code, 1);
    assert.match(inline.stderr, /^mimir-auth: MIMIR_RBAC_CONFIG: the inline value is not valid JSON: Unexpected token 'x' at position 27 \(line 1, column 28\)/);

    const shape = await cli(['routes'], { MIMIR_RBAC_CONFIG: '{"roleMappings": {"admin": {"permissions": "*"}}}' }, dir);
    assert.equal(shape.code, 1);
    assert.match(shape.stderr, /^mimir-auth: MIMIR_RBAC_CONFIG: roleMappings\.admin\.permissions: .*expected array/);
  });

  it('a providers file: the entry, the field, the allowed values and a did-you-mean (kind: octa, clientID)', async () => {
    const dir = tmp();
    const file = join(dir, 'providers.yaml');
    writeFileSync(file, 'providers:\n  - id: corp\n    kind: octa\n    clientID: mimir-hub\n    issuer: https://corp.okta.com/oauth2/default\n');
    const r = await cli(['providers', 'check'], { MIMIR_AUTH_PROVIDERS_FILE: file }, dir);
    assert.equal(r.code, 78, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines[0], 'mimir-auth: the configuration is not valid:');
    assert.ok(lines.includes(`  MIMIR_AUTH_PROVIDERS_FILE (${file}): providers.0 (corp): "clientID" is not a field of a provider; did you mean "clientId"?`), r.stderr);
    assert.ok(lines.includes(`  MIMIR_AUTH_PROVIDERS_FILE (${file}): providers.0 (corp): kind: "octa" is not one of okta, auth0, azure, google, keycloak, cognito, generic; did you mean "okta"?`), r.stderr);
    assert.equal(lines.length, 3, 'clientId is not reported missing besides: the did-you-mean says it');

    const json = join(dir, 'providers.json');
    writeFileSync(json, JSON.stringify([{ id: 'corp', kind: 'generic', clientId: 'c', issuer: 'https://idp.example', opaqueTokens: 'introspect', scopes: 'openid' }]));
    const second = await cli(['serve'], { MIMIR_AUTH_PROVIDERS_FILE: json, MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_AUTH_PORT: String(await freePort()), MIMIR_LOG_LEVEL: 'silent' }, dir);
    assert.equal(second.code, 78);
    assert.match(second.stderr, /providers\.0 \(corp\): "scopes" is not a field of a provider; did you mean "scope"\?/);
    assert.match(second.stderr, /providers\.0 \(corp\): opaqueTokens: "introspect" is not one of introspection, userinfo, off; did you mean "introspection"\?/);
  });

  it('unknown MIMIR_* variables are warned about once, with a did-you-mean; Mimir\'s own are known', async () => {
    const dir = tmp();
    writeFileSync(join(dir, '.env'), 'MIMIR_SESION_TIMEOUT=600\nMIMIR_EMBEDDINGS_MODEL=nomic-embed-text\n');
    const env = {
      MIMIR_AUTH_PROT: '8080', MIMIR_NOTHING_LIKE_IT_AT_ALL: '1',
      // Mimir's own: the hub often shares its environment.
      MIMIR_ENABLE_SECURITY: 'true', MIMIR_PORT: '3000', MIMIR_DEV_USER_ADA: 'ada:pw:admin', MIMIR_URL: 'http://127.0.0.1:9042',
    };
    const r = await cli(['config'], env, dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, [
      'mimir-auth: warning: MIMIR_AUTH_PROT is not a variable of the hub or of Mimir and is ignored; did you mean MIMIR_AUTH_PORT?',
      'mimir-auth: warning: MIMIR_NOTHING_LIKE_IT_AT_ALL is not a variable of the hub or of Mimir and is ignored; see `mimir-auth config --example` for every variable',
      'mimir-auth: warning: MIMIR_SESION_TIMEOUT (in .env) is not a variable of the hub or of Mimir and is ignored; did you mean MIMIR_SESSION_TIMEOUT?',
      '',
    ].join('\n'));
    assert.match(r.stdout, /^MIMIR_AUTH_PORT=9042$/m, 'the misspelt variable is ignored');

    // serve: warned once at start, before the banner.
    const port = await freePort();
    const server = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, ...env, MIMIR_AUTH_PORT: String(port), MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_LEVEL: 'silent' } });
    let out = '';
    let err = '';
    server.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    server.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner: ${out}${err}`)), 20_000);
        server.stdout.on('data', () => { if (out.includes('signing key:')) { clearTimeout(timer); resolve(); } });
        server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${err}`)); });
      });
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
    assert.equal(err.match(/warning: MIMIR_AUTH_PROT /g)?.length, 1, err);
    assert.doesNotMatch(err, /MIMIR_ENABLE_SECURITY|MIMIR_PORT |MIMIR_DEV_USER_ADA|MIMIR_URL|MIMIR_EMBEDDINGS_MODEL/);
  });

  it('roles RBAC does not define are refused, naming them and the known ones; --allow-unknown-role creates them (the CLI holds *)', async () => {
    const dir = tmp();
    const env = { MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_AUTH_EVENTS: 'false' };
    const typo = await cli(['keys', 'create', '--name', 'k', '--roles', 'developr'], env, dir);
    assert.equal(typo.code, 64);
    assert.equal(typo.stderr, 'mimir-auth: roles: "developr" is not defined in the RBAC configuration (MIMIR_RBAC_CONFIG); did you mean "developer"?; '
      + 'known roles: introspector, metrics-reader, admin, developer, analyst, viewer. To create it for a role defined later, pass allow_unknown_role (CLI: --allow-unknown-role), which needs the * permission.\n');
    const account = await cli(['service-accounts', 'create', '--id', 'agent', '--roles', 'viewer,future-a,future-b'], env, dir);
    assert.equal(account.code, 64);
    assert.match(account.stderr, /^mimir-auth: roles: "future-a", "future-b" are not defined in the RBAC configuration \(MIMIR_RBAC_CONFIG\); known roles: /);
    const nothing = await cli(['keys', 'list', '--json'], env, dir);
    assert.deepEqual(JSON.parse(nothing.stdout), [], 'nothing was created');
    assert.deepEqual(JSON.parse((await cli(['service-accounts', 'list', '--json'], env, dir)).stdout), []);

    const key = await cli(['keys', 'create', '--name', 'k', '--roles', 'future-a', '--allow-unknown-role', '--json'], env, dir);
    assert.equal(key.code, 0, key.stderr);
    assert.deepEqual((JSON.parse(key.stdout) as { roles: string[] }).roles, ['future-a']);
    const sa = await cli(['service-accounts', 'create', '--id', 'agent', '--roles', 'future-b', '--allow-unknown-role', '--json'], env, dir);
    assert.equal(sa.code, 0, sa.stderr);
    assert.deepEqual((JSON.parse(sa.stdout) as { roles: string[] }).roles, ['future-b']);
  });

  it('no audit line on stderr: a CLI change is recorded in the audit file, and --json output stays one JSON document', async () => {
    const dir = tmp();
    // Defaults: audit on, MIMIR_AUDIT_LOG_DESTINATION=stdout (the server's stream).
    const env = { MIMIR_DATA_DIR: join(dir, 'data') };
    const created = await cli(['keys', 'create', '--name', 'k', '--roles', 'viewer', '--json'], env, dir);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stderr, '', 'nothing on stderr');
    const key = JSON.parse(created.stdout) as { id: string };
    const revoked = await cli(['keys', 'revoke', key.id], env, dir);
    assert.equal(revoked.stdout, `Revoked API key ${key.id}.\n`);
    assert.equal(revoked.stderr, '');
    const events = auditLines(join(dir, 'data', 'audit.log'));
    assert.deepEqual(events.map((e) => e.action), ['api_key_created', 'api_key_revoked']);
    assert.ok(events.every((e) => e.principal.sub === `cli:${OS_USER}`));

    const elsewhere = join(dir, 'elsewhere.log');
    const second = await cli(['signing-keys', 'rotate'], { ...env, MIMIR_AUDIT_LOG_DESTINATION: 'both', MIMIR_AUDIT_LOG_FILE: elsewhere }, dir);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout + second.stderr, /"log":"audit"/);
    assert.deepEqual(auditLines(elsewhere).map((e) => e.type), ['signing_key_rotated']);

    const off = await cli(['keys', 'create', '--name', 'quiet', '--roles', 'viewer'], { ...env, MIMIR_LOG_AUTH_EVENTS: 'false', MIMIR_AUDIT_LOG_FILE: join(dir, 'off.log') }, dir);
    assert.equal(off.code, 0);
    assert.equal(existsSync(join(dir, 'off.log')), false, 'MIMIR_LOG_AUTH_EVENTS=false writes none');
  });
});
