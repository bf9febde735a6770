/**
 * Fuzzing OAuth client metadata (RFC 7591 §2, src/oauth/clients/metadata.ts) in-process and at
 * POST /auth/register, and the authorization request (RFC 6749 §4.1.1) at GET /auth/authorize.
 *
 *   node --test test/fuzz/register.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/register.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…         replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { checkRedirectUri, redirectUriMatches, validateClientMetadata } from '../../src/oauth/clients/metadata.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import {
  anyString, applyEdits, assertAlive, assertApiAnswer, assertOAuthRefusal, bounded, edits, fuzz, hostile, jsonValue, raw, request, RUNS, show, UNIT_RUNS,
} from './support.ts';

const URIS = ['https://app.example/callback', 'http://127.0.0.1/callback', 'http://localhost:8080/cb', 'http://[::1]/cb', 'https://app.example/cb?x=1',
  'http://app.example/cb', 'https://user:pw@app.example/cb', 'https://app.example/cb#frag', 'javascript:alert(1)', 'app.example/cb', 'https://', 'HTTPS://APP.EXAMPLE/CB'];

const uri = hostile(URIS, 64);

/** Hostile values per member of RFC 7591 §2 metadata. */
const MEMBERS: Record<string, fc.Arbitrary<unknown>> = {
  redirect_uris: fc.oneof({ weight: 4, arbitrary: fc.array(uri, { minLength: 0, maxLength: 3 }) }, { weight: 1, arbitrary: jsonValue(2) }),
  client_name: fc.oneof(anyString(64), fc.constant('x'.repeat(201)), jsonValue(1)),
  client_uri: fc.oneof(uri, jsonValue(1)),
  logo_uri: fc.oneof(uri, jsonValue(1)),
  grant_types: fc.oneof(fc.array(hostile(['authorization_code', 'refresh_token', 'client_credentials', 'implicit', 'urn:ietf:params:oauth:grant-type:jwt-bearer']), { maxLength: 3 }), jsonValue(1)),
  response_types: fc.oneof(fc.array(hostile(['code', 'token']), { maxLength: 2 }), jsonValue(1)),
  token_endpoint_auth_method: fc.oneof(hostile(['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt']), jsonValue(1)),
  scope: fc.oneof(hostile(['nodes:read mcp:*', '*']), jsonValue(1)),
  software_id: fc.oneof(anyString(), jsonValue(1)),
  software_version: fc.oneof(anyString(), jsonValue(1)),
  client_id: fc.oneof(anyString(), jsonValue(1)),
  client_secret: anyString(),
  jwks: jsonValue(2),
  contacts: jsonValue(2),
};

/**
 * RFC 7591 §2 metadata: a valid document with up to three members replaced by hostile values,
 * removed or added; now and then any JSON at all.
 */
const metadata: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(
    fc.record({
      redirect_uris: fc.subarray(URIS.slice(0, 5), { minLength: 1 }),
      client_name: fc.constant('Fuzz App'),
      token_endpoint_auth_method: fc.constantFrom('none', 'client_secret_basic', 'client_secret_post'),
      grant_types: fc.subarray(['authorization_code', 'refresh_token'], { minLength: 1 }),
      response_types: fc.constant(['code']),
      scope: fc.constant('nodes:read'),
      client_uri: fc.constant('https://app.example'),
    }, { requiredKeys: ['redirect_uris'], noNullPrototype: true }),
    fc.array(fc.constantFrom(...Object.keys(MEMBERS)).chain((name) => fc.option(MEMBERS[name]!, { freq: 4 }).map((v) => [name, v] as const)), { maxLength: 3 }),
  ).map(([doc, changes]) => {
    const out: Record<string, unknown> = { ...doc };
    for (const [name, v] of changes) if (v === null) delete out[name]; else out[name] = v;
    return out;
  }) },
  { weight: 1, arbitrary: jsonValue(3) },
);

/** What an accepted registration must still satisfy, whatever went in. */
function assertRedirectUrisSafe(uris: readonly string[]): void {
  for (const value of uris) {
    const u = new URL(value);
    assert.ok(!u.hash && !value.includes('#') && !u.username && !u.password, `accepted ${value}`);
    assert.ok(u.protocol === 'https:' || (u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)), `accepted ${value}`);
  }
}

