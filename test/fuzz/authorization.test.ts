/**
 * Fuzzing the credential headers: `Authorization` (Bearer, DPoP, Basic), `X-API-Key`, and
 * client authentication (`readClientCredentials`), in-process and through a real hub.
 *
 *   node --test test/fuzz/authorization.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/authorization.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…              replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readClientCredentials } from '../../src/oauth/token/authenticate-client.ts';
import { startHub, serviceAccountToken, type TestHub } from '../helpers/hub.ts';
import {
  anyString, assertAlive, assertApiAnswer, assertOAuthRefusal, b64url, bounded, errorOf, fuzz, hostile, jwtShaped, jsonValue, raw, RUNS, show, UNIT_RUNS,
} from './support.ts';

const LEGACY_KEY = 'legacy-key-0123456789abcdef';

describe('fuzz: Authorization and X-API-Key headers', () => {
  let t: TestHub;
  let jwt: string;
  let apiKey: string;
  let basic: string;
  let secret: string;
  let clientId: string;
  /** Every sub a valid credential of this hub authenticates as: nothing else may come out. */
  const subs = new Set<string>();
  let authorizations: string[];
  let apiKeys: string[];

  before(async () => {
    t = await startHub({ storage: 'memory', env: { MIMIR_API_KEYS: `${LEGACY_KEY}:viewer` } });
    ({ token: jwt, secret, clientId } = await serviceAccountToken(t, ['admin'], 'fuzz-svc'));
    apiKey = (await t.hub.apiKeys.create({ name: 'fuzz', roles: ['developer'] })).key;
    basic = `Basic ${b64url(`${clientId}:${secret}`)}`;
    authorizations = [`Bearer ${jwt}`, `DPoP ${jwt}`, `Bearer ${apiKey}`, `Bearer ${LEGACY_KEY}`, basic, `bearer ${jwt}`, 'Bearer opaque-token-value'];
    apiKeys = [apiKey, LEGACY_KEY];
    for (const headers of [{ authorization: `Bearer ${jwt}` }, { 'x-api-key': apiKey }, { 'x-api-key': LEGACY_KEY }]) {
      subs.add((await t.hub.authenticator.authenticate({ headers })).sub);
    }
    assert.equal(subs.size, 3, 'the valid examples the mutations start from authenticate');
  });
  after(async () => { await t?.close(); });

  /** Authorization values: valid ones, mutated, JWT-shaped with hostile parts, anything. */
  const authorization = () => fc.oneof(
    { weight: 4, arbitrary: hostile(authorizations, 128) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Bearer ', 'DPoP ', 'bearer  '), jwtShaped(jsonValue(), jsonValue())).map(([s, j]) => s + j) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom('Bearer ', 'DPoP '), jwtShaped(
        fc.record({ alg: fc.oneof(fc.constantFrom('RS256', 'HS256', 'none', 'ES256'), jsonValue(1)), kid: fc.oneof(fc.constant(t.hub.keys.currentKid), jsonValue(1)), typ: jsonValue(1) }, { requiredKeys: [] }),
        fc.record({ iss: fc.oneof(fc.constant(t.config.jwt.issuer), jsonValue(1)), sub: jsonValue(1), aud: jsonValue(1), exp: jsonValue(1) }, { requiredKeys: [] }),
      )).map(([s, j]) => s + j),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Basic ', 'basic '), anyString(64)).map(([s, v]) => s + b64url(v)) },
    // Around MAX_CREDENTIAL_BYTES (8192) and past the header block limit (MIMIR_MAX_HEADER_BYTES, 16384: a 431).
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Bearer ', 'DPoP ', 'Basic '), fc.constantFrom(8185, 8186, 8193, 12000, 17000), fc.constantFrom('a', '.', 'é')).map(([s, n, c]) => s + c.repeat(n)) },
  );

  it('the authenticator answers any Authorization value with a Principal of a valid credential or a 4xx OAuthError', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(authorization(), fc.array(authorization(), { minLength: 2, maxLength: 3 })), async (value) => {
      try {
        const principal = await t.hub.authenticator.authenticate({ headers: { authorization: value } });
        assert.ok(subs.has(principal.sub), `accepted as ${principal.sub}`);
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_request', 'invalid_token', 'token_expired']);
      }
    }), fuzz(UNIT_RUNS));
  });

  it('the authenticator answers any X-API-Key value with a Principal of a valid key or a 4xx OAuthError', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(hostile(apiKeys, 128), fc.array(hostile(apiKeys), { minLength: 2, maxLength: 3 })), async (value) => {
      try {
        const principal = await t.hub.authenticator.authenticate({ headers: { 'x-api-key': value } });
        assert.ok(subs.has(principal.sub), `accepted as ${principal.sub}`);
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_request', 'invalid_token']);
      }
    }), fuzz(UNIT_RUNS));
  });

  it('readClientCredentials returns credentials, null or a 4xx OAuthError for any parameters and Authorization', () => {
    const params = fc.record({
      client_id: fc.oneof(fc.constant(clientId), anyString()),
      client_secret: fc.oneof(fc.constant(secret), anyString()),
      grant_type: anyString(),
      client_assertion: fc.oneof(fc.constant('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.x'), anyString()),
      client_assertion_type: fc.oneof(fc.constant('urn:ietf:params:oauth:client-assertion-type:jwt-bearer'), anyString()),
    }, { requiredKeys: [] });
    fc.assert(fc.property(params, fc.option(authorization(), { nil: undefined }), (p, auth) => {
      try {
        const creds = bounded('readClientCredentials', () => readClientCredentials(p as Record<string, string>, auth));
        if (creds) {
          assert.equal(typeof creds.clientId, 'string');
          assert.equal(typeof ('secret' in creds ? creds.secret : creds.assertion), 'string');
        }
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_request', 'invalid_client']);
      }
    }), fuzz(UNIT_RUNS));
  });

  it('GET /auth/me: any Authorization, X-API-Key and DPoP headers, repeated or not, answer 200 for a valid credential or a JSON 400/401 (431 past the header limit)', async () => {
    const header = fc.oneof(
      authorization().map((v) => ['authorization', v] as const),
      hostile(apiKeys, 128).map((v) => ['x-api-key', v] as const),
      hostile(['eyJhbGciOiJFUzI1NiJ9.e30.x']).map((v) => ['dpop', v] as const),
      fc.tuple(fc.constantFrom('Authorization', 'AUTHORIZATION', 'X-Api-Key', 'x-api-key '), authorization()).map(([n, v]) => [n, v] as const),
    );
    await fc.assert(fc.asyncProperty(fc.array(header, { minLength: 1, maxLength: 3 }), async (headers) => {
      const res = await raw(t.url, { path: '/auth/me', headers });
      assertApiAnswer(res, headers);
      assert.ok([200, 400, 401, 431].includes(res.status), show(res));
      if (res.status === 200) assert.ok(subs.has((JSON.parse(res.body) as { sub: string }).sub), show(res));
    }), fuzz(RUNS));
    await assertAlive(t.url);
  });

  it('POST /auth/introspect (the fast path) and /auth/token: any client Authorization answers 200 or a JSON 4xx', async () => {
    const target = fc.constantFrom(
      { path: '/auth/introspect', body: `token=${encodeURIComponent(jwt)}` },
      { path: '/auth/token', body: 'grant_type=client_credentials' },
      { path: '/auth/revoke', body: 'token=not-a-token-0123456789abcdef' },
    );
    await fc.assert(fc.asyncProperty(target, authorization(), async ({ path, body }, value) => {
      const res = await raw(t.url, { method: 'POST', path, headers: [['authorization', value], ['content-type', 'application/x-www-form-urlencoded']], body });
      assertApiAnswer(res, value);
      if (res.status === 200 && path === '/auth/introspect') assert.equal((JSON.parse(res.body) as { active: boolean }).active, true);
      if (res.status >= 400) assert.ok(errorOf(res), show(res));
    }), fuzz(RUNS));
    await assertAlive(t.url);
  });
});
