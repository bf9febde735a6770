import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { checkProviders } from '../../src/oidc/check.ts';
import { GOOGLE_TOKENINFO, tokeninfoEndpoint } from '../../src/oidc/bearer.ts';
import { mapClaims } from '../../src/oidc/claims.ts';
import { loadProviders } from '../../src/oidc/providers.ts';
import { safeReturnTo } from '../../src/oidc/return-to.ts';
import { MAX_COOKIE_VALUE_BYTES, Sessions, type SessionData } from '../../src/sessions/sessions.ts';
import { RecordCache } from '../../src/cache/records.ts';
import { createStore } from '../../src/storage/index.ts';
import { freePort, newRedisPrefix } from '../helpers/hub.ts';
import { startIdp } from '../helpers/idp.ts';

const cfg = (env: Record<string, string>) => loadConfig({ MIMIR_DATA_DIR: tmpdir(), ...env }, { dotenv: false });

describe('provider configuration', () => {
  it('keycloak issuer is derived as <server>/realms/<realm>', () => {
    const [p] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'keycloak', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_KEYCLOAK_SERVER_URL: 'https://sso.example.com', MIMIR_KEYCLOAK_REALM: 'mimir' }));
    assert.equal(p!.issuer, 'https://sso.example.com/realms/mimir');
  });

  it('okta custom authorization server and azure tenant issuers are derived', () => {
    const [okta] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'okta', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OKTA_DOMAIN: 'acme.okta.com', MIMIR_OKTA_AUTHORIZATION_SERVER: 'default' }));
    assert.equal(okta!.issuer, 'https://acme.okta.com/oauth2/default');
    const [azure] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'azure', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_AZURE_TENANT_ID: 'tid-1' }));
    assert.equal(azure!.issuer, 'https://login.microsoftonline.com/tid-1/v2.0');
  });

  it('auth0 issuer keeps its trailing slash', () => {
    const [p] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'auth0', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'https://acme.auth0.com' }));
    assert.equal(p!.issuer, 'https://acme.auth0.com/');
  });

  it('an http issuer on a non-loopback host stops the start, naming the variable', () => {
    assert.throws(() => loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'http://idp.example.com' })),
      (e: unknown) => e instanceof ConfigError && /MIMIR_OAUTH_ISSUER.*https/.test(e.problems.join()));
    assert.doesNotThrow(() => loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'http://127.0.0.1:9999' })));
  });

  it('a YAML providers file lists several providers with role mappings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prov-'));
    const file = join(dir, 'providers.yaml');
    writeFileSync(file, `providers:
  - id: corp
    kind: okta
    issuer: https://acme.okta.com/oauth2/default
    clientId: abc
    groupsToRoles: { Engineering: developer }
    roleMappings: { Engineering: [developer, analyst] }
  - id: google
    kind: google
    clientId: def
    hostedDomain: acme.com
`);
    const ps = loadProviders(cfg({ MIMIR_AUTH_PROVIDERS_FILE: file }));
    assert.deepEqual(ps.map((p) => p.id), ['corp', 'google']);
    assert.equal(ps[1]!.issuer, 'https://accounts.google.com');
    assert.deepEqual(mapClaims(ps[0]!, { sub: 'u', groups: ['Engineering'] }, 'oauth').principal.roles, ['developer', 'analyst']);
  });

  it('azure groups overage is reported, not silently dropped', () => {
    const [p] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'azure', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_AZURE_TENANT_ID: 't' }));
    const m = mapClaims(p!, { sub: 'u', roles: ['admin'], _claim_names: { groups: 'src1' } }, 'oauth');
    assert.equal(m.groupsOverage, true);
    assert.deepEqual(m.principal.roles, ['admin']);
  });
});

