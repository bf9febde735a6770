/**
 * Issue 17 item 13: MIMIR_REFRESH_REUSE_INTERVAL. Within it, the refresh token just rotated out
 * may be presented again (two tabs, a retry after a lost response) and gets a working token pair
 * of the same family; after it, or for any older token, reuse revokes the family as before.
 * Real HTTP against two hubs sharing one store, on SQLite, Redis and PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../../../src/audit/index.ts';
import { get, login, postForm, postJson, type Reply } from '../../helpers/http.ts';
import { newRedisPrefix, startHub, type StartOptions, type TestHub } from '../../helpers/hub.ts';
import { freshDatabase, type FreshDatabase } from '../../helpers/postgres.ts';

const INTERVAL = 2;
const STORES = ['sqlite', 'redis', 'postgres'] as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const storage of STORES) {
  describe(`refresh reuse interval on ${storage} (MIMIR_REFRESH_REUSE_INTERVAL=${INTERVAL}, two hubs on one store)`, () => {
    let a: TestHub;
    let b: TestHub;
    /** Two more hubs on the same store with the interval off (the default). */
    let strictA: TestHub;
    let strictB: TestHub;
    let db: FreshDatabase | undefined;
    let dataDir: string | undefined;
    const events: AuditEvent[] = [];

    before(async () => {
      const shared: Record<string, string> = { MIMIR_JWT_SECRET: 'reuse-interval-test-secret-at-least-32-bytes', MIMIR_JWT_ISSUER: 'https://hub.example' };
      const options: StartOptions = { storage };
      if (storage === 'postgres') {
        db = await freshDatabase();
        shared.MIMIR_DATABASE_URL = db.url;
      }
      if (storage === 'redis') options.redisPrefix = newRedisPrefix();
      if (storage === 'sqlite') options.dataDir = dataDir = mkdtempSync(join(tmpdir(), 'mimir-reuse-'));
      const start = (interval: number) => startHub({ ...options, env: { ...shared, MIMIR_REFRESH_REUSE_INTERVAL: String(interval) } });
      a = await start(INTERVAL);
      b = await start(INTERVAL);
      strictA = await start(0);
      strictB = await start(0);
      for (const t of [a, b]) t.hub.audit.observe((e) => events.push(e));
    });
    after(async () => {
      for (const t of [a, b, strictA, strictB]) await t?.close();
      await db?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    const refresh = (t: TestHub, token: string) => postJson(`${t.url}/auth/refresh`, { refresh_token: token });
    const refreshAtTokenEndpoint = (t: TestHub, token: string) => postForm(`${t.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: token, client_id: 'mimir-cli' });

    /** A token pair that works: the access token reads /auth/me, the refresh token refreshes. */
    async function assertWorkingPair(t: TestHub, res: Reply): Promise<string> {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.match(res.body.refresh_token, /^[A-Za-z0-9_-]{43}$/);
      const me = await get(`${t.url}/auth/me`, { authorization: `Bearer ${res.body.access_token}` });
      assert.equal(me.status, 200, JSON.stringify(me.body));
      return res.body.refresh_token as string;
    }

    it('within the interval the just-rotated token gets a working pair on another hub; both answers stay members of the family', async () => {
      const first = await login(a);
      const one = await assertWorkingPair(a, await refresh(a, first));
      // The answer was lost; the client presents the same token again, this time at hub B.
      const again = await refreshAtTokenEndpoint(b, first);
      const two = await assertWorkingPair(b, again);
      assert.notEqual(one, two);
      assert.ok(events.some((e) => e.type === 'refresh' && e.outcome === 'success' && e.reuse_interval === true));
      assert.equal(events.some((e) => e.type === 'refresh_reuse_detected'), false);
      // Both go on refreshing: one family, not revoked.
      const next1 = await assertWorkingPair(a, await refresh(a, one));
      await assertWorkingPair(b, await refresh(b, two));
      await assertWorkingPair(b, await refresh(b, next1));
    });

    it('simultaneous requests with one refresh token, on both hubs, all succeed within the interval, each with its own token', async () => {
      const first = await login(a);
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => refresh(i % 2 ? b : a, first)));
      const tokens = await Promise.all(answers.map((res, i) => assertWorkingPair(i % 2 ? b : a, res)));
      assert.equal(new Set(tokens).size, answers.length);
      // Every one of them is a live member of the family.
      for (const [i, token] of tokens.entries()) await assertWorkingPair(i % 2 ? a : b, await refresh(i % 2 ? a : b, token));
    });

    it('only the immediately previous token qualifies: once its successor was used, presenting it revokes the family', async () => {
      const first = await login(a);
      const second = await assertWorkingPair(a, await refresh(a, first));
      const third = await assertWorkingPair(b, await refresh(b, second));
      const old = await refresh(b, first); // within the interval, but two rotations back
      assert.equal(old.status, 400);
      assert.equal(old.body.error, 'invalid_grant');
      const after = await refresh(a, third);
      assert.equal(after.status, 400, 'the family is revoked');
      assert.equal(after.body.error, 'invalid_grant');
    });

    it('after the interval, reuse revokes the family as without it', async () => {
      const first = await login(a);
      const second = await assertWorkingPair(a, await refresh(a, first));
      const seen = events.length;
      await sleep((INTERVAL + 1.2) * 1000);
      const late = await refresh(b, first);
      assert.equal(late.status, 400);
      assert.equal(late.body.error, 'invalid_grant');
      assert.ok(events.slice(seen).some((e) => e.type === 'refresh_reuse_detected'));
      const next = await refresh(a, second);
      assert.equal(next.status, 400, 'the family is revoked on every hub');
      assert.equal(next.body.error, 'invalid_grant');
    });

    it('a revoked family stays revoked: the just-rotated token gets nothing within the interval', async () => {
      const first = await login(a);
      const second = await assertWorkingPair(a, await refresh(a, first));
      const family = (await a.hub.refreshTokens.inspect(second))!.family.familyId;
      await a.hub.refreshTokens.revokeFamily(family, 'test');
      const again = await refresh(b, first);
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'invalid_grant');
      assert.equal((await refresh(b, second)).status, 400);
    });

    it('with the interval off (default 0), of simultaneous requests with one token exactly one wins and the replay revokes the family', async () => {
      const first = await login(strictA);
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => refresh(i % 2 ? strictB : strictA, first)));
      const won = answers.filter((r) => r.status === 200);
      assert.equal(won.length, 1, JSON.stringify(answers.map((r) => r.status)));
      for (const r of answers.filter((x) => x.status !== 200)) assert.equal(r.body.error, 'invalid_grant');
      const next = await refresh(strictA, won[0]!.body.refresh_token);
      assert.equal(next.status, 400, 'the winner\'s token went with the family');
      // And a plain replay right after a rotation revokes too.
      const other = await login(strictA);
      const rotated = await assertWorkingPair(strictA, await refresh(strictA, other));
      assert.equal((await refresh(strictB, other)).status, 400);
      assert.equal((await refresh(strictA, rotated)).status, 400);
    });
  });
}
