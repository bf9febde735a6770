/**
 * Issue 15, finding 6: a value that is one of the hub's own credentials, presented as
 * `Authorization: Bearer`, never leaves the hub. Legacy API keys (MIMIR_API_KEYS) and hub refresh
 * tokens are recognised before any opaque value is sent to an IdP's introspection, tokeninfo or
 * userinfo endpoint.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { me, signIn, startRig, type Rig } from './setup.ts';

const LEGACY_KEY = 'legacy-key-0123456789abcdef';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const IDP_PATHS = ['/token/introspection', '/tokeninfo', '/me'];

describe('issue 15: hub credentials sent as bearer tokens never reach an IdP', () => {
  let rig: Rig;
  /** Requests so far to every IdP endpoint an opaque token could be sent to. */
  const idpAsked = () => Object.values(rig.idps).reduce((n, idp) => n + IDP_PATHS.reduce((m, path) => m + idp.requests(path), 0), 0);

  before(async () => {
    // ok: introspection; gg: Google tokeninfo + userinfo. Both would be asked about an unknown opaque value.
    rig = await startRig({ ok: 'okta', gg: 'google' }, {
      storage: 'memory',
      settings: { ok: { opaqueTokens: 'introspection' } },
      env: { MIMIR_API_KEYS: `${LEGACY_KEY}:developer` },
    });
  });
  after(async () => { await rig?.close(); });

  it('an opaque value the hub does not know is asked of the IdPs (the counter sees it)', async () => {
    const before = idpAsked();
    assert.equal((await me(rig.hub, bearer('an-opaque-value-nobody-issued-0123456789'))).status, 401);
    assert.ok(idpAsked() > before);
  });

  it('a legacy API key as a bearer token is accepted without asking any IdP', async () => {
    const before = idpAsked();
    const { status, body } = await me(rig.hub, bearer(LEGACY_KEY));
    assert.equal(status, 200);
    assert.equal(body.auth_method, 'api-key');
    assert.equal(idpAsked(), before);
  });

  it('a hub refresh token as a bearer token is 401 invalid_token without asking any IdP', async () => {
    const { res } = await signIn(rig, 'ok', { accept: 'application/json' });
    assert.equal(res.status, 200);
    const { refresh_token: refreshToken } = await res.json() as { refresh_token: string };
    assert.equal(typeof refreshToken, 'string');
    const before = idpAsked();
    const { status, body } = await me(rig.hub, bearer(refreshToken));
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_token');
    assert.equal(idpAsked(), before);
  });
});
