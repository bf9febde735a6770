/**
 * Fuzzing JWT parsing: the hub's own access tokens (mutated, and signed by the hub's key with
 * arbitrary headers and claims) and IdP-shaped tokens signed by real loopback IdPs of every kind
 * with arbitrary claims, in-process (verifyAccessToken, checkProviderRules, mapClaims) and as
 * `Authorization: Bearer` on a real hub.
 *
 *   node --test test/fuzz/jwt.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/jwt.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…    replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SignJWT, type JWTPayload } from 'jose';
import type { Principal } from '../../src/authn/principal.ts';
import { loadConfig } from '../../src/config/index.ts';
import { verifyAccessToken } from '../../src/jwt/access-token.ts';
import { checkProviderRules, mapClaims } from '../../src/oidc/claims.ts';
import { loadProviders, type ProviderSettings } from '../../src/oidc/providers.ts';
import { serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { AUDIENCE, signIn, startLogin, startRig, type Rig } from '../oidc/setup.ts';
import {
  anyString, assertAlive, assertApiAnswer, assertOAuthRefusal, bounded, fuzz, jsonValue, jwtShaped, mutated, raw, RUNS, show, UNIT_RUNS,
} from './support.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

/** Role and group names: the RBAC's, the IdPs', odd ones. Object.prototype names included (item B of issue 15). */
const roleName = fc.oneof(
  fc.constantFrom('admin', 'developer', 'analyst', 'viewer', 'Everyone', 'offline_access', '*', '', ' ', 'nodes:read', 'mcp:*', 'ADMIN', 'admin ', 'constructor', '__proto__', 'toString', 'hasOwnProperty'),
  anyString(16),
);

/** A claim value: roles-like lists, any JSON, and objects JavaScript cannot turn into a string. */
const claimValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.array(roleName, { maxLength: 4 }) },
  { weight: 2, arbitrary: roleName },
  { weight: 3, arbitrary: jsonValue(3) },
  { weight: 1, arbitrary: fc.record({ roles: fc.oneof(fc.array(roleName, { maxLength: 3 }), jsonValue(1)) }, { noNullPrototype: true }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>({ toString: 1 }, { toString: null, valueOf: null }, [{ toString: 1 }], {}, [], null, true, 0, -1, 1e308, 0.5, 2 ** 53, '1e999'),
  },
);

/** Claim names the hub or some provider kind reads. */
const CLAIMS = ['sub', 'aud', 'exp', 'nbf', 'iat', 'iss', 'jti', 'roles', 'groups', 'realm_access', 'resource_access', 'cognito:groups', 'cognito:username',
  'token_use', 'typ', 'tid', 'hd', 'scp', 'scope', 'email', 'name', 'preferred_username', 'username', 'client_id', 'azp', 'cid', '_claim_names', 'hasgroups',
  'https://mimir.example.com/roles', 'https://mimir.example.com/groups', 'app', 'act', 'cnf', 'sid', 'provider', 'tenant', 'auth_method'];

const claimOverrides = fc.dictionary(fc.constantFrom(...CLAIMS), claimValue, { maxKeys: 6, noNullPrototype: true });

/** What a JWT payload can hold: what JSON.parse makes of it (no null-prototype objects, no undefined). */
const asJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** Every field of a Principal has its declared type. */
function assertPrincipalShape(p: Principal): void {
  for (const list of [p.roles, p.groups, p.scopes]) {
    assert.ok(Array.isArray(list) && list.every((x) => typeof x === 'string'), `a Principal list holds a non-string: ${JSON.stringify(p)}`);
  }
  for (const field of ['email', 'name', 'tenant', 'client_id', 'provider'] as const) {
    assert.ok(p[field] === undefined || typeof p[field] === 'string', `Principal.${field} is ${typeof p[field]}`);
  }
}

