/**
 * Issue 19 (one admin service): the admin API's answers. Bad input is 400 invalid_request naming
 * the field, an unknown id 404, a taken one 409; a fault is 500 server_error carrying the request
 * id (in the body and the log line) and nothing of its cause — not a 400 with the fault's message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/index.ts';
import { openHub, type Hub } from '../../src/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/logger.ts';
import { freePort, startHub, type TestHub } from '../helpers/hub.ts';
import { get, postJson } from '../helpers/http.ts';
import { cli } from './support.ts';

describe('admin API: refusals name what is wrong', () => {
  let t: TestHub;
  let admin: Record<string, string>;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    admin = { 'x-api-key': (await t.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key };
  });
  after(async () => t.close());

  it('a validation error is 400 invalid_request naming the field', async () => {
    for (const [path, body, field] of [
      ['/auth/admin/api-keys', { name: 'x', roles: ['viewer', 'bad role'] }, 'roles.1:'],
      ['/auth/admin/api-keys', { roles: ['viewer'] }, 'name:'],
      ['/auth/admin/api-keys', { name: 'x', expires_in: 'soon' }, 'expires_in:'],
      ['/auth/admin/service-accounts', { client_id: '-starts-with-a-dash' }, 'client_id:'],
      ['/auth/admin/service-accounts', { client_id: 'sa', allow_user_context: 'yes' }, 'allow_user_context:'],
      ['/auth/admin/revocations', { type: 'refresh_family', id: 'x' }, 'type:'],
      ['/auth/admin/revocations', { type: 'session', id: 'a b' }, 'id:'],
    ] as const) {
      const res = await postJson(`${t.url}${path}`, body, admin);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.equal(res.body.error, 'invalid_request');
      assert.ok(String(res.body.error_description).startsWith(field), `${res.body.error_description} names ${field}`);
    }
    assert.equal((await t.hub.apiKeys.list()).length, 1, 'nothing was created');
    assert.equal(await t.hub.serviceAccounts.get('sa'), null);
  });

  it('an unknown id is 404, a taken one 409', async () => {
    for (const [method, path] of [
      ['DELETE', '/auth/admin/api-keys/nosuchkey'],
      ['POST', '/auth/admin/service-accounts/nosuch/rotate-secret'],
      ['POST', '/auth/admin/service-accounts/nosuch/disable'],
      ['DELETE', '/auth/admin/service-accounts/nosuch'],
      ['DELETE', '/auth/admin/clients/dyn_nosuchclient'],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { method, headers: admin });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal((await res.json() as { error: string }).error, 'not_found');
    }
    assert.equal((await postJson(`${t.url}/auth/admin/service-accounts`, { client_id: 'twice' }, admin)).status, 201);
    const again = await postJson(`${t.url}/auth/admin/service-accounts`, { client_id: 'twice' }, admin);
    assert.equal(again.status, 409);
    assert.equal(again.body.error, 'conflict');
  });

  it('the built-in CLI client cannot be revoked', async () => {
    const res = await fetch(`${t.url}/auth/admin/clients/mimir-cli`, { method: 'DELETE', headers: admin });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_request');
  });
});

describe('the CLI refuses the same input the same way', () => {
  let dir: string;
  let env: Record<string, string>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mimir-admin-cli-'));
    env = { MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_AUTH_EVENTS: 'false' };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('bad input is a usage error (64) naming the field; an unknown id fails (1); nothing is created', async () => {
    const bad = await cli(['keys', 'create', '--name', 'x', '--roles', 'viewer,bad role'], env, dir);
    assert.equal(bad.code, 64, bad.stderr);
    assert.match(bad.stderr, /roles\.1:/);
    const missing = await cli(['keys', 'revoke', 'nosuchkey'], env, dir);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No API key with that id/);
    const listed = await cli(['keys', 'list', '--json'], env, dir);
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });
});

describe('admin API: a fault is a 500 with a request id, nothing of its cause', () => {
  let hub: Hub;
  let app: FastifyInstance;
  let url: string;
  let dataDir: string;
  const logged: string[] = [];
  let bearer: Record<string, string>;
  let apiKey: Record<string, string>;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mimir-admin-fault-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = loadConfig({
      MIMIR_AUTH_PORT: String(port), MIMIR_PUBLIC_URL: url, MIMIR_DATA_DIR: dataDir, MIMIR_TOKEN_STORAGE: 'sqlite',
      MIMIR_LOG_AUTH_EVENTS: 'false', MIMIR_LOG_LEVEL: 'info',
    }, { dotenv: false });
    hub = await openHub(config, { logger: createLogger('info', { write: (line: string) => { logged.push(line); } }) });
    app = await buildServer(hub);
    await app.listen({ port, host: '127.0.0.1' });
    // A hub token is checked without the store (keys and revocations are in memory); an API key is not.
    bearer = { authorization: `Bearer ${(await hub.signer.issue({ sub: 'ops', client_id: 'console', roles: ['admin'] }, 300)).token}` };
    apiKey = { 'x-api-key': (await hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key };
    assert.equal((await get(`${url}/auth/admin/api-keys`, bearer)).status, 200);
    // The storage goes away under the running server.
    await hub.store.close();
  });
  after(async () => {
    await app.close();
    await hub.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const [name, method, path, body, auth] of [
    ['a listing', 'GET', '/auth/admin/api-keys', undefined, 'bearer'],
    ['a service account creation (once a 400 carrying the fault\'s message)', 'POST', '/auth/admin/service-accounts', { client_id: 'sa-1' }, 'bearer'],
    ['a revocation by id', 'POST', '/auth/admin/revocations', { type: 'access_token', id: 'jti-1' }, 'bearer'],
    ['an authentication that needs the store', 'GET', '/auth/admin/service-accounts', undefined, 'api-key'],
  ] as const) {
    it(`${name}: 500 server_error, the request id in the body and the log line, no cause in the body`, async () => {
      const res = await fetch(`${url}${path}`, {
        method, headers: { ...(auth === 'bearer' ? bearer : apiKey), ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      assert.equal(res.status, 500, text);
      const json = JSON.parse(text) as Record<string, unknown>;
      assert.equal(json.error, 'server_error');
      const requestId = res.headers.get('x-request-id');
      assert.ok(requestId);
      assert.equal(json.request_id, requestId, 'the body names the request');
      assert.deepEqual(Object.keys(json).sort(), ['error', 'error_description', 'request_id']);
      assert.doesNotMatch(text, /sqlite|database|not open|Error:|\bat \S+ \(|\.ts:\d+/i, 'nothing of the cause');
      const line = logged.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reqId === requestId && l.level === 50);
      assert.ok(line, 'an error line names the request');
      assert.ok(String(line.detail ?? '').length > 0, 'and says what happened');
    });
  }
});
