/**
 * Fuzzing DPoP proof parsing (RFC 9449 §4.3, src/dpop/verify-proof.ts): proofs signed by real
 * keys with hostile headers (embedded jwk, typ) and claims (htm, htu, iat, jti, ath), mutated
 * proofs and JWT-shaped garbage, in-process and as the `DPoP` header at the token endpoint and on
 * a protected resource.
 *
 *   node --test test/fuzz/dpop.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/dpop.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…     replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { normalizeHtu, verifyDpopProof } from '../../src/dpop/verify-proof.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import {
  anyString, assertAlive, assertApiAnswer, assertOAuthRefusal, b64url, bounded, errorOf, fuzz, jsonValue, jwtShaped, mutated, raw, RUNS, show, UNIT_RUNS,
} from './support.ts';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

interface Key {
  alg: string;
  privateKey: PrivateKey;
  publicJwk: JWK;
  privateJwk: JWK;
  jkt: string;
}

async function newKey(alg: 'ES256' | 'RS256' | 'EdDSA'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, privateJwk: await exportJWK(privateKey), jkt: await calculateJwkThumbprint(publicJwk) };
}

const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

/** How a proof differs from a valid one: header and claim overrides, dropped claims. */
interface ProofCase {
  key: number;
  /** Embedded jwk: the signing key's, another key's, the private key, or a mutated one. */
  jwk: 'own' | 'other' | 'private' | { mutate: string; value: unknown } | { replace: unknown };
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  dropped: string[];
}

const htuVariant = (url: string) => fc.oneof(
  fc.constant(url),
  fc.constantFrom(`${url}?x=1`, `${url}#frag`, `${url}/`, url.toUpperCase(), url.replace('http://', 'HTTP://'), url.replace('127.0.0.1', '127.0.0.1:80'), url.replace('http:', 'https:'),
    new URL(url).pathname, 'http://[::1', 'not a url', ''),
  mutated([url]),
  jsonValue(1),
);

