/**
 * Issue 17 item 13: MIMIR_REFRESH_REUSE_INTERVAL. Within it, the refresh token just rotated out
 * may be presented again (two tabs, a retry after a lost response) and gets a working token pair
 * of the same family; after it, or for any older token, reuse revokes the family as before.
 * Issue 17 review F1: once only per rotated-out token, and only one of the two answers may go on
 * refreshing: a replayed stolen token forks the family at most once, and the fork is caught (the
 * family revoked) as soon as both branches advance.
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

    it('within the interval the just-rotated token gets a working pair on another hub; the client keeps one answer and it goes on refreshing', async () => {
      const first = await login(a);
      const one = await assertWorkingPair(a, await refresh(a, first));
      // The answer was lost; the client presents the same token again, this time at hub B.
      const again = await refreshAtTokenEndpoint(b, first);
      const two = await assertWorkingPair(b, again);
      assert.notEqual(one, two);
      assert.ok(events.some((e) => e.type === 'refresh' && e.outcome === 'success' && e.reuse_interval === true));
      assert.equal(events.some((e) => e.type === 'refresh_reuse_detected'), false);
      // The client kept the second answer (the first was lost): it goes on refreshing, on both hubs.
      let token = two;
      for (const t of [a, b, a]) token = await assertWorkingPair(t, await refresh(t, token));
      assert.equal(events.some((e) => e.type === 'refresh_reuse_detected'), false);
    });

    it('either answer may be the one kept: the first answer goes on refreshing when the second is never used', async () => {
      const first = await login(a);
      const one = await assertWorkingPair(a, await refresh(a, first));
      await assertWorkingPair(b, await refresh(b, first));
      let token = one;
      for (const t of [b, a]) token = await assertWorkingPair(t, await refresh(t, token));
    });

    it('two simultaneous requests with one refresh token (two tabs), one per hub, both get a working pair; the one kept goes on refreshing', async () => {
      const first = await login(a);
      const answers = await Promise.all([refresh(a, first), refresh(b, first)]);
      const tokens = await Promise.all(answers.map((res, i) => assertWorkingPair(i ? b : a, res)));
      assert.notEqual(tokens[0], tokens[1]);
      let token = tokens[1]!;
      for (const t of [a, b]) token = await assertWorkingPair(t, await refresh(t, token));
    });

    it('a stolen token replayed 20 times within the interval gets at most one reissue; the next replay revokes the family', async () => {
      const first = await login(a);
      const legit = await assertWorkingPair(a, await refresh(a, first));
      const seen = events.length;
      const replays: Reply[] = [];
      for (let i = 0; i < 20; i++) replays.push(await refresh(i % 2 ? a : b, first));
      const won = replays.filter((r) => r.status === 200);
      assert.ok(won.length <= 1, `reissues: ${won.length}`);
      for (const r of replays.filter((x) => x.status !== 200)) {
        assert.equal(r.status, 400);
        assert.equal(r.body.error, 'invalid_grant');
      }
      assert.ok(events.slice(seen).some((e) => e.type === 'refresh_reuse_detected'));
      // The family is revoked: neither the legitimate token nor the attacker's reissue refreshes.
      assert.equal((await refresh(a, legit)).body.error, 'invalid_grant');
      for (const r of won) assert.equal((await refresh(b, r.body.refresh_token)).body.error, 'invalid_grant');
    });

    it('simultaneous replays of one token on both hubs: at most two answers, and the family is revoked', async () => {
      const first = await login(a);
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => refresh(i % 2 ? b : a, first)));
      const won = answers.filter((r) => r.status === 200);
      assert.ok(won.length >= 1 && won.length <= 2, JSON.stringify(answers.map((r) => r.status)));
      for (const r of answers.filter((x) => x.status !== 200)) assert.equal(r.body.error, 'invalid_grant');
      for (const r of won) assert.equal((await refresh(a, r.body.refresh_token)).body.error, 'invalid_grant');
    });

    it('when both answers go on refreshing, the fork is reuse: the family is revoked', async () => {
      const first = await login(a);
      const legit = await assertWorkingPair(a, await refresh(a, first));
      const stolen = await assertWorkingPair(b, await refresh(b, first)); // the thief's one reissue
      const legitNext = await assertWorkingPair(a, await refresh(a, legit));
      const seen = events.length;
      const fork = await refresh(b, stolen);
      assert.equal(fork.status, 400);
      assert.equal(fork.body.error, 'invalid_grant');
      assert.ok(events.slice(seen).some((e) => e.type === 'refresh_reuse_detected'));
      assert.equal((await refresh(a, legitNext)).body.error, 'invalid_grant', 'the whole family is revoked');
    });

    it('the fork is caught after the interval too: the other answer advancing much later revokes the family', async () => {
      const first = await login(a);
      const legit = await assertWorkingPair(a, await refresh(a, first));
      const stolen = await assertWorkingPair(b, await refresh(b, first));
      // The thief rotates first; the legitimate client comes back after the interval.
      const thiefNext = await assertWorkingPair(b, await refresh(b, stolen));
      await sleep((INTERVAL + 1.2) * 1000);
      const back = await refresh(a, legit);
      assert.equal(back.status, 400);
      assert.equal(back.body.error, 'invalid_grant');
      assert.equal((await refresh(b, thiefNext)).body.error, 'invalid_grant', 'the thief\'s branch went with the family');
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
