/**
 * Fuzzing the bodies of the token endpoints: /auth/token with every grant_type
 * (client_credentials, refresh_token, authorization_code, RFC 8693 token exchange), /auth/refresh,
 * /auth/introspect (Fastify and the fast path) and /auth/revoke, as forms and as JSON, with
 * parameters that start from valid values (fresh refresh tokens and codes each run) and mutate.
 *
 *   node --test test/fuzz/token-endpoints.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/token-endpoints.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…                replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { parseForm } from '../../src/http/form.ts';
import { issueCode } from '../../src/oauth/authorize/codes.ts';
import { parseBody } from '../../src/oauth/token/parse-body.ts';
import { serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import {
  anyString, applyEdits, assertAlive, assertApiAnswer, assertOAuthRefusal, bounded, edits, fuzz, jsonValue, raw, RUNS, show, UNIT_RUNS, type Edit,
} from './support.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const REDIRECT_URI = 'http://127.0.0.1/callback';

/** Names of the values a run knows only when it starts (fresh refresh tokens and codes). */
const REFS = ['svc', 'svcSecret', 'xsvc', 'xsvcSecret', 'adminJwt', 'userJwt', 'apiKey', 'refresh', 'code', 'verifier', 'client', 'resource', 'redirect'] as const;
type Ref = typeof REFS[number];

/** A parameter value: a valid one of this run, mutated or not, or anything. */
type Value = { ref: Ref; edits?: Edit[] } | { literal: string } | { json: unknown };

const PARAMS = ['grant_type', 'client_id', 'client_secret', 'scope', 'refresh_token', 'code', 'code_verifier', 'redirect_uri', 'resource', 'audience',
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'token', 'token_type_hint'] as const;

/** The valid value(s) each parameter usually takes. */
const VALID: Record<string, fc.Arbitrary<Value>> = {
  grant_type: fc.constantFrom('client_credentials', 'refresh_token', 'authorization_code', TOKEN_EXCHANGE, 'password', 'CLIENT_CREDENTIALS').map((literal) => ({ literal })),
  client_id: fc.constantFrom<Ref>('svc', 'xsvc', 'client').map((ref) => ({ ref })),
  client_secret: fc.constantFrom<Ref>('svcSecret', 'xsvcSecret').map((ref) => ({ ref })),
  scope: fc.constantFrom('nodes:read', 'nodes:read search:execute', '*', 'mcp:*', 'admin:manage', 'nodes:read  nodes:read ').map((literal) => ({ literal })),
  refresh_token: fc.constant({ ref: 'refresh' as Ref }),
  code: fc.constant({ ref: 'code' as Ref }),
  code_verifier: fc.constant({ ref: 'verifier' as Ref }),
  redirect_uri: fc.constant({ ref: 'redirect' as Ref }),
  resource: fc.constant({ ref: 'resource' as Ref }),
  audience: fc.constantFrom('mimir-api', 'https://elsewhere.example').map((literal) => ({ literal })),
  subject_token: fc.constantFrom<Ref>('userJwt', 'userJwt', 'userJwt', 'adminJwt', 'apiKey', 'refresh').map((ref) => ({ ref })),
  subject_token_type: fc.constantFrom(ACCESS_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:refresh_token').map((literal) => ({ literal })),
  requested_token_type: fc.constant({ literal: ACCESS_TOKEN_TYPE }),
  token: fc.constantFrom<Ref>('adminJwt', 'userJwt', 'apiKey', 'refresh').map((ref) => ({ ref })),
  token_type_hint: fc.constantFrom('access_token', 'refresh_token', 'api_key').map((literal) => ({ literal })),
};

const value = (name: string, validWeight = 6): fc.Arbitrary<Value> => fc.oneof(
  { weight: validWeight, arbitrary: VALID[name] ?? anyString().map((literal) => ({ literal })) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...REFS), edits).map(([ref, e]) => ({ ref, edits: e })) },
  { weight: 2, arbitrary: anyString().map((literal) => ({ literal })) },
  { weight: 1, arbitrary: jsonValue(2).map((json) => ({ json })) },
);