describe('fuzz: Mimir JWTs', () => {
  let t: TestHub;
  let jwt: string;
  let sub: string;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    ({ token: jwt, clientId: sub } = await serviceAccountToken(t, ['developer'], 'fuzz-jwt'));
  });
  after(async () => { await t?.close(); });

  const verify = (token: string) => verifyAccessToken(token, t.hub.keys, { issuer: t.config.jwt.issuer, audiences: [t.config.jwt.audience] });

  /** Signs with the hub's own current key: a token only the hub could have made, with anything in it. */
  const signed = (header: Record<string, unknown>, claims: Record<string, unknown>) => {
    const key = t.hub.keys.current();
    return new SignJWT(claims as JWTPayload).setProtectedHeader({ typ: 'at+jwt', ...header, alg: key.record.alg, kid: key.record.kid }).sign(key.sign);
  };
  const validClaims = () => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: t.config.jwt.issuer, aud: t.config.jwt.audience, sub: 'fuzz-user', client_id: 'fuzz-client', iat: now, nbf: now, exp: now + 600, jti: `jti-${now}`, roles: ['developer'] };
  };
  const hubSigned = fc.tuple(
    fc.dictionary(fc.constantFrom('typ', 'cty', 'jku', 'jwk', 'x5u', 'x5c', 'zip', 'x'), fc.oneof(jsonValue(2), fc.constantFrom('at+jwt', 'JWT', 'application/at+jwt', 'AT+JWT')), { maxKeys: 3, noNullPrototype: true }),
    claimOverrides,
    fc.subarray(['sub', 'exp', 'iat', 'jti', 'aud', 'iss']),
  ).map(([header, overrides, dropped]) => ({ header, overrides, dropped }));

  it('verifyAccessToken answers a mutated or JWT-shaped token with its verification or invalid_token / token_expired', async () => {
    const tokens = fc.oneof(mutated([jwt]), jwtShaped(jsonValue(), jsonValue()), anyString(128));
    await fc.assert(fc.asyncProperty(tokens, async (token) => {
      try {
        const verified = await verify(token);
        assert.equal(verified.payload.sub, sub, 'only the real token verifies');
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_token', 'token_expired']);
      }
    }), fuzz(UNIT_RUNS));
  });

  it('a token signed by the hub with any header and claims authenticates to a well-typed Principal or is refused with a 4xx OAuthError', async () => {
    await fc.assert(fc.asyncProperty(hubSigned, async ({ header, overrides, dropped }) => {
      const claims: Record<string, unknown> = { ...validClaims(), ...overrides };
      for (const name of dropped) delete claims[name];
      const token = await signed(header, claims);
      try {
        assertPrincipalShape(await t.hub.authenticator.authenticate({ headers: { authorization: `Bearer ${token}` } }));
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_token', 'token_expired', 'invalid_dpop_proof', 'invalid_request']);
      }
    }), fuzz(RUNS));
  });

  // Found by 'a token signed by the hub with any header and claims …': roles.map(String) threw a
  // TypeError on a member String() cannot convert, and /auth/me answered 500.
  it('regression (issue 15): a hub-signed token whose roles or groups hold an object is not a 500', async () => {
    for (const claim of [{ groups: [{ toString: 1 }] }, { roles: ['developer', { toString: 1 }] }]) {
      const token = await signed({}, { ...validClaims(), ...claim });
      const res = await raw(t.url, { path: '/auth/me', headers: [['authorization', `Bearer ${token}`]] });
      assert.equal(res.status, 200, show(res));
      const body = JSON.parse(res.body) as Principal;
      assertPrincipalShape(body);
      assert.deepEqual(body.roles, ['developer']);
    }
  });

  it('GET /auth/me with a hub-signed token carrying any claims answers 200 or a JSON 4xx', async () => {
    await fc.assert(fc.asyncProperty(hubSigned, fc.constantFrom('Bearer', 'DPoP'), async ({ header, overrides, dropped }, scheme) => {
      const claims: Record<string, unknown> = { ...validClaims(), ...overrides };
      for (const name of dropped) delete claims[name];
      const token = await signed(header, claims);
      const res = await raw(t.url, { path: '/auth/me', headers: [['authorization', `${scheme} ${token}`]] });
      assertApiAnswer(res, { header, claims });
    }), fuzz(RUNS));
    await assertAlive(t.url);
  });
});

