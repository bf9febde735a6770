import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startHub, type TestHub } from '../../helpers/hub.ts';

const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('client_credentials at /auth/token (RFC 6749 §4.4)', () => {
  let t: TestHub;
  let secret: string;
  const id = 'pctx-service';
  before(async () => {
    t = await startHub({ storage: 'sqlite' });
    secret = (await t.hub.serviceAccounts.create({ clientId: id, roles: ['developer'] })).clientSecret;
  });
  after(async () => { await t.close(); });

  async function token(body: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form(body) });
    return { status: res.status, headers: res.headers, body: await res.json() as Record<string, unknown> };
  }

  it('client_secret_basic credentials are form-urlencoded before Basic (RFC 6749 §2.3.1): percent escapes are decoded, a + is a space', async () => {
    const raw = (i: string, s: string) => `Basic ${Buffer.from(`${i}:${s}`).toString('base64')}`;
    const escaped = (s: string) => `%${s.charCodeAt(0).toString(16).toUpperCase()}${s.slice(1)}`;
    assert.equal((await token({ grant_type: 'client_credentials' }, { authorization: raw(escaped(id), escaped(secret)) })).status, 200);
    assert.equal((await token({ grant_type: 'client_credentials' }, { authorization: raw(id, secret) })).status, 200);
    // A + in place of one of the secret's characters decodes to a space: another secret.
    const plus = (await token({ grant_type: 'client_credentials' }, { authorization: raw(id, `+${secret.slice(1)}`) }));
    assert.equal(plus.status, 401);
    assert.equal(plus.body.error, 'invalid_client');
    // A malformed escape is taken as written: not the secret either.
    const bad = (await token({ grant_type: 'client_credentials' }, { authorization: raw(id, `%zz${secret}`) }));
    assert.equal(bad.status, 401);
  });

  it('client_secret_basic issues an RFC 9068 access token', async () => {
    const r = await token({ grant_type: 'client_credentials' }, { authorization: basic(id, secret) });
    assert.equal(r.status, 200);
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.expires_in, 86400);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const at = r.body.access_token as string;
    const header = decodeProtectedHeader(at);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.kid, t.hub.keys.currentKid);
    const claims = decodeJwt(at);
    assert.equal(claims.iss, t.config.jwt.issuer);
    assert.equal(claims.aud, 'mimir-api');
    assert.equal(claims.sub, id);
    assert.equal(claims.client_id, id);
    assert.deepEqual(claims.roles, ['developer']);
    assert.ok(typeof claims.jti === 'string' && claims.jti.length >= 16);
    assert.equal((claims.exp as number) - (claims.iat as number), 86400);
    assert.match(String(claims.scope), /nodes:read/);
  });

  it('client_secret_post works too', async () => {
    const r = await token({ grant_type: 'client_credentials', client_id: id, client_secret: secret });
    assert.equal(r.status, 200);
  });

  it('a scope can only narrow', async () => {
    const narrowed = await token({ grant_type: 'client_credentials', scope: 'nodes:read' }, { authorization: basic(id, secret) });
    assert.equal(narrowed.status, 200);
    assert.equal(narrowed.body.scope, 'nodes:read');
    assert.equal(decodeJwt(narrowed.body.access_token as string).scope, 'nodes:read');
    const tool = await token({ grant_type: 'client_credentials', scope: 'mcp:tool:search' }, { authorization: basic(id, secret) });
    assert.equal(tool.status, 200, 'mcp:* covers mcp:tool:search');
    const wider = await token({ grant_type: 'client_credentials', scope: 'nodes:read admin:manage' }, { authorization: basic(id, secret) });
    assert.equal(wider.status, 400);
    assert.equal(wider.body.error, 'invalid_scope');
  });

  it('invalid_client is the same answer whichever part was wrong', async () => {
    const wrongSecret = await token({ grant_type: 'client_credentials' }, { authorization: basic(id, 'nope') });
    const wrongId = await token({ grant_type: 'client_credentials' }, { authorization: basic('nobody', secret) });
    const none = await token({ grant_type: 'client_credentials' });
    for (const r of [wrongSecret, wrongId, none]) {
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_client');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Basic/);
    }
    assert.deepEqual(wrongSecret.body, wrongId.body);
  });

  it('both client authentication methods at once is invalid_request', async () => {
    const r = await token({ grant_type: 'client_credentials', client_id: id, client_secret: secret }, { authorization: basic(id, secret) });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_request');
  });

  it('missing, unknown and repeated parameters', async () => {
    const missing = await token({}, { authorization: basic(id, secret) });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, 'invalid_request');
    const unknown = await token({ grant_type: 'password' }, { authorization: basic(id, secret) });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error, 'unsupported_grant_type');
    const res = await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) }, body: 'grant_type=client_credentials&grant_type=client_credentials' });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_request');
  });

  it('malformed bodies are invalid_request, never 500', async () => {
    for (const [type, body] of [['application/json', '{not json'], ['text/plain', 'grant_type=client_credentials'], ['application/x-www-form-urlencoded', '%%%']] as const) {
      const res = await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': type }, body });
      assert.ok(res.status >= 400 && res.status < 500, `${type}: ${res.status}`);
      const json = await res.json() as { error: string };
      assert.ok(['invalid_request', 'unsupported_grant_type'].includes(json.error), `${type}: ${json.error}`);
    }
  });

  it('a rotated secret keeps working for the grace period, the new one at once', async () => {
    const rotated = await t.hub.serviceAccounts.rotateSecret(id);
    assert.ok(rotated);
    assert.equal((await token({ grant_type: 'client_credentials' }, { authorization: basic(id, rotated.clientSecret) })).status, 200);
    assert.equal((await token({ grant_type: 'client_credentials' }, { authorization: basic(id, secret) })).status, 200);
    const noGrace = await t.hub.serviceAccounts.rotateSecret(id, 0);
    assert.ok(noGrace);
    assert.equal((await token({ grant_type: 'client_credentials' }, { authorization: basic(id, rotated.clientSecret) })).status, 401);
    secret = noGrace.clientSecret;
  });

  it('a disabled service account gets invalid_client', async () => {
    await t.hub.serviceAccounts.setDisabled(id, true);
    const r = await token({ grant_type: 'client_credentials' }, { authorization: basic(id, secret) });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_client');
    await t.hub.serviceAccounts.setDisabled(id, false);
  });

  it('no secret, key or token is stored in clear', async () => {
    const { key } = await t.hub.apiKeys.create({ name: 'scan', roles: [] });
    const { readFileSync } = await import('node:fs');
    await t.hub.store.ping();
    const db = readFileSync(t.config.storage.sqlitePath);
    const wal = (() => { try { return readFileSync(`${t.config.storage.sqlitePath}-wal`); } catch { return Buffer.alloc(0); } })();
    for (const haystack of [db, wal]) {
      assert.ok(!haystack.includes(Buffer.from(secret)), 'client secret stored in clear');
      assert.ok(!haystack.includes(Buffer.from(key.slice(23))), 'API key secret stored in clear');
      assert.ok(!haystack.includes(Buffer.from('BEGIN PRIVATE KEY')), 'private key stored in clear');
    }
  });
});

