/**
 * Issue 19 (one admin service): an admin change writes the same audit event whichever surface made
 * it. The CLI names the operating-system user who ran it (`cli:<user>`); the admin HTTP API names
 * the caller's Principal, with its address and request id.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { auditLines, CHANGE_TYPES, cli, OS_USER, type AuditLine } from './support.ts';

/** What identifies a change in its audit event (the ids differ between the two runs). */
const kindOf = (e: AuditLine) => [e.type, e.action ?? e.token_type ?? ''].join(' ');
/** The fields naming who did it, and pino's own. */
const ACTOR_FIELDS = new Set(['principal', 'ip', 'request_id', 'level', 'time', 'pid', 'hostname', 'log', 'event']);
const detailKeys = (e: AuditLine) => Object.keys(e).filter((k) => !ACTOR_FIELDS.has(k)).sort();

const CIMD_CLIENT = 'https://mcp-client.example/client.json';

/** The changes both runs make, in order, and the event each must write. */
const EXPECTED = [
  'admin api_key_created', 'admin api_key_revoked',
  'admin service_account_created', 'admin service_account_secret_rotated', 'admin service_account_disabled',
  'admin service_account_enabled', 'admin service_account_deleted',
  'admin oauth_client_revoked', 'signing_key_rotated ',
  'revocation session', 'revocation access_token', 'revocation signing_key',
];

describe('admin changes are audited alike from the CLI and over HTTP', () => {
  let dir: string;
  let cliEvents: AuditLine[];
  let httpEvents: AuditLine[];
  let t: TestHub;
  const httpRequestIds: string[] = [];
  let adminSub: string;

  before(async () => {
    // The CLI, on its own store, no server running.
    dir = mkdtempSync(join(tmpdir(), 'mimir-admin-cli-'));
    const cliAudit = join(dir, 'cli-audit.log');
    const env = { MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file', MIMIR_AUDIT_LOG_FILE: cliAudit };
    const run = async (...args: string[]) => {
      const r = await cli(args, env, dir);
      assert.equal(r.code, 0, `mimir-auth ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const key = JSON.parse(await run('keys', 'create', '--name', 'k', '--roles', 'viewer', '--json')) as { id: string };
    await run('keys', 'revoke', key.id);
    await run('service-accounts', 'create', '--id', 'sa-1', '--roles', 'viewer', '--json');
    await run('service-accounts', 'rotate-secret', 'sa-1');
    await run('service-accounts', 'disable', 'sa-1');
    await run('service-accounts', 'enable', 'sa-1');
    await run('service-accounts', 'delete', 'sa-1');
    await run('clients', 'revoke', CIMD_CLIENT);
    await run('signing-keys', 'rotate');
    await run('revoke', 'session', 'sid-1');
    await run('revoke', 'access_token', 'jti-1');
    await run('revoke', 'signing_key', 'kid-1');
    cliEvents = auditLines(cliAudit).filter((e) => CHANGE_TYPES.has(e.type));

    // The same changes over HTTP.
    const httpAudit = join(dir, 'http-audit.log');
    t = await startHub({ storage: 'sqlite', env: { MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file', MIMIR_AUDIT_LOG_FILE: httpAudit } });
    const admin = (await t.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
    adminSub = (await (await fetch(`${t.url}/auth/me`, { headers: { 'x-api-key': admin } })).json() as { sub: string }).sub;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${t.url}${path}`, {
        method, headers: { 'x-api-key': admin, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const json = await res.json() as Record<string, any>;
      assert.ok(res.status === 200 || res.status === 201, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      httpRequestIds.push(res.headers.get('x-request-id')!);
      return json;
    };
    const created = await call('POST', '/auth/admin/api-keys', { name: 'k', roles: ['viewer'] });
    await call('DELETE', `/auth/admin/api-keys/${created.id}`);
    await call('POST', '/auth/admin/service-accounts', { client_id: 'sa-1', roles: ['viewer'] });
    await call('POST', '/auth/admin/service-accounts/sa-1/rotate-secret');
    await call('POST', '/auth/admin/service-accounts/sa-1/disable');
    await call('POST', '/auth/admin/service-accounts/sa-1/enable');
    await call('DELETE', '/auth/admin/service-accounts/sa-1');
    await call('DELETE', `/auth/admin/clients/${encodeURIComponent(CIMD_CLIENT)}`);
    await call('POST', '/auth/admin/signing-keys/rotate');
    await call('POST', '/auth/admin/revocations', { type: 'session', id: 'sid-1' });
    await call('POST', '/auth/admin/revocations', { type: 'access_token', id: 'jti-1' });
    await call('POST', '/auth/admin/revocations', { type: 'signing_key', id: 'kid-1' });
    await t.hub.audit.flush();
    httpEvents = auditLines(httpAudit).filter((e) => CHANGE_TYPES.has(e.type));
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every CLI admin command writes its audit event, with the cli:<os user> actor', () => {
    assert.deepEqual(cliEvents.map(kindOf), EXPECTED);
    for (const e of cliEvents) {
      assert.deepEqual(e.principal, { sub: `cli:${OS_USER}`, auth_method: 'cli' }, kindOf(e));
      assert.equal(e.outcome, 'success');
      assert.equal(e.ip, undefined, 'no address: nothing came over the network');
      assert.equal(e.request_id, undefined);
    }
    assert.equal(cliEvents.find((e) => e.action === 'oauth_client_revoked')?.target, CIMD_CLIENT);
  });

  it('the same changes over HTTP write the same events, naming the principal, its address and request id', () => {
    assert.deepEqual(httpEvents.map(kindOf), EXPECTED);
    httpEvents.forEach((e, i) => {
      assert.equal(e.principal.sub, adminSub, kindOf(e));
      assert.equal(e.principal.auth_method, 'api-key');
      assert.equal(e.ip, '127.0.0.1');
      assert.equal(e.request_id, httpRequestIds[i], 'the request id the response carried');
    });
  });

  it('an event carries the same fields whichever surface made the change', () => {
    cliEvents.forEach((e, i) => {
      assert.deepEqual(detailKeys(e), detailKeys(httpEvents[i]!), kindOf(e));
      for (const field of ['type', 'action', 'token_type']) assert.equal(e[field], httpEvents[i]![field], `${kindOf(e)}: ${field}`);
    });
    // Targets that are not random ids are the same on both sides.
    const targets = (events: AuditLine[]) => events.filter((e) => !/^api_key_/.test(e.action ?? '') && e.type !== 'signing_key_rotated').map((e) => e.target);
    assert.deepEqual(targets(cliEvents), targets(httpEvents));
  });
});