/** Provider settings of every kind, as the providers file gives them. */
function providersOfEveryKind(): ProviderSettings[] {
  const file = JSON.stringify({
    providers: [
      { id: 'kc', kind: 'keycloak', issuer: 'https://kc.example/realms/mimir', clientId: 'kc-client', audience: AUDIENCE },
      { id: 'okta', kind: 'okta', issuer: 'https://okta.example/oauth2/default', clientId: 'okta-client', audience: AUDIENCE, groupsToRoles: { Everyone: 'viewer', ops: ['admin', 'developer'] } },
      { id: 'cog', kind: 'cognito', issuer: 'https://cognito.example/us-east-1_X', clientId: 'cog-client' },
      { id: 'az', kind: 'azure', issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`, clientId: 'az-client', audience: AUDIENCE, allowedTenants: [TENANT] },
      { id: 'azm', kind: 'azure', issuer: 'https://login.microsoftonline.com/organizations/v2.0', clientId: 'azm-client', audience: AUDIENCE },
      { id: 'a0', kind: 'auth0', issuer: 'https://tenant.auth0.example/', clientId: 'a0-client', audience: AUDIENCE },
      { id: 'goo', kind: 'google', clientId: 'goo-client', audience: AUDIENCE, hostedDomain: 'example.com' },
      { id: 'gen', kind: 'generic', issuer: 'https://idp.example', clientId: 'gen-client', audience: AUDIENCE, rolesClaim: 'app.roles', roleMappings: { Admins: 'admin', devs: ['developer', 'analyst'] } },
    ],
  });
  return loadProviders(loadConfig({ MIMIR_AUTH_PROVIDERS_FILE: '/fuzz/providers.json' }, { dotenv: false }), () => file);
}

describe('fuzz: IdP-shaped claims (checkProviderRules, mapClaims)', () => {
  const providers = providersOfEveryKind();

  it('every provider kind answers any claims with a well-typed identity or a 4xx OAuthError', () => {
    const claims = fc.tuple(fc.record({ sub: fc.oneof(fc.constant('jane'), jsonValue(1)), tid: fc.constant(TENANT), hd: fc.constant('example.com') }, { requiredKeys: [], noNullPrototype: true }), claimOverrides)
      .map(([base, extra]) => asJson({ ...base, ...extra }));
    fc.assert(fc.property(fc.constantFrom(...providers), claims, fc.constantFrom('id', 'access') as fc.Arbitrary<'id' | 'access'>, (p, c, use) => {
      try {
        const { principal } = bounded('mapClaims', () => {
          checkProviderRules(p, c, use);
          return mapClaims(p, c, 'oauth');
        });
        assertPrincipalShape(principal);
        assert.equal(typeof principal.sub, 'string');
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_token', 'access_denied']);
      }
    }), fuzz(UNIT_RUNS));
  });
});

describe('fuzz: IdP access tokens of every kind as bearer tokens', () => {
  let rig: Rig;
  const ids = ['kc', 'okta', 'cog', 'az', 'a0', 'goo', 'gen'] as const;
  before(async () => {
    rig = await startRig({ kc: 'keycloak', okta: 'okta', cog: 'cognito', az: 'azure', a0: 'auth0', goo: 'google', gen: 'generic' }, {
      storage: 'memory',
      idpById: { az: { tenantId: TENANT } },
      settings: {
        cog: { audience: undefined },
        az: { allowedTenants: [TENANT] },
        goo: { hostedDomain: 'example.com' },
        okta: { groupsToRoles: { Everyone: 'viewer', ops: ['admin'] } },
        gen: { rolesClaim: 'app.roles', roleMappings: { Admins: 'admin' } },
      },
    });
  });
  after(async () => { await rig?.close(); });

  /** The claims each kind's real tokens carry, so that mutations start from accepted tokens. */
  const baseClaims = (id: typeof ids[number]): Record<string, unknown> => {
    const idp = rig.idps[id]!;
    switch (id) {
      case 'kc': return { sub: 'jane', aud: AUDIENCE, typ: 'Bearer', realm_access: { roles: ['developer'] } };
      case 'okta': return { sub: 'jane', aud: AUDIENCE, groups: ['Everyone'] };
      case 'cog': return { sub: 'jane', token_use: 'access', client_id: idp.clientId, 'cognito:groups': ['analyst'] };
      case 'az': return { sub: 'jane', aud: AUDIENCE, tid: TENANT, roles: ['developer'] };
      case 'a0': return { sub: 'jane', aud: AUDIENCE, 'https://mimir.example.com/roles': ['developer'] };
      case 'goo': return { sub: 'jane', aud: AUDIENCE, hd: 'example.com' };
      case 'gen': return { sub: 'jane', aud: AUDIENCE, app: { roles: ['Admins'] } };
    }
  };

  it('the real-looking token of every kind is accepted (the mutations start from accepted tokens)', async () => {
    for (const id of ids) {
      const token = await rig.idps[id]!.sign(baseClaims(id));
      const res = await raw(rig.hub.url, { path: '/auth/me', headers: [['authorization', `Bearer ${token}`]] });
      assert.equal(res.status, 200, `${id}: ${show(res)}`);
      assert.equal((JSON.parse(res.body) as { provider: string }).provider, id);
    }
  });

  // Found by 'every provider kind answers any claims …': String() of a claim object whose
  // "toString" member is not a function throws a TypeError, which the callback answered with 500.
  for (const [id, claim] of [['goo', { hd: { toString: 1 } }], ['cog', { token_use: { toString: 1 } }]] as const) {
    it(`regression (issue 15): an ID token whose ${Object.keys(claim)[0]} claim is an object is refused at /auth/callback, not a 500`, async () => {
      const idp = rig.idps[id]!;
      idp.tamperIdToken((c) => ({ ...c, ...claim }));
      try {
        const { res } = await signIn(rig, id, { accept: 'application/json' });
        const body = await res.json() as { error: string };
        assert.ok(res.status >= 400 && res.status < 500, `answered ${res.status} ${JSON.stringify(body)}`);
        assert.equal(body.error, id === 'goo' ? 'access_denied' : 'invalid_token');
      } finally {
        idp.tamperIdToken(undefined);
      }
    });
  }

  it('GET /auth/callback with any query and binding cookie, on a real sign-in started for it, answers a page, a redirect or a 4xx, never a 5xx', async () => {
    const callbackCase = fc.record({
      id: fc.constantFrom(...ids),
      params: fc.dictionary(fc.constantFrom('code', 'state', 'iss', 'error', 'error_description', 'session_state', 'x'), anyString(48), { maxKeys: 3, noNullPrototype: true }),
      keep: fc.subarray(['state', 'iss', 'binding'] as const),
      repeated: fc.boolean(),
      accept: fc.constantFrom('text/html', 'application/json'),
    }, { noNullPrototype: true });
    await fc.assert(fc.asyncProperty(callbackCase, async (c) => {
      const started = await startLogin(rig.hub, c.id);
      const state = new URL(started.authorizationUrl).searchParams.get('state')!;
      const q = new URLSearchParams({
        code: 'not-a-code', ...(c.keep.includes('state') ? { state } : {}), ...(c.keep.includes('iss') ? { iss: rig.idps[c.id]!.issuer } : {}), ...c.params,
      });
      if (c.repeated) q.append('state', state);
      const headers: Array<[string, string]> = [['accept', c.accept], ...(c.keep.includes('binding') ? [['cookie', `mimir_session_login=${started.binding}`] as [string, string]] : [])];
      const res = await raw(rig.hub.url, { path: `/auth/callback?${q}`, headers });
      assert.ok(res.status < 500, `${show(res)}\ninput: ${JSON.stringify(c)}`);
      if (c.accept === 'application/json' && res.status >= 400) assertApiAnswer(res, c);
    }), fuzz(Math.ceil(RUNS / 3)));
  });

  it('GET /auth/me with an IdP-signed token carrying any claims answers 200 as that IdP\'s user, or a JSON 401/403', async () => {
    const case_ = fc.record({
      id: fc.constantFrom(...ids),
      overrides: claimOverrides,
      dropped: fc.subarray(['sub', 'aud', 'exp', 'iss', 'tid', 'typ', 'token_use', 'client_id', 'hd']),
      iss: fc.option(fc.oneof(fc.constantFrom(...ids), anyString(32)), { freq: 4 }),
      header: fc.record({ typ: fc.oneof(fc.constantFrom('JWT', 'at+jwt'), anyString(8)), kid: anyString(16) }, { requiredKeys: [], noNullPrototype: true }),
    }, { noNullPrototype: true });
    await fc.assert(fc.asyncProperty(case_, async ({ id, overrides, dropped, iss, header }) => {
      const idp = rig.idps[id]!;
      const claims: Record<string, unknown> = { ...baseClaims(id), ...overrides };
      // Another IdP's issuer on this IdP's signature: must never validate as either.
      if (iss !== null) claims.iss = (ids as readonly string[]).includes(iss) ? rig.idps[iss]!.issuer : iss;
      for (const name of dropped) delete claims[name];
      const token = await idp.sign(claims as JWTPayload, header);
      const res = await raw(rig.hub.url, { path: '/auth/me', headers: [['authorization', `Bearer ${token}`]] });
      assertApiAnswer(res, { id, claims, header });
      assert.ok([200, 400, 401, 403].includes(res.status), show(res));
      if (res.status === 200) assert.equal((JSON.parse(res.body) as { provider: string }).provider, id, 'accepted as the IdP that signed it, and no other');
    }), fuzz(RUNS));
    await assertAlive(rig.hub.url);
  });
});
