/**
 * Issue 15, finding 7: AES-GCM must refuse a truncated authentication tag. GCM checks only as many
 * tag bytes as it is given, so a decipher that accepts 4 bytes lets a forger try 2^32 times, not
 * 2^128 (NIST SP 800-38D §5.2.1.2, Appendix C). Replayed on a cookie-mode session.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { seal, unseal } from '../../src/crypto/index.ts';
import { me, signIn, startRig, type Rig } from '../oidc/setup.ts';

/** The sealed box `v1.iv.tag.ct` with its tag cut to `bytes` bytes. */
function truncateTag(box: string, bytes: number): string {
  const parts = box.split('.');
  parts[2] = Buffer.from(parts[2]!, 'base64url').subarray(0, bytes).toString('base64url');
  return parts.join('.');
}

describe('AES-GCM refuses truncated authentication tags (issue 15, finding 7)', () => {
  it('unseal opens a whole 16-byte tag and refuses one cut to 4, 8, 12 or 15 bytes', () => {
    const key = randomBytes(32);
    const box = seal(key, 'the plaintext', 'purpose');
    assert.equal(unseal(key, box, 'purpose')?.toString(), 'the plaintext');
    for (const bytes of [4, 8, 12, 15]) assert.equal(unseal(key, truncateTag(box, bytes), 'purpose'), null, `${bytes}-byte tag`);
  });

  it('unseal refuses an IV that is not 96 bits', () => {
    const key = randomBytes(32);
    const parts = seal(key, 'x').split('.');
    parts[1] = Buffer.concat([Buffer.from(parts[1]!, 'base64url'), Buffer.alloc(4)]).toString('base64url');
    assert.equal(unseal(key, parts.join('.')), null);
  });

  describe('a cookie-mode session cookie (MIMIR_SESSION_STORAGE=cookie)', () => {
    let rig: Rig;
    before(async () => { rig = await startRig({ corp: 'generic' }, { storage: 'memory', env: { MIMIR_SESSION_STORAGE: 'cookie' } }); });
    after(async () => { await rig?.close(); });

    it('signs in with its whole tag; with the tag cut to 4, 8 or 12 bytes /auth/me answers 401', async () => {
      const { session } = await signIn(rig, 'corp');
      assert.ok(session, 'the sign-in set a session cookie');
      const name = rig.hub.config.session.cookie.name;
      assert.equal((await me(rig.hub, { cookie: `${name}=${session}` })).status, 200);
      for (const bytes of [4, 8, 12]) {
        const forged = truncateTag(session, bytes);
        assert.equal((await me(rig.hub, { cookie: `${name}=${forged}` })).status, 401, `${bytes}-byte tag`);
      }
    });
  });
});
