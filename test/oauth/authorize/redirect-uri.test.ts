/**
 * Issue 15, finding 14: /auth/authorize took a loopback redirect URI with userinfo or a fragment
 * because the loopback rule (any port, RFC 8252 §7.3) compared only host, path and query. Such a
 * URI is refused as registration refuses it (RFC 6749 §3.1.2: no fragment; no credentials), on an
 * error page: never a redirect to it (RFC 6749 §4.1.2.1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../../helpers/hub.ts';
import { authorizeUrl, pkce } from '../../helpers/authorize-flow.ts';

describe('/auth/authorize refuses loopback redirect URIs with userinfo or a fragment (issue 15, finding 14)', () => {
  let t: TestHub;
  before(async () => { t = await startHub({ storage: 'memory' }); });
  after(async () => { await t?.close(); });

  const request = (redirectUri: string) => fetch(authorizeUrl(t, {
    client_id: 'mimir-cli', redirect_uri: redirectUri, response_type: 'code', state: 's',
    code_challenge: pkce().challenge, code_challenge_method: 'S256',
  }), { redirect: 'manual' });

  it('a loopback redirect on any port is still accepted (sign-in comes next)', async () => {
    const res = await request('http://127.0.0.1:5555/callback');
    assert.equal(res.status, 302);
    assert.match(res.headers.get('location') ?? '', /^\/auth\/login\?returnTo=/);
  });

  for (const uri of [
    'http://user@127.0.0.1:5555/callback',
    'http://user:pw@127.0.0.1:5555/callback',
    'http://evil.example@127.0.0.1/callback',
    'http://127.0.0.1:5555/callback#frag',
    'http://127.0.0.1:5555/callback#',
    'http://user@[::1]:5555/callback',
  ]) {
    it(`${uri} is refused on a 400 error page, never redirected to`, async () => {
      const res = await request(uri);
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('location'), null);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(await res.text(), /redirect/i);
    });
  }
});