describe('fuzz: client metadata (RFC 7591)', () => {
  it('validateClientMetadata answers any document with safe metadata or invalid_client_metadata / invalid_redirect_uri', () => {
    fc.assert(fc.property(metadata, (input) => {
      try {
        const m = bounded('validateClientMetadata', () => validateClientMetadata(JSON.parse(JSON.stringify(input) ?? 'null')));
        assertRedirectUrisSafe(m.redirect_uris);
        assert.ok(['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'].includes(m.token_endpoint_auth_method));
        assert.ok(m.grant_types.every((g) => g === 'authorization_code' || g === 'refresh_token' || g === 'urn:ietf:params:oauth:grant-type:jwt-bearer'));
        // A redirect-based client has somewhere to be sent back to; only a confidential client may take assertions.
        assert.ok(!m.grant_types.includes('authorization_code') || m.redirect_uris.length > 0);
        assert.ok(!m.grant_types.includes('urn:ietf:params:oauth:grant-type:jwt-bearer') || m.token_endpoint_auth_method !== 'none');
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_client_metadata', 'invalid_redirect_uri']);
      }
    }), fuzz(UNIT_RUNS));
  });

  it('checkRedirectUri and redirectUriMatches answer any string', () => {
    fc.assert(fc.property(uri, fc.array(uri, { maxLength: 3 }), (value, registered) => {
      try {
        assertRedirectUrisSafe([bounded('checkRedirectUri', () => checkRedirectUri(value)).href]);
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_redirect_uri']);
      }
      assert.equal(typeof bounded('redirectUriMatches', () => redirectUriMatches(registered, value)), 'boolean');
    }), fuzz(UNIT_RUNS));
  });
});

describe('fuzz: POST /auth/register and GET /auth/authorize', () => {
  let t: TestHub;
  let clientId: string;
  before(async () => {
    t = await startHub({ storage: 'memory', env: { MIMIR_REGISTRATION_RATE_LIMIT: '100000' } });
    const res = await request(`${t.url}/auth/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1/callback', 'https://app.example/cb'], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(res.status, 201, show(res));
    clientId = (JSON.parse(res.body) as { client_id: string }).client_id;
  });
  after(async () => { await t?.close(); });

  it('any metadata, as JSON or mutated JSON text, answers 201 with safe metadata or a JSON 4xx', async () => {
    const seen = new Set<number>();
    const type = fc.option(fc.constantFrom('application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=utf-16', ''), { freq: 6 });
    await fc.assert(fc.asyncProperty(metadata, fc.option(edits, { freq: 4 }), type, async (input, mutation, contentType) => {
      const text = JSON.stringify(input) ?? 'null';
      const body = mutation ? applyEdits(text, mutation) : text;
      const headers: Array<[string, string]> = contentType === '' ? [] : [['content-type', contentType ?? 'application/json']];
      const res = await raw(t.url, { method: 'POST', path: '/auth/register', headers, body });
      assertApiAnswer(res, body);
      seen.add(res.status);
      if (res.status === 201) {
        const client = JSON.parse(res.body) as { client_id: string; redirect_uris: string[]; token_endpoint_auth_method: string; client_secret?: string };
        assert.match(client.client_id, /^dyn_/);
        assertRedirectUrisSafe(client.redirect_uris);
        assert.equal(client.client_secret !== undefined, client.token_endpoint_auth_method.startsWith('client_secret_'), show(res));
      }
    }), fuzz(RUNS, { examples: [[{ redirect_uris: ['https://app.example/cb'] }, null, null], [{ redirect_uris: [] }, null, null]] }));
    assert.ok(seen.has(201) && [...seen].some((s) => s >= 400), `the runs reached both outcomes (statuses ${[...seen].join(', ')})`);
    await assertAlive(t.url);
  });

  it('GET /auth/authorize with any query answers a redirect, an HTML error page or a JSON 4xx, never a 5xx', async () => {
    const challenge = randomBytes(32).toString('base64url');
    const valid = () => ({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', code_challenge: challenge, code_challenge_method: 'S256',
      state: 'xyz', scope: 'nodes:read', resource: `${t.url}/mcp`,
    });
    const query = fc.tuple(
      fc.dictionary(fc.constantFrom(...Object.keys(valid())), fc.oneof(anyString(32), fc.constant(clientId), fc.constant('http://127.0.0.1:9999/callback')), { maxKeys: 3, noNullPrototype: true }),
      fc.subarray(Object.keys(valid())),
      fc.option(fc.tuple(fc.constantFrom(...Object.keys(valid()), 'x'), anyString(8)), { freq: 4 }),
      fc.option(edits, { freq: 5 }),
    );
    await fc.assert(fc.asyncProperty(query, async ([overrides, dropped, repeated, mutation]) => {
      const q: Record<string, string> = { ...valid(), ...overrides };
      for (const name of dropped) delete q[name];
      const params = new URLSearchParams(q);
      if (repeated) params.append(...repeated);
      const target = mutation ? applyEdits(`/auth/authorize?${params}`, mutation) : `/auth/authorize?${params}`;
      // A request target is ASCII without spaces (RFC 9112 §3.2): percent-encode whatever the edits put in.
      const path = target.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c.replace(/[\ud800-\udfff]/g, '\ufffd')));
      const res = await raw(t.url, { path });
      assert.ok(res.status < 500, `${path} answered ${show(res)}`);
      if (res.status >= 300 && res.status < 400) assert.ok(res.headers.location, show(res));
    }), fuzz(RUNS));
    await assertAlive(t.url);
  });
});
