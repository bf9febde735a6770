import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envExample, loadConfig, redactedVariables } from '../../src/config/index.ts';
import { VARIABLES } from '../../src/config/variables.ts';

const load = (env: Record<string, string>) => loadConfig(env, { dotenv: false });
const problems = (env: Record<string, string>): string[] => {
  try {
    load(env);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  assert.fail('expected a ConfigError');
};

describe('configuration', () => {
  it('applies the seed defaults and the hub additions', () => {
    const c = load({});
    assert.equal(c.port, 9042);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.publicUrl, 'http://localhost:9042');
    assert.equal(c.jwt.issuer, 'http://localhost:9042');
    assert.equal(c.jwt.algorithm, 'RS256');
    assert.equal(c.jwt.audience, 'mimir-api');
    assert.equal(c.jwt.accessTokenLifetime, 3600);
    assert.equal(c.jwt.refreshTokenLifetime, 2592000);
    assert.equal(c.storage.kind, 'sqlite');
    assert.equal(c.storage.redis.keyPrefix, 'mimir:tokens:');
    assert.equal(c.session.cookie.name, '__Host-mimir_session');
    assert.equal(c.session.cookie.sameSite, 'strict');
    assert.equal(c.serviceAccounts.tokenLifetime, 86400);
    assert.equal(c.userContext.idHeader, 'X-User-ID');
    assert.deepEqual([...c.authMethods], ['api-key', 'oauth', 'jwt']);
    assert.equal(c.metrics.endpoint, '/metrics/auth');
    assert.equal(c.security.stateTimeout, 600);
  });

  it('is frozen', () => {
    const c = load({});
    assert.throws(() => { (c as { port: number }).port = 1; }, TypeError);
    assert.throws(() => { (c.jwt as { audience: string }).audience = 'x'; }, TypeError);
  });

  it('maps the seed storage names: database means sqlite', () => {
    assert.equal(load({ MIMIR_TOKEN_STORAGE: 'database' }).storage.kind, 'sqlite');
    assert.equal(load({ MIMIR_TOKEN_STORAGE: 'sqlite' }).storage.kind, 'sqlite');
    assert.equal(load({ MIMIR_TOKEN_STORAGE: 'memory' }).storage.kind, 'memory');
    assert.equal(load({ MIMIR_TOKEN_STORAGE: 'redis' }).storage.kind, 'redis');
  });

  it('database means PostgreSQL when MIMIR_DATABASE_URL is set, SQLite otherwise; sessions follow the same rule', () => {
    const url = 'postgres://mimir:pw@db.example:5432/mimir';
    const withUrl = load({ MIMIR_TOKEN_STORAGE: 'database', MIMIR_DATABASE_URL: url });
    assert.equal(withUrl.storage.kind, 'postgres');
    assert.deepEqual(withUrl.storage.postgres, { url });
    assert.equal(withUrl.session.storage, 'postgres');
    assert.equal(load({ MIMIR_DATABASE_URL: url }).storage.kind, 'postgres', 'database is the default');
    assert.equal(load({ MIMIR_TOKEN_STORAGE: 'postgres', MIMIR_DATABASE_URL: 'postgresql://db/mimir' }).storage.kind, 'postgres');
    assert.equal(load({ MIMIR_TOKEN_STORAGE: 'redis', MIMIR_SESSION_STORAGE: 'database', MIMIR_DATABASE_URL: url }).session.storage, 'postgres');
    assert.equal(load({ MIMIR_TOKEN_STORAGE: 'redis', MIMIR_SESSION_STORAGE: 'database' }).session.storage, 'sqlite');
    const without = load({ MIMIR_TOKEN_STORAGE: 'database' });
    assert.equal(without.storage.kind, 'sqlite');
    assert.equal(without.storage.postgres, undefined);
    assert.equal(without.session.storage, 'sqlite');
  });

  it('postgres storage without MIMIR_DATABASE_URL is a configuration error naming it', () => {
    assert.deepEqual(problems({ MIMIR_TOKEN_STORAGE: 'postgres' }), [
      'MIMIR_DATABASE_URL: is required when MIMIR_TOKEN_STORAGE is postgres; set it to postgres://user:password@host:5432/database',
    ]);
    assert.match(problems({ MIMIR_TOKEN_STORAGE: 'redis', MIMIR_SESSION_STORAGE: 'postgres' })[0]!, /^MIMIR_DATABASE_URL: is required when MIMIR_SESSION_STORAGE is postgres/);
  });

  it('MIMIR_DATABASE_URL must be a postgres:// or postgresql:// URL; the message masks its password', () => {
    for (const bad of ['mysql://u:topsecret@db/x', 'redis://u:topsecret@db:6379', 'db.example:5432', 'postgres://u:topsecret@ spaced/x']) {
      const [problem, ...rest] = problems({ MIMIR_DATABASE_URL: bad });
      assert.equal(rest.length, 0);
      assert.match(problem!, /^MIMIR_DATABASE_URL: .* is not a postgres:\/\/ or postgresql:\/\/ URL/);
      assert.doesNotMatch(problem!, /topsecret/);
    }
  });

  it('names the variable, the problem and what is accepted', () => {
    assert.deepEqual(problems({ MIMIR_JWT_ALGORITHM: 'RS257' }), ['MIMIR_JWT_ALGORITHM: "RS257" is not one of RS256, ES256, EdDSA, HS256']);
    assert.match(problems({ MIMIR_AUTH_PORT: 'eighty' })[0]!, /^MIMIR_AUTH_PORT: "eighty" is not a whole number from 0 to 65535/);
    assert.match(problems({ MIMIR_TOKEN_STORAGE: 'mysql' })[0]!, /^MIMIR_TOKEN_STORAGE: "mysql" is not one of database, sqlite, postgres, redis, memory/);
    assert.match(problems({ MIMIR_ENABLE_TOKEN_REFRESH: 'maybe' })[0]!, /^MIMIR_ENABLE_TOKEN_REFRESH: "maybe" is not a boolean/);
    assert.match(problems({ MIMIR_AUTH_METHODS: 'api-key,saml' })[0]!, /^MIMIR_AUTH_METHODS: "saml" is not one of api-key, oauth, jwt/);
    assert.match(problems({ MIMIR_OAUTH_ISSUER: 'not a url' })[0]!, /^MIMIR_OAUTH_ISSUER: "not a url" is not an http\(s\) URL/);
  });

  it('issue 18: revocation staleness defaults to 5 s and is at least 2 (a heartbeat and its round trip); shutdown waits 10 s by default', () => {
    assert.equal(load({}).revocation.maxStaleness, 5);
    assert.equal(load({}).shutdownTimeout, 10);
    assert.equal(load({ MIMIR_REVOCATION_MAX_STALENESS: '2', MIMIR_SHUTDOWN_TIMEOUT: '1' }).revocation.maxStaleness, 2);
    assert.match(problems({ MIMIR_REVOCATION_MAX_STALENESS: '0' })[0]!, /^MIMIR_REVOCATION_MAX_STALENESS: "0" is not a whole number from 2 to 3600/);
    assert.match(problems({ MIMIR_SHUTDOWN_TIMEOUT: '0' })[0]!, /^MIMIR_SHUTDOWN_TIMEOUT: "0" is not a whole number from 1 to 3600/);
  });

  it('reports every bad variable at once', () => {
    const p = problems({ MIMIR_JWT_ALGORITHM: 'none', MIMIR_REDIS_DB: '99' });
    assert.equal(p.length, 2);
    assert.ok(p.some((l) => l.startsWith('MIMIR_JWT_ALGORITHM:')));
    assert.ok(p.some((l) => l.startsWith('MIMIR_REDIS_DB:')));
  });

  it('refuses HS256 with a short secret, a missing one, or a seed placeholder', () => {
    assert.match(problems({ MIMIR_JWT_ALGORITHM: 'HS256', MIMIR_JWT_SECRET: 'short' })[0]!, /^MIMIR_JWT_SECRET: is 5 bytes; HS256 needs at least 32 bytes/);
    assert.match(problems({ MIMIR_JWT_ALGORITHM: 'HS256' })[0]!, /^MIMIR_JWT_SECRET: is required/);
    assert.match(problems({ MIMIR_JWT_ALGORITHM: 'HS256', MIMIR_JWT_SECRET: 'your-jwt-secret-key' })[0]!, /^MIMIR_JWT_SECRET: is a placeholder/);
    assert.match(problems({ MIMIR_JWT_SECRET: 'change-me-in-production' })[0]!, /^MIMIR_JWT_SECRET: is a placeholder/);
    assert.match(problems({ MIMIR_SESSION_SECRET: 'your-session-secret' })[0]!, /^MIMIR_SESSION_SECRET: is a placeholder/);
    assert.equal(load({ MIMIR_JWT_ALGORITHM: 'HS256', MIMIR_JWT_SECRET: 'x'.repeat(32) }).jwt.algorithm, 'HS256');
  });

  it('loads .env from the working directory, the environment winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-env-'));
    writeFileSync(join(dir, '.env'), 'MIMIR_AUTH_PORT=9100\nMIMIR_JWT_AUDIENCE=from-file\n');
    const c = loadConfig({ MIMIR_JWT_AUDIENCE: 'from-env' }, { cwd: dir });
    assert.equal(c.port, 9100);
    assert.equal(c.jwt.audience, 'from-env');
  });

  it('redacts every secret when printed', () => {
    const c = load({
      MIMIR_JWT_SECRET: 's'.repeat(40), MIMIR_OAUTH_CLIENT_SECRET: 'idp-secret-value', MIMIR_REDIS_URL: 'redis://user:hunter2hunter2@redis.example:6379',
      MIMIR_DATABASE_URL: 'postgres://mimir:pg-pass-value@db.example:5432/mimir',
    });
    const printed = JSON.stringify(redactedVariables(c));
    assert.ok(!printed.includes('s'.repeat(40)));
    assert.ok(!printed.includes('idp-secret-value'));
    assert.ok(!printed.includes('hunter2hunter2'));
    assert.ok(!printed.includes('pg-pass-value'));
    assert.match(printed, /"MIMIR_DATABASE_URL":"postgres:\/\/mimir:\*\*\*@db\.example:5432\/mimir"/);
    assert.match(printed, /"MIMIR_JWT_SECRET":"<redacted>"/);
  });

  it('.env.example lists every variable the config module reads, with its default', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    assert.equal(example, envExample(), '.env.example is stale: run `npm run docs`');
    for (const v of VARIABLES) assert.match(example, new RegExp(`^#? ?${v.name}=${v.default ?? ''}$`, 'm'), v.name);
    // and every variable the config module reads is documented: it reads exactly the described ones
    // (the schema is built from the descriptions, src/config/variables.ts).
    const read = Object.keys(loadConfig({}, { dotenv: false }).variables);
    assert.deepEqual(new Set(read), new Set(VARIABLES.map((v) => v.name)));
  });
});