describe('issue 15: provider configuration', () => {
  const file = (providers: unknown[]) => {
    const path = join(mkdtempSync(join(tmpdir(), 'prov-')), 'providers.json');
    writeFileSync(path, JSON.stringify({ providers }));
    return path;
  };
  const problemsOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof ConfigError) return e.problems.join('\n');
      throw e;
    }
    return '';
  };

  it('opaqueTokens "userinfo" is refused for every kind but google, naming the entry, the field and the accepted values', () => {
    for (const kind of ['generic', 'okta', 'auth0', 'azure', 'keycloak', 'cognito']) {
      const problems = problemsOf(() => loadProviders(cfg({ MIMIR_AUTH_PROVIDERS_FILE: file([{ id: 'corp', kind, issuer: 'https://idp.example.com', clientId: 'c', opaqueTokens: 'userinfo' }]) })));
      assert.match(problems, /providers\.0 \(corp\): opaqueTokens: "userinfo".*"introspection" or "off"/, kind);
    }
    assert.equal(problemsOf(() => loadProviders(cfg({ MIMIR_AUTH_PROVIDERS_FILE: file([{ id: 'g', kind: 'google', clientId: 'c', opaqueTokens: 'userinfo' }]) }))), '');
  });

  for (const id of ['api-key', 'service-account']) {
    it(`provider id "${id}" is reserved`, () => {
      const problems = problemsOf(() => loadProviders(cfg({ MIMIR_AUTH_PROVIDERS_FILE: file([{ id, kind: 'generic', issuer: 'https://idp.example.com', clientId: 'c' }]) })));
      assert.match(problems, new RegExp(`providers\\.0 \\(${id}\\): id "${id}" is reserved`));
    });
  }

  it('tokeninfo: Google\'s own for Google\'s issuer, else the configured or the discovered one; none for other kinds', () => {
    const [google] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'google', MIMIR_OAUTH_CLIENT_ID: 'c' }));
    assert.equal(tokeninfoEndpoint(google!), GOOGLE_TOKENINFO);
    const [set] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'google', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'https://idp.example.com', MIMIR_OAUTH_TOKENINFO_ENDPOINT: 'https://idp.example.com/ti' }));
    assert.equal(tokeninfoEndpoint(set!, { tokeninfo_endpoint: 'https://idp.example.com/discovered' }), 'https://idp.example.com/ti');
    const [compatible] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'google', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'https://idp.example.com' }));
    assert.equal(tokeninfoEndpoint(compatible!), undefined);
    assert.equal(tokeninfoEndpoint(compatible!, { tokeninfo_endpoint: 'https://idp.example.com/discovered' }), 'https://idp.example.com/discovered');
    assert.equal(tokeninfoEndpoint(compatible!, { tokeninfo_endpoint: 'http://idp.example.com/discovered' }), undefined, 'http off loopback');
    const [generic] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'https://idp.example.com' }));
    assert.equal(tokeninfoEndpoint(generic!, { tokeninfo_endpoint: 'https://idp.example.com/ti' }), undefined);
  });

  it('audiences and trustEmail are read from the providers file; MIMIR_OAUTH_TRUST_EMAIL sets trustEmail of the single provider', () => {
    const [p] = loadProviders(cfg({ MIMIR_AUTH_PROVIDERS_FILE: file([{ id: 'corp', kind: 'generic', issuer: 'https://idp.example.com', clientId: 'c', audiences: ['other-app'], trustEmail: true }]) }));
    assert.deepEqual(p!.audiences, ['other-app']);
    assert.equal(p!.trustEmail, true);
    const [single] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'https://idp.example.com' }));
    assert.equal(single!.trustEmail, false);
    const [trusting] = loadProviders(cfg({ MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_ISSUER: 'https://idp.example.com', MIMIR_OAUTH_TRUST_EMAIL: 'true' }));
    assert.equal(trusting!.trustEmail, true);
  });

  it('email per kind: email_verified true or "true" (Cognito) keeps it, false or absent drops it; azure keeps it', () => {
    const of = (kind: string, claims: Record<string, unknown>) => {
      const [p] = loadProviders(cfg({ MIMIR_AUTH_PROVIDERS_FILE: file([{ id: 'x', kind, issuer: 'https://idp.example.com', clientId: 'c' }]) }));
      return mapClaims(p!, { sub: 'u', email: 'u@example.com', ...(kind === 'azure' ? { tid: '00000000-0000-0000-0000-000000000001' } : {}), ...claims }, 'oauth').principal.email;
    };
    for (const kind of ['okta', 'auth0', 'google', 'keycloak', 'cognito', 'generic']) {
      assert.equal(of(kind, { email_verified: true }), 'u@example.com', kind);
      assert.equal(of(kind, { email_verified: 'true' }), 'u@example.com', kind);
      assert.equal(of(kind, { email_verified: false }), undefined, kind);
      assert.equal(of(kind, { email_verified: 'false' }), undefined, kind);
      assert.equal(of(kind, {}), undefined, kind);
    }
    assert.equal(of('azure', {}), 'u@example.com');
  });
});

describe('returnTo', () => {
  it('keeps same-origin paths and turns everything else into /', () => {
    assert.equal(safeReturnTo('/api/nodes?x=1'), '/api/nodes?x=1');
    for (const bad of ['//evil.example', 'https://evil.example', '/\\evil.example', 'javascript:alert(1)', '/\t/evil.example', undefined]) {
      assert.equal(safeReturnTo(bad), '/', String(bad));
    }
  });
});

describe('providers check', () => {
  it('reports a reachable IdP as OK and an unreachable one with an actionable problem', async () => {
    const idp = await startIdp({ kind: 'keycloak', redirectUris: ['http://127.0.0.1:1/auth/callback'] });
    const dead = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'prov-'));
    const file = join(dir, 'providers.json');
    writeFileSync(file, JSON.stringify([
      { id: 'up', kind: 'keycloak', issuer: idp.issuer, clientId: idp.clientId },
      { id: 'down', kind: 'generic', issuer: `http://127.0.0.1:${dead}`, clientId: 'x' },
    ]));
    try {
      const reports = await checkProviders(cfg({ MIMIR_AUTH_PROVIDERS_FILE: file }));
      assert.equal(reports.find((r) => r.id === 'up')!.ok, true);
      const down = reports.find((r) => r.id === 'down')!;
      assert.equal(down.ok, false);
      assert.match(down.problems.join(), /discovery failed/);
    } finally {
      await idp.close();
    }
  });
});

