/**
 * A hub URL carrying a user name or password is refused when the client is made, read as fetch
 * reads URLs (WHATWG): `https:bob:pw@host`, a leading space, a tab inside the scheme all carry
 * credentials there. No message repeats the password, the plain-http refusal's included. Found by
 * an attacker's review of 498aaaa, whose check was a regex on `scheme://user@`; each failed before.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMimirClient } from '../../src/client/index.ts';

const SECRET = 'hunter2-s3cret';

describe('a hub URL with credentials', () => {
  for (const url of [`https://bob:${SECRET}@hub.example`, `https:bob:${SECRET}@hub.example`, ` https://bob:${SECRET}@hub.example`, `ht\ttps://bob:${SECRET}@hub.example`, `http:bob:${SECRET}@hub.example`]) {
    it(`${JSON.stringify(url)} is refused at creation, without the password`, () => {
      assert.throws(() => createMimirClient({ fromEnv: false, url, serviceAccountId: 'svc', serviceAccountSecret: 'x' }), (e: Error) => {
        assert.doesNotMatch(e.message, new RegExp(SECRET));
        assert.match(e.message, /must not carry a user name or password/);
        return true;
      });
    });
  }
});
