/**
 * Fuzzing the Cookie header and the session cookie: server-side sessions (store mode) and sealed
 * sessions (cookie mode, AES-256-GCM, src/sessions), in-process (`Sessions.read`) and as the
 * Cookie header of /auth/me, /auth/account and /auth/logout on a real hub.
 *
 *   node --test test/fuzz/session-cookie.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/session-cookie.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…               replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { deriveKey, seal } from '../../src/crypto/index.ts';
import type { Sessions } from '../../src/sessions/sessions.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import {
  anyString, applyEdits, assertAlive, assertApiAnswer, describeThrown, edits, fuzz, hostile, jsonValue, raw, RUNS, show, UNIT_RUNS, type Edit,
} from './support.ts';

const SECRET = 'fuzz-session-secret-0123456789abcdef-0123456789';

for (const mode of ['cookie', 'memory'] as const) {
  describe(`fuzz: session cookies (${mode === 'cookie' ? 'sealed in the cookie' : 'server-side'})`, () => {
    let t: TestHub;
    let sessions: Sessions;
    let name: string;
    let example: string;
    let exampleSub: string;

    before(async () => {
      t = await startHub({ storage: 'memory', env: { MIMIR_SESSION_STORAGE: mode, MIMIR_SESSION_SECRET: SECRET, MIMIR_SESSION_COOKIE_SECURE: 'false' } });
      sessions = t.hub.sessions;
      name = t.config.session.cookie.name;
      ({ cookie: example, sub: exampleSub } = await fresh());
    });
    after(async () => { await t?.close(); });

    /** A new signed-in session: its cookie value and the sub it authenticates as. */
    async function fresh(): Promise<{ cookie: string; sub: string }> {
      const sub = `user-${Math.random().toString(36).slice(2, 8)}`;
      const { cookie } = await sessions.create({ sub, roles: ['viewer'], groups: [], provider: 'fuzz', email: `${sub}@example.com` });
      return { cookie, sub };
    }

    it('Sessions.read answers any cookie value with the session it names or null, never an exception', async () => {
      const { cookie, sub } = await fresh();
      await fc.assert(fc.asyncProperty(hostile([cookie, example], 256), async (value) => {
        let found;
        try {
          found = await sessions.read(value);
        } catch (e) {
          assert.fail(`read threw ${describeThrown(e)}`);
        }
        // Either session, never another (a mutation the base64url decoder skips leaves the same bytes).
        if (found) assert.ok([sub, exampleSub].includes(found.session.identity.sub), `a session for ${found.session.identity.sub}`);
      }), fuzz(UNIT_RUNS));
    });

    if (mode === 'cookie') {
      // Only a holder of the key can seal, but a hub must not crash on a cookie an older (or
      // misconfigured) hub sealed: whatever it holds, the answer is a session or null.
      it('a cookie sealed with the key around anything resolves to a usable Principal or to none', async () => {
        const key = deriveKey(SECRET, 'sessions');
        const now = Math.floor(Date.now() / 1000);
        const odd = fc.oneof(jsonValue(1), fc.constantFrom<unknown>([{ toString: 1 }], ['viewer', 1, null], 'viewer', {}));
        // A live session as the hub seals it, with members of it or of its identity replaced.
        const session = fc.tuple(
          fc.dictionary(fc.constantFrom('sid', 'createdAt', 'lastSeenAt', 'absoluteExpiresAt', 'refreshFamily', 'idToken'), odd, { maxKeys: 2, noNullPrototype: true }),
          fc.dictionary(fc.constantFrom('sub', 'roles', 'groups', 'email', 'name', 'provider', 'tenant'), odd, { maxKeys: 2, noNullPrototype: true }),
        ).map(([top, identity]) => JSON.stringify({
          sid: 'fuzzsid', createdAt: now, lastSeenAt: now, absoluteExpiresAt: now + 3600, ...top,
          identity: { sub: 'fuzz', roles: ['viewer'], groups: [], provider: 'fuzz', ...identity },
        }));
        const content = fc.oneof(jsonValue(3).map((v) => JSON.stringify(v) ?? ''), anyString(64), session);
        await fc.assert(fc.asyncProperty(content, async (plain) => {
          const cookie = seal(key, plain, 'session-cookie');
          try {
            const principal = await sessions.resolve(cookie);
            if (principal) t.hub.rbac.permissionsFor(principal.roles);
          } catch (e) {
            assert.fail(`threw ${describeThrown(e)} for ${JSON.stringify(plain)}`);
          }
        }), fuzz(UNIT_RUNS / 10));
      });

      // Found by the property above: JSON.parse of a sealed cookie that is not JSON threw a
      // SyntaxError, and a session whose identity is not shaped as one threw a TypeError (a role
      // String() cannot convert, roles that are not an array): /auth/me answered 500.
      it('regression (issue 15): a cookie sealed with the key around something that is not a session is refused with 401, not a 500', async () => {
        const key = deriveKey(SECRET, 'sessions');
        const now = Math.floor(Date.now() / 1000);
        const shaped = (identity: Record<string, unknown>) => JSON.stringify({
          sid: 'fuzzsid', createdAt: now, lastSeenAt: now, absoluteExpiresAt: now + 3600, identity: { sub: 'fuzz', roles: ['viewer'], groups: [], provider: 'fuzz', ...identity },
        });
        for (const plain of ['', 'not json', '{"sid": 1', 'null', '[]', '{}', '{"sid": {}}', shaped({ roles: [{ toString: 1 }] }), shaped({ groups: 'x' }), shaped({ sub: undefined })]) {
          const res = await raw(t.url, { path: '/auth/me', headers: [['cookie', `${name}=${seal(key, plain, 'session-cookie')}`]] });
          assert.equal(res.status, 401, `${JSON.stringify(plain)}: ${show(res)}`);
          assertApiAnswer(res);
        }
      });
    }

    /**
     * Cookie headers as a plan, resolved against the run's fresh session cookie: the session
     * cookie valid, mutated, quoted, encoded or repeated; other cookies; junk; one header or several.
     */
    type Part = { session: Edit[] | null } | { variant: number } | { literal: string };
    const VARIANTS = [
      (v: string) => `${name}="${v}"`, (v: string) => `${name}=${encodeURIComponent(v)}`, (v: string) => ` ${name} = ${v} `, (v: string) => `${name.toUpperCase()}=${v}`,
      (v: string) => `${name}_login=${v}`, () => `${name}=`, () => name, (v: string) => `${name}=${v}; ${name}=x`, (v: string) => `${name}=x; ${name}=${v}`,
    ];
    const plan = fc.record({
      parts: fc.array(fc.oneof(
        { weight: 4, arbitrary: fc.option(edits, { freq: 3 }).map((e): Part => ({ session: e })) },
        { weight: 1, arbitrary: fc.nat({ max: VARIANTS.length - 1 }).map((variant): Part => ({ variant })) },
        { weight: 1, arbitrary: fc.tuple(anyString(12), anyString(24)).map(([k, v]): Part => ({ literal: `${k}=${v}` })) },
        { weight: 1, arbitrary: anyString(32).map((literal): Part => ({ literal })) },
      ), { minLength: 1, maxLength: 3 }),
      separator: fc.constantFrom('; ', ';', ', ', ' ;'),
      split: fc.boolean(),
    }, { noNullPrototype: true });
    type Plan = typeof plan extends fc.Arbitrary<infer T> ? T : never;

    function cookieHeaders(p: Plan, valid: string): Array<[string, string]> {
      const parts = p.parts.map((part) => {
        if ('session' in part) return `${name}=${part.session ? applyEdits(valid, part.session) : valid}`;
        if ('variant' in part) return VARIANTS[part.variant]!(valid);
        return part.literal;
      });
      return p.split ? parts.map((c) => ['cookie', c]) : [['cookie', parts.join(p.separator)]];
    }

    it('GET /auth/me with any Cookie headers answers 200 as the session\'s user, or a JSON 401', async () => {
      const seen = new Set<number>();
      await fc.assert(fc.asyncProperty(plan, async (p) => {
        const { cookie, sub } = await fresh();
        const headers = cookieHeaders(p, cookie);
        const res = await raw(t.url, { path: '/auth/me', headers });
        seen.add(res.status);
        assertApiAnswer(res, headers);
        assert.ok([200, 401].includes(res.status), show(res));
        if (res.status === 200) assert.equal((JSON.parse(res.body) as { sub: string }).sub, sub, show(res));
      }), fuzz(RUNS, { examples: [[{ parts: [{ session: null }], separator: '; ', split: false }], [{ parts: [{ literal: 'a=b' }], separator: '; ', split: false }]] }));
      assert.ok(seen.has(200) && seen.has(401), `the runs reached both outcomes (${[...seen].join(', ')})`);
    });

    it('/auth/account and /auth/logout with any Cookie headers answer a page, a redirect or a JSON 4xx, never a 5xx', async () => {
      const sites = fc.constantFrom<Array<[string, string]>>([], [['sec-fetch-site', 'same-origin']], [['origin', 'https://evil.example']], [['referer', 'not a url']], [['origin', 'null']]);
      await fc.assert(fc.asyncProperty(fc.constantFrom('GET /auth/account', 'POST /auth/logout', 'POST /auth/logout json'), sites, plan, async (route, site, p) => {
        const { cookie } = await fresh();
        const headers = [...cookieHeaders(p, cookie), ...site, ...(route.endsWith('json') ? [['accept', 'application/json'] as [string, string]] : [])];
        const [method, path] = route.split(' ') as [string, string];
        const res = await raw(t.url, { method, path, headers });
        assert.ok(res.status < 500, `${route}: ${show(res)}\ninput: ${JSON.stringify(headers)}`);
        if (res.status >= 300 && res.status < 400) assert.ok(res.headers.location, show(res));
      }), fuzz(RUNS));
      await assertAlive(t.url);
    });
  });
}
