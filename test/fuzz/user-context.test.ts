/**
 * Fuzzing proxied requests (the fast path and the Fastify route) with generated credentials and
 * user-context headers (X-User-ID, X-User-Email, X-User-Roles, src/proxy/user-context.ts): the
 * hub answers without a 5xx, and the upstream sees the caller's own identity unless the caller is
 * a service account allowed to assert one, which then never gains a role it does not hold.
 *
 *   node --test test/fuzz/user-context.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/user-context.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…             replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { serviceAccountToken } from '../helpers/hub.ts';
import { startFront, type Front } from '../proxy/setup.ts';
import { assertAlive, assertApiAnswer, fieldValue, fuzz, hostile, raw, RUNS, show } from './support.ts';

describe('fuzz: credentials and user-context headers on proxied requests', () => {
  let f: Front;
  /** Who may call, and what the upstream must see as the user for each. */
  const callers: Array<{ name: string; header: [string, string]; sub: string; mayAssert: boolean }> = [];

  before(async () => {
    f = await startFront();
    const dev = await f.t.hub.apiKeys.create({ name: 'dev', roles: ['developer'] });
    const plain = await serviceAccountToken(f.t, ['developer'], 'fuzz-plain');
    const { clientSecret } = await f.t.hub.serviceAccounts.create({ clientId: 'fuzz-pctx', roles: ['developer'], allowUserContext: true });
    const res = await raw(f.t.url, {
      method: 'POST', path: '/auth/token', body: 'grant_type=client_credentials',
      headers: [['authorization', `Basic ${Buffer.from(`fuzz-pctx:${clientSecret}`).toString('base64')}`], ['content-type', 'application/x-www-form-urlencoded']],
    });
    const pctx = (JSON.parse(res.body) as { access_token: string }).access_token;
    callers.push(
      { name: 'api key', header: ['x-api-key', dev.key], sub: `api-key:${dev.record.id}`, mayAssert: false },
      { name: 'service account', header: ['authorization', `Bearer ${plain.token}`], sub: 'service-account:fuzz-plain', mayAssert: false },
      { name: 'service account allowed user context', header: ['authorization', `Bearer ${pctx}`], sub: 'service-account:fuzz-pctx', mayAssert: true },
    );
  });
  after(async () => { await f?.close(); });

  // Repeated X-User-* headers are item 10 of issue 15 (fixed elsewhere): each is sent at most once.
  const userHeaders = fc.record({
    id: hostile(['alice', 'bob@example.com', ' alice ', 'a'.repeat(256), '']),
    email: hostile(['alice@example.com', 'not-an-email', '@', 'a@b@c']),
    roles: fc.array(hostile(['viewer', 'developer', 'admin', 'analyst', 'no-such-role', 'a b', 'constructor', '__proto__']), { maxLength: 3 })
      .chain((r) => fc.constantFrom(r.join(','), r.join(' , '), `${r.join(',')},`)),
  }, { requiredKeys: [], noNullPrototype: true });

  it('any user-context headers answer 200 with the identity the caller may use, or a JSON 4xx', async () => {
    const request = fc.record({
      caller: fc.nat({ max: 2 }),
      method: fc.constantFrom('GET', 'GET', 'HEAD', 'POST', 'DELETE'),
      path: fc.constantFrom('/api/nodes/1', '/api/nodes', '/api/search/q', '/api/files/x', '/v1/models', '/api/unknown'),
      user: userHeaders,
      credential: fc.constantFrom('as is', 'as is', 'as is', 'twice', 'lower-case scheme'),
      // Headers a proxy must not pass on as they are (RFC 9110 §7.6.1, forwarding, credentials), and others.
      extra: fc.array(fc.tuple(
        fc.constantFrom('connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'forwarded', 'x-forwarded-for',
          'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-token', 'x-real-ip', 'via', 'authorization', 'x-api-key', 'cookie', 'x-custom'),
        hostile(['x-api-key', 'close', 'keep-alive, x-user-id', 'upgrade', 'websocket', 'trailers', 'for=1.2.3.4', '1.2.3.4', 'evil.example', 'https', 'Bearer x']),
      ), { maxLength: 3 }),
    }, { noNullPrototype: true });
    const seen = new Set<number>();
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const c = callers[r.caller]!;
      const credential: Array<[string, string]> = r.credential === 'twice' ? [c.header, c.header]
        : r.credential === 'lower-case scheme' ? [[c.header[0], c.header[1].replace(/^Bearer/, 'bearer')]] : [c.header];
      const headers: Array<[string, string]> = [...credential, ...r.extra,
        ...(r.user.id !== undefined ? [['x-user-id', r.user.id] as [string, string]] : []),
        ...(r.user.email !== undefined ? [['x-user-email', r.user.email] as [string, string]] : []),
        ...(r.user.roles !== undefined ? [['x-user-roles', r.user.roles] as [string, string]] : []),
      ];
      const res = await raw(f.t.url, { method: r.method, path: r.path, headers, ...(r.method === 'POST' ? { body: '{}' } : {}) });
      seen.add(res.status);
      // A HEAD answer has no body to judge (RFC 9110 §9.3.2).
      if (r.method === 'HEAD') return assert.ok(res.status < 500, show(res));
      assertApiAnswer(res, { ...r, caller: c.name });
      if (res.status !== 200) return;
      const identity = (JSON.parse(res.body) as { identity: Record<string, string> }).identity;
      // Credentials never reach the upstream; the forwarding headers are the hub's own.
      for (const h of ['authorization', 'x-api-key', 'x-forwarded-token']) assert.equal(identity[h], undefined, `${h} reached the upstream: ${show(res)}`);
      assert.equal(identity['x-forwarded-for'], '127.0.0.1', show(res));
      assert.equal(identity['x-forwarded-proto'], 'http', show(res));
      // The id as the hub read it: the bytes sent (UTF-8, control characters dropped) as latin1, trimmed.
      const id = r.user.id === undefined ? undefined : Buffer.from(fieldValue(r.user.id), 'utf8').toString('latin1').trim();
      if (!(c.mayAssert && id)) {
        assert.equal(identity['x-user-id'], c.sub, `the upstream saw another user than the caller: ${show(res)}`);
      } else {
        assert.equal(identity['x-user-id'], id, show(res));
        assert.ok(!(identity['x-user-roles'] ?? '').split(',').includes('admin'), `a developer service account acted as admin: ${show(res)}`);
      }
    }), fuzz(RUNS, { examples: [
      [{ caller: 2, method: 'GET', path: '/api/nodes/1', user: { id: 'alice', roles: 'viewer' }, credential: 'as is', extra: [] }],
      [{ caller: 0, method: 'DELETE', path: '/api/unknown', user: {}, credential: 'as is', extra: [] }],
    ] }));
    assert.ok(seen.has(200) && [...seen].some((s) => s >= 400), `the runs reached both outcomes (${[...seen].join(', ')})`);
    await assertAlive(f.t.url);
  });
});
