import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCleanup } from '../../src/jobs/cleanup.ts';
import { MemoryStore, SqliteStore, type Store } from '../../src/storage/index.ts';
import { serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { basic, dpopKey, dpopProof, get, login, postForm, postJson } from '../helpers/http.ts';

describe('cleanup job', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-cleanup-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['memory', 'sqlite'] as const) {
    it(`removes only expired records (${kind})`, async () => {
      let clock = Date.now();
      const now = () => clock;
      const store: Store = kind === 'memory' ? new MemoryStore({ now }) : new SqliteStore(join(dir, 'cleanup.db'), { now });
      try {
        await store.upsert('refresh_token', 'expired-1', { a: 1 }, 10);
        await store.upsert('dpop_jti', 'expired-2', {}, 5);
        await store.upsert('refresh_token', 'live-long', { a: 2 }, 3600);
        await store.upsert('api_key', 'forever', { a: 3 });
        await store.insert('revoked', 'live-short', {}, 60);
        clock += 30_000;
        const report = await runCleanup(store);
        assert.deepEqual(report.removed, { refresh_token: 1, dpop_jti: 1 });
        assert.equal(report.total, 2);
        assert.ok(await store.find('refresh_token', 'live-long'));
        assert.ok(await store.find('api_key', 'forever'));
        assert.ok(await store.find('revoked', 'live-short'));
        assert.deepEqual((await runCleanup(store)).removed, {}, 'a second pass finds nothing');
      } finally {
        await store.close();
      }
    });
  }
});

describe('audit log and metrics', () => {
  let t: TestHub;
  let auditFile: string;
  const issued: string[] = [];

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-audit-'));
    auditFile = join(dir, 'audit.log');
    t = await startHub({ env: { MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file', MIMIR_AUDIT_LOG_FILE: auditFile } });
  });
  after(async () => {
    await t.close();
    rmSync(join(auditFile, '..'), { recursive: true, force: true });
  });

  const counter = (text: string, name: string, labels = ''): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('/metrics/auth counters move as requests are made', async () => {
    const before = (await get(`${t.url}/metrics/auth`)).body.text as string;
    const svc = await serviceAccountToken(t, ['developer']);
    issued.push(svc.token, svc.secret);
    for (let i = 0; i < 3; i++) assert.equal((await get(`${t.url}/auth/me`, { authorization: `Bearer ${svc.token}` })).status, 200);
    await get(`${t.url}/auth/me`, { authorization: 'Bearer nope' });
    const refresh = await login(t);
    issued.push(refresh);
    const r1 = await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh });
    issued.push(r1.body.access_token, r1.body.refresh_token);
    await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh }); // reuse
    await postForm(`${t.url}/auth/revoke`, { token: svc.token }, basic(svc.clientId, svc.secret));

    const res = await fetch(`${t.url}/metrics/auth`);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    const delta = (name: string, labels = '') => counter(text, name, labels) - counter(before, name, labels);
    assert.equal(delta('mimir_auth_authentications_total', 'method="jwt",result="success"'), 3);
    assert.equal(delta('mimir_auth_authentications_total', 'method="jwt",result="failure"'), 1);
    assert.equal(delta('mimir_auth_tokens_issued_total', 'grant_type="client_credentials"'), 1);
    assert.equal(delta('mimir_auth_tokens_issued_total', 'grant_type="refresh_token"'), 1);
    assert.equal(delta('mimir_auth_refreshes_total', 'result="success"'), 1);
    assert.equal(delta('mimir_auth_refresh_reuse_detected_total'), 1);
    assert.equal(delta('mimir_auth_revocations_total', 'token_type="access_token"'), 1);
    assert.ok(counter(text, 'mimir_auth_token_validation_duration_seconds_count', 'method="jwt"') >= 4);
  });

  it('request counts per API key and service account show in listings and the admin API', async () => {
    const { key, record } = await t.hub.apiKeys.create({ name: 'counted', roles: ['admin'] });
    issued.push(key);
    for (let i = 0; i < 4; i++) await get(`${t.url}/auth/me`, { 'x-api-key': key });
    const svc = await serviceAccountToken(t, ['developer']);
    issued.push(svc.token, svc.secret);
    for (let i = 0; i < 2; i++) await get(`${t.url}/auth/me`, { authorization: `Bearer ${svc.token}` });
    await t.hub.metrics.flush();
    const keys = await t.hub.apiKeys.list();
    assert.equal(keys.find((k) => k.id === record.id)?.requestCount, 4);
    const accounts = await t.hub.serviceAccounts.list();
    assert.equal(accounts.find((a) => a.clientId === svc.clientId)?.requestCount, 2);
    const admin = await get(`${t.url}/auth/admin/api-keys`, { 'x-api-key': key });
    assert.ok(admin.body.api_keys.find((k: { id: string }) => k.id === record.id).requestCount >= 4);
  });

  it('the audit log records lifecycle events and contains none of the tokens, secrets or keys issued', async () => {
    const key = await dpopKey();
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'audited', roles: ['developer', 'introspector'], scopes: ['introspect', 'nodes:read'] });
    issued.push(clientSecret);
    const proof = await dpopProof(key, { htm: 'POST', htu: `${t.url}/auth/token` });
    issued.push(proof);
    const bound = await postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials' }, { ...basic('audited', clientSecret), dpop: proof });
    issued.push(bound.body.access_token);
    const refresh = await login(t);
    const next = await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh });
    issued.push(refresh, next.body.access_token, next.body.refresh_token);
    await postForm(`${t.url}/auth/introspect`, { token: next.body.access_token }, basic('audited', clientSecret));
    await postJson(`${t.url}/auth/refresh`, { refresh_token: refresh });
    await postForm(`${t.url}/auth/revoke`, { token: next.body.refresh_token });
    await get(`${t.url}/auth/me`, { authorization: `Bearer ${next.body.access_token}` });
    await t.hub.audit.flush();

    const log = readFileSync(auditFile, 'utf8');
    const events = log.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const types = new Set(events.map((e) => e.event));
    for (const type of ['token_issued', 'refresh', 'refresh_reuse_detected', 'revocation', 'introspection', 'authentication_failed', 'api_key_used', 'service_account_used']) {
      assert.ok(types.has(type), `audit has a ${type} event`);
    }
    for (const e of events) {
      assert.equal(typeof e.time, 'string');
      assert.ok(e.outcome === 'success' || e.outcome === 'failure');
    }
    assert.ok(issued.length >= 12, `${issued.length} credentials checked`);
    for (const secret of issued) {
      assert.equal(typeof secret, 'string');
      assert.ok(!log.includes(secret), `the audit log contains an issued credential (${secret.slice(0, 6)}…)`);
      // Not even the signature part of a JWT.
      if (secret.split('.').length === 3) assert.ok(!log.includes(secret.split('.')[2]!));
    }
  });
});