/** What each request of a grant (or endpoint) carries, mostly valid, so that runs get past the first check. */
const REQUIRED: Record<string, string[]> = {
  client_credentials: [], refresh_token: ['refresh_token'], authorization_code: ['code', 'code_verifier', 'redirect_uri', 'client_id'],
  [TOKEN_EXCHANGE]: ['subject_token', 'subject_token_type'], token: ['token'],
};

/**
 * The parameters of one request: the grant's own (valid four times in five), then other known
 * names, then now and then a repeated or unknown one.
 */
const params = (grant?: string, required: readonly string[] = grant ? REQUIRED[grant] ?? [] : []): fc.Arbitrary<Array<[string, Value]>> => fc.tuple(
  fc.tuple(...required.map((n) => value(n, 40).map((v) => [n, v] as [string, Value]))),
  fc.uniqueArray(fc.constantFrom(...PARAMS.filter((p) => !required.includes(p) && p !== 'grant_type')), { maxLength: 4 })
    .chain((names) => fc.tuple(...names.map((n) => value(n).map((v) => [n, v] as [string, Value])))),
  fc.option(fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PARAMS), anyString(12)), value('x')), { minLength: 1, maxLength: 2 }), { freq: 4, nil: [] }),
).map(([own, known, extra]) => [...(grant ? [['grant_type', { literal: grant }] as [string, Value]] : []), ...own, ...known, ...extra]);

type Encoding = 'form' | 'json' | 'form-mutated' | 'json-mutated';
const CONTENT_TYPES = ['application/x-www-form-urlencoded', 'application/json', 'application/x-www-form-urlencoded; charset=utf-8', 'application/json; charset=utf-8',
  'text/plain', 'application/x-www-form-urlencoded; charset=latin1', 'multipart/form-data; boundary=x', 'application/jwt', ''];

type Authorization = { basic: Ref } | { bearer: Ref } | { literal: string } | null;

/** How the request is sent; `client`: the client that authenticates with Basic half of the time. */
const request = (client?: Ref) => fc.record({
  encoding: fc.constantFrom<Encoding>('form', 'form', 'form', 'json', 'json', 'form-mutated', 'json-mutated'),
  contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { freq: 8 }),
  authorization: fc.oneof(
    { weight: client ? 6 : 0, arbitrary: fc.constant<Authorization>({ basic: client ?? 'svc' }) },
    { weight: 3, arbitrary: fc.constant<Authorization>(null) },
    { weight: 1, arbitrary: fc.constantFrom<Ref>('svc', 'xsvc').map((ref): Authorization => ({ basic: ref })) },
    { weight: 1, arbitrary: fc.constantFrom<Ref>('adminJwt', 'userJwt', 'apiKey').map((ref): Authorization => ({ bearer: ref })) },
    { weight: 1, arbitrary: anyString(40).map((literal): Authorization => ({ literal })) },
  ),
  mutation: edits,
}, { noNullPrototype: true });

type RequestCase = ReturnType<typeof request> extends fc.Arbitrary<infer T> ? T : never;

