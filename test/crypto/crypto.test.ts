import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestEqual, hashSecret, randomId, randomPublicId, randomToken, safeEqual, sha256 } from '../../src/crypto/index.ts';
import { OAuthError } from '../../src/errors.ts';
import { createHash } from 'node:crypto';

describe('crypto primitives', () => {
  it('randomPublicId: URL-safe, the requested entropy, never repeating across pool refills', () => {
    const ids = Array.from({ length: 5000 }, () => randomPublicId(16)); // 80,000 bytes: about 20 refills of the 4 KB pool
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{22}$/);
    assert.match(randomPublicId(300), /^[A-Za-z0-9_-]{400}$/);
  });

  it('randomId: lower-case alphanumeric, the requested length, never repeating across pool refills; over 256 refused', () => {
    const ids = Array.from({ length: 5000 }, () => randomId(16)); // 80,000 bytes: about 20 refills of the 4 KB pool
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[a-z0-9]{16}$/);
    // Every one of the 36 characters turns up (no character of the alphabet lost to the modulo).
    assert.equal(new Set(ids.join('')).size, 36);
    assert.match(randomId(256), /^[a-z0-9]{256}$/);
    assert.throws(() => randomId(257), RangeError);
  });

  it('randomId and randomPublicId refuse a count that is not a whole number of 0 or more: the pool they share stays usable', () => {
    const seen = new Set<string>();
    for (const bad of [Number.NaN, -8, 1.5, Infinity]) {
      assert.throws(() => randomId(bad), RangeError, `randomId(${bad})`);
      assert.throws(() => randomPublicId(bad), RangeError, `randomPublicId(${bad})`);
      // Neither the offset made NaN (every id after it empty) nor moved back (an id repeated).
      for (const id of [randomId(8), randomId(8), randomPublicId(16), randomPublicId(16)]) {
        assert.ok(id.length >= 8 && !seen.has(id), `after ${bad}: ${JSON.stringify(id)}`);
        seen.add(id);
      }
    }
    assert.equal(randomId(0), '');
  });

  it('randomToken: URL-safe and unique', () => {
    const tokens = Array.from({ length: 1000 }, () => randomToken(32));
    assert.equal(new Set(tokens).size, tokens.length);
    for (const t of tokens) assert.match(t, /^[A-Za-z0-9_-]{43}$/);
  });

  it('sha256, hashSecret and safeEqual agree with node:crypto', () => {
    assert.deepEqual(sha256('abc'), createHash('sha256').update('abc').digest());
    assert.equal(hashSecret('abc'), createHash('sha256').update('abc').digest('base64url'));
    assert.equal(safeEqual('same', 'same'), true);
    assert.equal(safeEqual('same', 'other'), false);
    assert.equal(safeEqual('short', 'a much longer string'), false);
  });

  it('digestEqual compares stored digests without hashing again; a malformed one never matches', () => {
    const stored = hashSecret('the secret');
    assert.equal(digestEqual(hashSecret('the secret'), stored), true);
    assert.equal(digestEqual(hashSecret('the secreT'), stored), false);
    assert.equal(digestEqual(hashSecret('the secret'), stored.slice(0, -1)), false);
    assert.equal(digestEqual(hashSecret('the secret'), ''), false);
    assert.equal(digestEqual(hashSecret('the secret'), `${stored}x`), false);
  });

  it('an OAuthError carries no stack trace; other errors keep theirs', () => {
    const e = new OAuthError('invalid_token', 'nope');
    assert.equal(e.stack?.includes('\n    at '), false);
    assert.equal(e.message, 'nope');
    assert.ok(e instanceof Error);
    assert.ok((new Error('fault').stack ?? '').includes('\n    at '), 'the limit is restored');
  });
});
