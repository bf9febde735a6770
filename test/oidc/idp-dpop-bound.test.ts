/**
 * RFC 9449 §7.1 for an identity provider's access token: one bound to a DPoP key (`cnf.jkt`, as
 * Okta, Auth0 or Keycloak issue them) works only as `Authorization: DPoP` with a proof made by that
 * key, at the proxy and at /auth/me; as a Bearer token it is refused and reaches nothing upstream.
 * A token bound some other way (mTLS `x5t#S256`, RFC 8705) cannot be checked here and is refused;
 * an unbound one is refused under the DPoP scheme. Found by an attacker's review: each test failed
 * at 8f29cfc (a stolen bound token was as good as a bearer one, and a proof was never read).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dpopKey, dpopProof, type DpopKey } from '../helpers/http.ts';
import { AUDIENCE, startRig, type Rig } from './setup.ts';
import { RBAC_FIXTURE } from '../proxy/setup.ts';
import { startUpstream, type Upstream } from '../proxy/upstream.ts';

describe('an identity provider\'s token bound to a DPoP key (cnf.jkt)', () => {
  let rig: Rig;
  let upstream: Upstream;
  let key: DpopKey;
  before(async () => {
    upstream = await startUpstream();
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_UPSTREAM_URL: upstream.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, MIMIR_OAUTH_AUDIENCE: AUDIENCE } });
    key = await dpopKey();
  });
  after(async () => { await rig?.close(); await upstream?.close(); });

  const bound = (sub: string, cnf: Record<string, unknown> = { jkt: key.jkt }) => {
    const idp = rig.idps.corp!;
    return idp.sign({ sub, aud: AUDIENCE, client_id: idp.clientId, cnf });
  };

  it('is refused as a Bearer token at the proxy, twice (the second from the verified cache), and reaches nothing upstream', async () => {
    const token = await bound('alice');
    const before = upstream.find('/api/nodes/n1').length;
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${rig.hub.url}/api/nodes/n1`, { headers: { authorization: `Bearer ${token}` } });
      const body = await res.json() as { error?: string };
      assert.equal(res.status, 401, `attempt ${i + 1}: ${JSON.stringify(body).slice(0, 160)}`);
      assert.equal(body.error, 'invalid_token');
      assert.match(res.headers.get('www-authenticate') ?? '', /^DPoP /);
    }
    assert.equal(upstream.find('/api/nodes/n1').length, before);
  });

  it('is refused at /auth/me as a Bearer token, and as DPoP without a proof or with another key\'s proof', async () => {
    const token = await bound('bob');
    const me = `${rig.hub.url}/auth/me`;
    assert.equal((await fetch(me, { headers: { authorization: `Bearer ${token}` } })).status, 401);
    const noProof = await fetch(me, { headers: { authorization: `DPoP ${token}` } });
    assert.equal(noProof.status, 401);
    assert.equal((await noProof.json() as { error: string }).error, 'invalid_dpop_proof');
    const other = await dpopKey();
    const wrong = await fetch(me, { headers: { authorization: `DPoP ${token}`, dpop: await dpopProof(other, { htm: 'GET', htu: me, accessToken: token }) } });
    assert.equal(wrong.status, 401);
    assert.equal((await wrong.json() as { error: string }).error, 'invalid_dpop_proof');
  });

  it('works as DPoP with a proof by its key, at /auth/me and through the proxy', async () => {
    const token = await bound('carol');
    const me = `${rig.hub.url}/auth/me`;
    const res = await fetch(me, { headers: { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: me, accessToken: token }) } });
    const body = await res.json() as { sub?: string; cnf?: { jkt: string } };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.sub, 'carol');
    assert.deepEqual(body.cnf, { jkt: key.jkt });
    const url = `${rig.hub.url}/api/nodes/n1`;
    const before = upstream.find('/api/nodes/n1').length;
    const proxied = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await dpopProof(key, { htm: 'GET', htu: url, accessToken: token }) } });
    assert.equal(proxied.status, 200, await proxied.text());
    assert.equal(upstream.find('/api/nodes/n1').length, before + 1);
  });

  it('bound by a certificate (RFC 8705 x5t#S256), which the hub cannot check, is refused; unbound under DPoP is refused', async () => {
    const me = `${rig.hub.url}/auth/me`;
    const mtls = await bound('dave', { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' });
    assert.equal((await fetch(me, { headers: { authorization: `Bearer ${mtls}` } })).status, 401);
    const plain = await rig.idps.corp!.sign({ sub: 'erin', aud: AUDIENCE, client_id: rig.idps.corp!.clientId });
    assert.equal((await fetch(me, { headers: { authorization: `Bearer ${plain}` } })).status, 200, 'unbound as Bearer: accepted');
    const asDpop = await fetch(me, { headers: { authorization: `DPoP ${plain}`, dpop: await dpopProof(key, { htm: 'GET', htu: me, accessToken: plain }) } });
    assert.equal(asDpop.status, 401);
  });
});