describe('fuzz: token endpoint bodies', () => {
  let t: TestHub;
  const known: Partial<Record<Ref, string>> = {};

  before(async () => {
    t = await startHub({ storage: 'memory' });
    const admin = await serviceAccountToken(t, ['admin'], 'fuzz-admin');
    Object.assign(known, { svc: admin.clientId, svcSecret: admin.secret, adminJwt: admin.token });
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'fuzz-exchange', roles: ['developer'], allowTokenExchange: true });
    Object.assign(known, { xsvc: 'fuzz-exchange', xsvcSecret: clientSecret });
    known.userJwt = (await t.hub.signer.issue({ sub: 'ada', client_id: 'mimir-cli', roles: ['developer'], scope: 'nodes:read' }, 600)).token;
    known.apiKey = (await t.hub.apiKeys.create({ name: 'fuzz', roles: ['viewer'] })).key;
    const { client } = await t.hub.clients.register({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    Object.assign(known, { client: client.client_id, resource: `${t.url}/mcp`, redirect: REDIRECT_URI });
  });
  after(async () => { await t?.close(); });

  /** This run's values: the fixed ones, and a fresh refresh token and authorization code. */
  async function values(): Promise<Record<Ref, string>> {
    const refresh = (await t.hub.refreshTokens.issue({ sub: 'ada', clientId: 'mimir-cli', scope: 'nodes:read', roles: ['analyst'], publicClient: true })).token;
    const verifier = randomBytes(32).toString('base64url');
    const code = await issueCode(t.hub.store, {
      clientId: known.client!, redirectUri: REDIRECT_URI, codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
      resource: known.resource!, scope: 'nodes:read', user: { sub: 'ada', roles: ['developer'], groups: [] },
    }, 60);
    return { ...known, refresh, verifier, code } as Record<Ref, string>;
  }

  /**
   * A client_id that is an http(s) URL is fetched as a client metadata document: keep the fuzzer
   * off the network by letting only loopback literals (refused without a connection) through.
   */
  const offline = (v: string) => (/^https?:\/\//.test(v) && !/^https?:\/\/127\.0\.0\.1[:/]/.test(v) ? `x${v}` : v);

  function resolve(v: Value, run: Record<Ref, string>): unknown {
    if ('ref' in v) return offline(v.edits ? applyEdits(run[v.ref], v.edits) : run[v.ref]);
    if ('literal' in v) return offline(v.literal);
    return v.json;
  }

  function body(encoding: Encoding, pairs: Array<[string, Value]>, run: Record<Ref, string>, mutation: Edit[]): { text: string; type: string } {
    const resolved = pairs.map(([k, v]) => [k, resolve(v, run)] as const);
    if (encoding.startsWith('json')) {
      const text = JSON.stringify(Object.fromEntries(resolved)) ?? 'null';
      return { text: encoding === 'json-mutated' ? applyEdits(text, mutation) : text, type: 'application/json' };
    }
    const form = new URLSearchParams();
    for (const [k, v] of resolved) form.append(k, typeof v === 'string' ? v : JSON.stringify(v) ?? '');
    const text = form.toString();
    return { text: encoding === 'form-mutated' ? applyEdits(text, mutation) : text, type: 'application/x-www-form-urlencoded' };
  }

  function authorization(a: Authorization, run: Record<Ref, string>): Array<[string, string]> {
    if (a === null) return [];
    if ('basic' in a) return [['authorization', `Basic ${Buffer.from(`${run[a.basic]}:${run[a.basic === 'svc' ? 'svcSecret' : 'xsvcSecret']}`).toString('base64')}`]];
    if ('bearer' in a) return [['authorization', `Bearer ${run[a.bearer]}`]];
    return [['authorization', a.literal]];
  }

  async function send(path: string, pairs: Array<[string, Value]>, r: RequestCase) {
    const run = await values();
    const b = body(r.encoding, pairs, run, r.mutation);
    const headers: Array<[string, string]> = [...authorization(r.authorization, run)];
    const type = r.contentType ?? b.type;
    if (type !== '') headers.push(['content-type', type]);
    const res = await raw(t.url, { method: 'POST', path, headers, body: b.text });
    assertApiAnswer(res, { path, body: b.text, headers });
    return res;
  }

  it('parseBody answers any JSON body with string parameters or invalid_request', () => {
    fc.assert(fc.property(fc.oneof(jsonValue(3), fc.dictionary(anyString(16), jsonValue(1), { noNullPrototype: true })), (input) => {
      try {
        const out = bounded('parseBody', () => parseBody(input));
        assert.ok(Object.values(out).every((v) => typeof v === 'string' && v !== ''));
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_request']);
      }
    }), fuzz(UNIT_RUNS));
  });

  it('parseForm answers any form body with an object, in bounded time', () => {
    fc.assert(fc.property(fc.oneof(anyString(256), fc.array(fc.tuple(anyString(16), anyString(16)), { maxLength: 8 }).map((p) => new URLSearchParams(p).toString())), (text) => {
      const out = bounded('parseForm', () => parseForm(text));
      assert.equal(typeof out, 'object');
    }), fuzz(UNIT_RUNS));
  });

  type Case = [Array<[string, Value]>, RequestCase];
  const plain = (authorization: Authorization = null): RequestCase => ({ encoding: 'form', contentType: null, authorization, mutation: [] });
  const grantOf = (grant: string): [string, Value] => ['grant_type', { literal: grant }];

  /**
   * Runs one property from two examples, one the endpoint accepts (the unmutated request the
   * mutations start from) and one it refuses, and checks both came out so: a fuzzer whose inputs
   * all fail the first check would explore nothing behind it.
   */
  async function explore(accepted: Case, refused: Case, property: (seen: Set<number>) => fc.IAsyncProperty<Case>): Promise<void> {
    const seen = new Set<number>();
    await fc.assert(property(seen), fuzz(RUNS, { examples: [accepted, refused] }));
    assert.ok(seen.has(200), `no run was accepted (statuses ${[...seen].join(', ')}): the generators no longer reach the grant`);
    assert.ok([...seen].some((s) => s >= 400), 'no run was refused');
  }

  /** Per grant: the client that authenticates, and a request the grant accepts. */
  const GRANTS: Array<[string, Ref | undefined, Case]> = [
    ['client_credentials', 'svc', [[grantOf('client_credentials')], plain({ basic: 'svc' })]],
    ['refresh_token', undefined, [[grantOf('refresh_token'), ['refresh_token', { ref: 'refresh' }]], plain()]],
    ['authorization_code', undefined, [[grantOf('authorization_code'), ['code', { ref: 'code' }], ['code_verifier', { ref: 'verifier' }], ['redirect_uri', { ref: 'redirect' }], ['client_id', { ref: 'client' }]], plain()]],
    [TOKEN_EXCHANGE, 'xsvc', [[grantOf(TOKEN_EXCHANGE), ['subject_token', { ref: 'userJwt' }], ['subject_token_type', { literal: ACCESS_TOKEN_TYPE }]], plain({ basic: 'xsvc' })]],
  ];

  for (const [grant, client, accepted] of GRANTS) {
    it(`POST /auth/token (${grant}): any parameters, encoding and client authentication answer a token or a JSON 4xx`, async () => {
      await explore(accepted, [[grantOf(grant)], plain({ literal: 'Basic Og==' })], (seen) => fc.asyncProperty(params(grant), request(client), async (pairs, r) => {
        const res = await send('/auth/token', pairs, r);
        seen.add(res.status);
        if (res.status === 200) {
          const issued = JSON.parse(res.body) as { access_token: unknown; token_type: unknown };
          assert.equal(typeof issued.access_token, 'string', show(res));
          assert.ok(issued.token_type === 'Bearer' || issued.token_type === 'DPoP', show(res));
        }
      }));
    });
  }

  it('POST /auth/token (any grant_type, or none): any parameters answer a token or a JSON 4xx', async () => {
    await fc.assert(fc.asyncProperty(params(undefined, ['grant_type']), request('svc'), async (pairs, r) => {
      await send('/auth/token', pairs, r);
    }), fuzz(RUNS));
  });

  it('POST /auth/refresh: any parameters answer a token or a JSON 4xx', async () => {
    await explore([[['refresh_token', { ref: 'refresh' }]], plain()], [[['refresh_token', { literal: 'x' }]], plain()], (seen) => fc.asyncProperty(params(undefined, ['refresh_token']), request(), async (pairs, r) => {
      const res = await send('/auth/refresh', pairs, r);
      seen.add(res.status);
      if (res.status === 200) assert.equal(typeof (JSON.parse(res.body) as { access_token: unknown }).access_token, 'string', show(res));
    }));
  });

  it('POST /auth/introspect: any parameters answer {active} or a JSON 4xx', async () => {
    await explore([[['token', { ref: 'userJwt' }]], plain({ basic: 'svc' })], [[['token', { ref: 'userJwt' }]], plain()], (seen) => fc.asyncProperty(params(undefined, ['token']), request('svc'), async (pairs, r) => {
      const res = await send('/auth/introspect', pairs, r);
      seen.add(res.status);
      if (res.status === 200) assert.equal(typeof (JSON.parse(res.body) as { active: unknown }).active, 'boolean', show(res));
    }));
  });

  it('POST /auth/revoke: any parameters answer an empty 200 or a JSON 4xx', async () => {
    await explore([[['token', { literal: 'no-such-token-0123456789' }]], plain({ basic: 'svc' })], [[], plain({ basic: 'svc' })], (seen) => fc.asyncProperty(params(undefined, ['token']), request('svc'), async (pairs, r) => {
      const res = await send('/auth/revoke', pairs, r);
      seen.add(res.status);
      if (res.status === 200) assert.equal(res.body, '', show(res));
    }));
    await assertAlive(t.url);
  });
});