describe('fuzz: DPoP proofs', () => {
  let t: TestHub;
  let keys: Key[];
  let token: string;
  let basic: string;
  let me: string;
  let tokenUrl: string;

  before(async () => {
    t = await startHub({ storage: 'memory' });
    keys = [await newKey('ES256'), await newKey('EdDSA'), await newKey('RS256')];
    me = `${t.url}/auth/me`;
    tokenUrl = `${t.url}/auth/token`;
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'fuzz-dpop', roles: ['developer'] });
    basic = `Basic ${Buffer.from(`fuzz-dpop:${clientSecret}`).toString('base64')}`;
    const res = await raw(t.url, {
      method: 'POST', path: '/auth/token', body: 'grant_type=client_credentials',
      headers: [['authorization', basic], ['content-type', 'application/x-www-form-urlencoded'], ['dpop', await proof(validCase(0), 'POST', tokenUrl)]],
    });
    assert.equal(res.status, 200, `the valid example the mutations start from is accepted: ${show(res)}`);
    token = (JSON.parse(res.body) as { access_token: string }).access_token;
  });
  after(async () => { await t?.close(); });

  const validCase = (key: number): ProofCase => ({ key, jwk: 'own', header: {}, claims: {}, dropped: [] });

  /** Signs the proof a case describes, always with the case's real private key. */
  async function proof(c: ProofCase, htm: string, htu: string, accessToken?: string): Promise<string> {
    const key = keys[c.key]!;
    let jwk: unknown = key.publicJwk;
    if (c.jwk === 'other') jwk = keys[(c.key + 1) % keys.length]!.publicJwk;
    else if (c.jwk === 'private') jwk = key.privateJwk;
    else if (typeof c.jwk === 'object' && 'mutate' in c.jwk) jwk = { ...key.publicJwk, [c.jwk.mutate]: c.jwk.value };
    else if (typeof c.jwk === 'object') jwk = c.jwk.replace;
    const claims: Record<string, unknown> = {
      htm, htu, jti: randomBytes(12).toString('base64url'), iat: Math.floor(Date.now() / 1000),
      ...(accessToken ? { ath: ath(accessToken) } : {}), ...c.claims,
    };
    for (const name of c.dropped) delete claims[name];
    return new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', ...c.header, alg: key.alg, jwk: jwk as JWK }).sign(key.privateKey);
  }

  const proofCase = (): fc.Arbitrary<ProofCase> => fc.record({
    key: fc.nat({ max: 2 }),
    jwk: fc.oneof(
      { weight: 4, arbitrary: fc.constant('own' as const) },
      { weight: 1, arbitrary: fc.constantFrom('other' as const, 'private' as const) },
      { weight: 2, arbitrary: fc.record({ mutate: fc.constantFrom('kty', 'crv', 'x', 'y', 'n', 'e', 'd', 'alg', 'use', 'key_ops', 'ext', 'kid'), value: fc.oneof(jsonValue(1), anyString(8)) }, { noNullPrototype: true }) },
      { weight: 1, arbitrary: jsonValue(2).map((replace) => ({ replace })) },
    ),
    header: fc.dictionary(fc.constantFrom('typ', 'kid', 'jku', 'x5c', 'cty', 'nonce'),
      fc.oneof(fc.constantFrom('dpop+jwt', 'DPOP+JWT', 'application/dpop+jwt', 'JWT', ''), jsonValue(1)), { maxKeys: 2, noNullPrototype: true }),
    claims: fc.dictionary(fc.constantFrom('htm', 'htu', 'jti', 'iat', 'ath', 'nonce', 'exp'), fc.oneof(
      jsonValue(1), anyString(16),
      fc.integer({ min: -100, max: 100 }).map((d) => Math.floor(Date.now() / 1000) + d),
      fc.constantFrom(1e308, -1e308, 0.5, 2 ** 53, 'GET', 'get', 'POST', 'A'.repeat(300), 'short'),
    ), { maxKeys: 3, noNullPrototype: true }),
    dropped: fc.subarray(['htm', 'htu', 'jti', 'iat', 'ath']),
  }, { noNullPrototype: true });

  it('verifyDpopProof answers any proof signed by a real key with that key\'s thumbprint or invalid_dpop_proof', async () => {
    await fc.assert(fc.asyncProperty(proofCase(), fc.constantFrom('GET', 'POST', 'get'), htuVariant(me), fc.boolean(), async (c, htm, htu, bound) => {
      const signed = await proof({ ...c, claims: { htu, ...c.claims } }, htm, me, bound ? token : undefined);
      try {
        const verified = await verifyDpopProof(signed, { method: 'GET', urls: [me], ...(bound ? { accessToken: token } : {}), store: t.hub.store, now: () => Date.now() });
        assert.equal(verified.jkt, keys[c.key]!.jkt, 'accepted only with the key that signed it');
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_dpop_proof']);
      }
    }), fuzz(RUNS));
  });

  it('verifyDpopProof answers mutated proofs and JWT-shaped garbage with invalid_dpop_proof', async () => {
    const valid = await proof(validCase(0), 'GET', me);
    const garbage = fc.oneof(
      mutated([valid]).filter((v) => v !== valid),
      jwtShaped(fc.oneof(jsonValue(), fc.constant({ typ: 'dpop+jwt', alg: 'ES256', jwk: keys[0]!.publicJwk })), jsonValue()),
      anyString(128),
      fc.constantFrom(`${valid}.${valid}`, `${valid},${valid}`, `${b64url('{"alg":"none","typ":"dpop+jwt"}')}.${valid.split('.')[1]}.`),
    );
    await fc.assert(fc.asyncProperty(garbage, async (value) => {
      let verified;
      try {
        verified = await verifyDpopProof(value, { method: 'GET', urls: [me], store: t.hub.store, now: () => Date.now() });
      } catch (e) {
        assertOAuthRefusal(e, ['invalid_dpop_proof']);
        return;
      }
      // A base64url character whose unused low bits changed decodes to the same bytes: the same proof (its jti is then spent).
      assert.deepEqual([verified.jkt, decodeJwt(value)], [keys[0]!.jkt, decodeJwt(valid)], `accepted ${value}`);
    }), fuzz(UNIT_RUNS));
  });

  // Found by 'verifyDpopProof answers mutated proofs …': jose's base64url decoder skips
  // whitespace, so a proof with a tab (or a space) inside a part verified as the original.
  it('regression (issue 15): a DPoP proof with whitespace inside a part is refused at /auth/token', async () => {
    for (const at of [1, 2]) {
      const parts = (await proof(validCase(0), 'POST', tokenUrl)).split('.');
      parts[at] = `${parts[at]!.slice(0, 10)}\t${parts[at]!.slice(10)}`;
      const res = await raw(t.url, {
        method: 'POST', path: '/auth/token', body: 'grant_type=client_credentials',
        headers: [['authorization', basic], ['content-type', 'application/x-www-form-urlencoded'], ['dpop', parts.join('.')]],
      });
      assert.equal(res.status, 400, show(res));
      assert.equal(errorOf(res), 'invalid_dpop_proof');
    }
  });

  it('normalizeHtu returns a string for any input', () => {
    fc.assert(fc.property(fc.oneof(anyString(64), mutated([me, 'https://a.example:443/x?y#z'])), (value) => {
      assert.equal(typeof bounded('normalizeHtu', () => normalizeHtu(value)), 'string');
    }), fuzz(UNIT_RUNS));
  });

  it('POST /auth/token with any DPoP header answers a token bound to the signing key, or a JSON 400', async () => {
    const header = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(proofCase(), fc.constantFrom('POST', 'post', 'GET'), htuVariant(tokenUrl)).map(([c, htm, htu]) => ({ c, htm, htu })) },
      { weight: 1, arbitrary: anyString(64).map((text) => ({ text })) },
    );
    await fc.assert(fc.asyncProperty(fc.array(header, { minLength: 1, maxLength: 2 }), async (headers) => {
      const values: string[] = [];
      for (const h of headers) values.push('text' in h ? h.text : await proof({ ...h.c, claims: { htu: h.htu, ...h.c.claims } }, h.htm, tokenUrl));
      const res = await raw(t.url, {
        method: 'POST', path: '/auth/token', body: 'grant_type=client_credentials',
        headers: [['authorization', basic], ['content-type', 'application/x-www-form-urlencoded'], ...values.map((v) => ['dpop', v] as const)],
      });
      assertApiAnswer(res, headers);
      if (res.status === 200) {
        const issued = JSON.parse(res.body) as { access_token: string; token_type: string };
        const first = headers[0]!;
        assert.ok(headers.length === 1 && !('text' in first), 'only one well-formed proof yields a token');
        assert.equal(issued.token_type, 'DPoP');
        assert.deepEqual(decodeJwt(issued.access_token).cnf, { jkt: keys[first.c.key]!.jkt });
      } else {
        assert.equal(res.status, 400, show(res));
        assert.equal(errorOf(res), 'invalid_dpop_proof', show(res));
      }
    }), fuzz(RUNS));
    await assertAlive(t.url);
  });

  it('GET /auth/me with a DPoP-bound token and any DPoP header answers 200 only for a proof by the bound key, else a JSON 401', async () => {
    const header = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(proofCase(), fc.constantFrom('GET', 'get', 'POST'), htuVariant(me), fc.boolean()).map(([c, htm, htu, bound]) => ({ c, htm, htu, bound })) },
      { weight: 1, arbitrary: anyString(64).map((text) => ({ text })) },
    );
    await fc.assert(fc.asyncProperty(fc.array(header, { minLength: 0, maxLength: 2 }), fc.constantFrom('DPoP', 'dpop', 'Bearer'), async (headers, scheme) => {
      const values: string[] = [];
      for (const h of headers) values.push('text' in h ? h.text : await proof({ ...h.c, claims: { htu: h.htu, ...h.c.claims } }, h.htm, me, h.bound ? token : undefined));
      const res = await raw(t.url, { path: '/auth/me', headers: [['authorization', `${scheme} ${token}`], ...values.map((v) => ['dpop', v] as const)] });
      assertApiAnswer(res, { headers, scheme });
      if (res.status === 200) {
        const first = headers[0]!;
        assert.ok(headers.length === 1 && !('text' in first) && first.c.key === 0, 'accepted only with a proof by the bound key');
      } else {
        assert.equal(res.status, 401, show(res));
        assert.match(res.headers['www-authenticate'] ?? '', /^DPoP /, show(res));
      }
    }), fuzz(RUNS));
    await assertAlive(t.url);
  });
});