describe('metadata and JWKS', () => {
  let t: TestHub;
  before(async () => { t = await startHub({ storage: 'memory' }); });
  after(async () => { await t.close(); });

  it('publishes the signing key with its kid and no private part', async () => {
    const jwks = await (await fetch(`${t.url}/.well-known/jwks.json`)).json() as { keys: Array<Record<string, unknown>> };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.kid, t.hub.keys.currentKid);
    assert.equal(jwks.keys[0]!.alg, 'RS256');
    assert.equal(jwks.keys[0]!.use, 'sig');
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(jwks.keys[0]![priv], undefined);
  });

  it('RFC 8414 metadata names the issuer and the endpoints that exist', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const m = await (await fetch(`${t.url}${path}`)).json() as Record<string, unknown>;
      assert.equal(m.issuer, t.config.jwt.issuer);
      assert.equal(m.token_endpoint, `${t.url}/auth/token`);
      assert.equal(m.jwks_uri, `${t.url}/.well-known/jwks.json`);
      assert.ok((m.grant_types_supported as string[]).includes('client_credentials'));
      for (const method of ['client_secret_basic', 'client_secret_post']) assert.ok((m.token_endpoint_auth_methods_supported as string[]).includes(method));
      const jwks = await fetch(m.jwks_uri as string);
      assert.equal(jwks.status, 200);
    }
  });

  it('/health and /ready answer', async () => {
    assert.equal((await fetch(`${t.url}/health`)).status, 200);
    const ready = await (await fetch(`${t.url}/ready`)).json() as Record<string, unknown>;
    assert.equal(ready.status, 'ready');
  });
});