describe('sessions', () => {
  const identity = { sub: 'jane', roles: ['developer'], groups: Array.from({ length: 40 }, (_, i) => `group-${i}`), provider: 'kc', email: 'jane@example.com' };

  it('cookie mode: sealed, under 4 KB, tamper-proof, and revocable at sign-out', async () => {
    const store = await createStore({ kind: 'memory', sqlitePath: '', redis: { url: '', db: 0, keyPrefix: '' } });
    const sessions = new Sessions(store, { mode: 'cookie', key: randomBytes(32), cookieName: 's', idleSeconds: 900, absoluteSeconds: 3600 });
    const { cookie } = await sessions.create(identity, { idpRefreshToken: 'r'.repeat(400), idToken: 'i'.repeat(1200) });
    assert.ok(cookie.length <= MAX_COOKIE_VALUE_BYTES);
    assert.doesNotMatch(cookie, /jane/);
    assert.equal((await sessions.resolve(cookie))!.sub, 'jane');
    const tampered = cookie.slice(0, -2) + (cookie.endsWith('A') ? 'BB' : 'AA');
    assert.equal(await sessions.resolve(tampered), null);
    await sessions.destroy(cookie);
    assert.equal(await sessions.resolve(cookie), null);
    await store.close();
  });

  for (const kind of ['memory', 'redis'] as const) {
    it(`${kind}: the idle timeout slides with use and the absolute lifetime does not`, async () => {
      const store = await createStore({ kind, sqlitePath: '', redis: { url: process.env.MIMIR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', db: 0, keyPrefix: newRedisPrefix() } });
      let t = Date.now();
      const sessions = new Sessions(store, { mode: 'store', key: randomBytes(32), cookieName: 's', idleSeconds: 100, absoluteSeconds: 250, now: () => t });
      try {
        const { cookie } = await sessions.create(identity, { idpRefreshToken: 'idp-refresh' });
        const { session } = (await sessions.read(cookie))!;
        assert.equal(sessions.open(session, 'idpRefreshToken'), 'idp-refresh');
        assert.doesNotMatch(JSON.stringify(session), /idp-refresh/);
        t += 80_000; assert.ok(await sessions.resolve(cookie)); // slides
        t += 80_000; assert.ok(await sessions.resolve(cookie)); // 160 s after start, 80 s idle
        t += 100_000; assert.equal(await sessions.resolve(cookie), null); // past the absolute lifetime
        const second = await sessions.create(identity);
        t += 101_000; assert.equal(await sessions.resolve(second.cookie), null); // idle too long
      } finally {
        await store.close();
      }
    });
  }

  it('peek answers from the session cache only while no read, slide or expiry is due', async () => {
    const store = await createStore({ kind: 'memory', sqlitePath: '', redis: { url: '', db: 0, keyPrefix: '' } });
    let t = Date.now();
    const cache = new RecordCache<SessionData>({ maxEntries: 10, maxAgeMs: 3_600_000, now: () => t });
    const sessions = new Sessions(store, { mode: 'store', key: randomBytes(32), cookieName: 's', idleSeconds: 100, absoluteSeconds: 250, now: () => t, cache });
    try {
      const { cookie } = await sessions.create(identity);
      assert.equal(sessions.peek(cookie), undefined, 'not cached before its first read');
      assert.deepEqual(cache.lookups, { hits: 0, misses: 0 }, 'a peek that cannot answer counts nothing (resolve counts)');
      assert.equal((await sessions.resolve(cookie))!.sub, 'jane');
      assert.deepEqual(cache.lookups, { hits: 0, misses: 1 });
      assert.deepEqual(sessions.peek(cookie), await sessions.resolve(cookie), 'cached: the same Principal without I/O');
      assert.deepEqual(cache.lookups, { hits: 2, misses: 1 }, 'one hit per answer');
      assert.equal(sessions.peek('another-cookie'), undefined);
      t += 10_000; // the slide is due after a tenth of the idle timeout: resolve must run to write it
      assert.equal(sessions.peek(cookie), undefined);
      assert.ok(await sessions.resolve(cookie));
      assert.equal(sessions.peek(cookie), undefined, 'the slide dropped the cached copy');
      assert.ok(await sessions.resolve(cookie));
      assert.ok(sessions.peek(cookie));
      t += 101_000; // idle beyond the timeout
      assert.equal(sessions.peek(cookie), undefined);
      assert.equal(await sessions.resolve(cookie), null);
      const other = await sessions.create(identity);
      await sessions.resolve(other.cookie);
      assert.ok(sessions.peek(other.cookie));
      await sessions.end(other.session.sid);
      assert.equal(sessions.peek(other.cookie), undefined, 'an ended session is never peeked');
    } finally {
      await store.close();
    }
  });
});
