/**
 * What cached tokens share (src/cache/intern.ts): one frozen copy of the lists and headers they
 * hold alike, the values themselves unchanged, and a table that stays bounded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Interner } from '../../src/cache/intern.ts';
import { VerifiedTokenCache } from '../../src/cache/verified-tokens.ts';
import type { VerifiedAccessToken } from '../../src/jwt/access-token.ts';

const keys = { verificationKey: (kid: string) => (kid === 'k1' ? {} : undefined) };

/** A verification as jose returns it: objects and arrays of its own, parsed from JSON. */
function verification(n: number, extra: Record<string, unknown> = {}): VerifiedAccessToken {
  const payload = JSON.parse(JSON.stringify({
    iss: 'https://hub.example', aud: 'https://hub.example', sub: `user-${n}`, jti: `jti-${n}`, client_id: 'pctx', scope: 'nodes:read nodes:write',
    roles: ['developer', 'viewer'], groups: [], iat: 1, exp: Math.floor(Date.now() / 1000) + 600, ...extra,
  })) as VerifiedAccessToken['payload'];
  return { payload, header: JSON.parse('{"alg":"RS256","kid":"k1","typ":"at+jwt"}') as VerifiedAccessToken['header'] };
}

describe('values shared by cached tokens', () => {
  it('two cached tokens hold one frozen copy of their roles, groups and header; every claim keeps its value', () => {
    const cache = new VerifiedTokenCache(10);
    const [a, b] = [verification(1), verification(2)];
    const before = structuredClone(a);
    cache.set('token-a', a);
    cache.set('token-b', b);
    const [ca, cb] = [cache.get('token-a', keys)!, cache.get('token-b', keys)!];
    assert.equal(ca.payload.roles, cb.payload.roles);
    assert.equal(ca.payload.groups, cb.payload.groups);
    assert.equal(ca.header, cb.header);
    assert.ok(Object.isFrozen(ca.payload.roles) && Object.isFrozen(ca.header) && Object.isFrozen(ca.payload));
    assert.throws(() => (ca.payload.roles as string[]).push('admin'), TypeError);
    assert.deepEqual(structuredClone(ca), before, 'the cached verification says what the token said');
    assert.equal(cb.payload.sub, 'user-2');
    assert.equal(cb.payload.jti, 'jti-2');
  });

  it('a list with anything but strings, or a header with a nested member, is kept as it is (frozen, not shared)', () => {
    const cache = new VerifiedTokenCache(10);
    const a = verification(1, { roles: ['developer', { x: 1 }] });
    const b = verification(2, { roles: ['developer', { x: 1 }] });
    a.header = { ...a.header, jwk: { kty: 'OKP' } } as VerifiedAccessToken['header'];
    cache.set('a', a);
    cache.set('b', b);
    assert.notEqual(cache.get('a', keys)!.payload.roles, cache.get('b', keys)!.payload.roles);
    assert.deepEqual(cache.get('a', keys)!.header.jwk, { kty: 'OKP' });
    assert.ok(Object.isFrozen(cache.get('a', keys)!.payload.roles));
  });

  it('the table is bounded: past its size it starts afresh, and equal values still come back equal', () => {
    const shared = new Interner(4);
    const first = shared.list(['a']);
    for (let i = 0; i < 10; i++) shared.list([`other-${i}`]);
    const again = shared.list(['a']);
    assert.deepEqual(again, ['a']);
    assert.notEqual(again, first, 'the table forgot the first list when it filled');
    assert.equal(shared.list(['a']), again);
    assert.equal(shared.list([]), shared.list([]), 'every empty list is one frozen array');
    assert.ok(Object.isFrozen(shared.list([])));
    const odd = JSON.parse('{"alg":"RS256","__proto__":"x"}') as object;
    assert.deepEqual(Object.entries(shared.record(odd)), [['alg', 'RS256'], ['__proto__', 'x']], 'a member named __proto__ is kept as one');
    const long = 'x'.repeat(600);
    assert.equal(shared.string(long), long);
  });
});
