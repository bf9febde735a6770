/**
 * MIMIR_SESSION_STORAGE other than MIMIR_TOKEN_STORAGE (issue 18: "several on PostgreSQL, with
 * Redis for sessions"): tokens and keys in PostgreSQL, sign-in sessions in Redis. A session made
 * on hub A is a Redis record (none in PostgreSQL) and works on hub B; signing out on A ends it on B.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Redis } from 'ioredis';
import { escapeGlob } from '../../src/storage/redis.ts';
import { newRedisPrefix, REDIS_URL, startHub, type TestHub } from '../helpers/hub.ts';
import { freshDatabase } from '../helpers/postgres.ts';
import { me, sessionCookie, signIn, startRig, type Rig } from '../oidc/setup.ts';

describe('sessions in Redis, everything else in PostgreSQL, two hubs', () => {
  let rig: Rig;
  let b: TestHub;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const prefix = newRedisPrefix();
  const shared = () => ({
    MIMIR_TOKEN_STORAGE: 'postgres', MIMIR_DATABASE_URL: db.url,
    MIMIR_SESSION_STORAGE: 'redis', MIMIR_REDIS_URL: REDIS_URL, MIMIR_REDIS_KEY_PREFIX: prefix,
    MIMIR_JWT_SECRET: 'session-store-test-secret-at-least-32-bytes!!', MIMIR_SESSION_SECRET: 'session-store-test-session-secret-32-bytes!!',
  });

  before(async () => {
    db = await freshDatabase();
    rig = await startRig({ corp: 'okta' }, { storage: 'postgres', env: shared() });
    b = await startHub({ storage: 'postgres', env: { ...shared(), MIMIR_AUTH_PROVIDERS_FILE: rig.hub.config.variables.MIMIR_AUTH_PROVIDERS_FILE!, MIMIR_SESSION_COOKIE_SECURE: 'false' } });
  });
  after(async () => {
    await b?.close();
    await rig?.close();
    await db?.drop();
  });

  it('a session made on A is kept in Redis, not PostgreSQL, and works on B; signing out on A ends it on B', async () => {
    const { session } = await signIn(rig, 'corp');
    assert.ok(session, 'signed in');
    assert.equal((await me(rig.hub, { cookie: sessionCookie(rig.hub, session) })).status, 200);

    const redis = new Redis(REDIS_URL);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}session:*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      assert.equal(keys.length, 1, 'one session record in Redis');
      const rows = await client.query("SELECT count(*)::int AS n FROM mimir_auth.records WHERE kind LIKE 'session%'");
      assert.equal(rows.rows[0].n, 0, 'no session record in PostgreSQL');
      const keysInPg = await client.query("SELECT count(*)::int AS n FROM mimir_auth.records WHERE kind = 'signing_key'");
      assert.ok(keysInPg.rows[0].n >= 1, 'signing keys are in PostgreSQL');
    } finally {
      await redis.quit();
      await client.end();
    }

    assert.equal((await me(b, { cookie: sessionCookie(b, session) })).status, 200, 'B reads the session from Redis');
    const out = await fetch(`${rig.hub.url}/auth/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session), origin: rig.hub.url } });
    assert.ok(out.status < 400, `signed out: ${out.status}`);
    const deadline = Date.now() + 2000;
    let status = 200;
    while (Date.now() < deadline && status === 200) {
      status = (await me(b, { cookie: sessionCookie(b, session) })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 401, 'the session ended on B too');
    const ready = await fetch(`${b.url}/ready`);
    assert.equal(ready.status, 200, 'ready: both stores answer');
  });
});
