import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIENCE, startRig, type Rig } from '../oidc/setup.ts';
import { serviceAccountToken } from '../helpers/hub.ts';
import { RBAC_FIXTURE } from './setup.ts';
import { startUpstream, type Upstream } from './upstream.ts';

describe('token forwarding (PCTX flow 2)', () => {
  for (const enabled of [true, false]) {
    describe(`MIMIR_ENABLE_TOKEN_FORWARDING=${enabled}`, () => {
      let rig: Rig;
      let upstream: Upstream;
      before(async () => {
        upstream = await startUpstream();
        rig = await startRig({ corp: 'generic' }, {
          env: { MIMIR_UPSTREAM_URL: upstream.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, MIMIR_OAUTH_AUDIENCE: AUDIENCE, MIMIR_ENABLE_TOKEN_FORWARDING: String(enabled) },
        });
      });
      after(async () => {
        await rig?.close();
        await upstream?.close();
      });

      const lastAt = (path: string) => upstream.find(path).at(-1)!.headers;

      it(enabled ? 'an IdP token whose audience is Mimir\'s goes upstream in X-Forwarded-Token, never in Authorization' : 'the IdP token never goes upstream', async () => {
        const idpToken = await rig.idps.corp!.clientCredentialsToken({ resource: AUDIENCE });
        const res = await fetch(`${rig.hub.url}/api/nodes/n1`, { headers: { authorization: `Bearer ${idpToken}` } });
        assert.equal(res.status, 200, await res.text());
        const seen = lastAt('/api/nodes/n1');
        assert.equal(seen['x-forwarded-token'], enabled ? idpToken : undefined);
        assert.equal(seen.authorization, undefined);
      });

      it('a Mimir JWT is never forwarded', async () => {
        const { token } = await serviceAccountToken(rig.hub, ['developer']);
        const res = await fetch(`${rig.hub.url}/api/nodes/n2`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 200);
        assert.equal(lastAt('/api/nodes/n2')['x-forwarded-token'], undefined);
      });

      it('an inbound X-Forwarded-Token is stripped, never passed through', async () => {
        const { token } = await serviceAccountToken(rig.hub, ['developer']);
        await fetch(`${rig.hub.url}/api/nodes/n3`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-token': 'spoofed' } });
        assert.equal(lastAt('/api/nodes/n3')['x-forwarded-token'], undefined);
      });

      it('an IdP token for another audience is refused (401) and reaches nothing', async () => {
        const other = await rig.idps.corp!.sign({ sub: 'u1', aud: 'https://another.example', client_id: rig.idps.corp!.clientId });
        const before = upstream.find('/api/nodes/n4').length;
        const res = await fetch(`${rig.hub.url}/api/nodes/n4`, { headers: { authorization: `Bearer ${other}` } });
        assert.equal(res.status, 401);
        assert.equal(upstream.find('/api/nodes/n4').length, before);
      });
    });
  }
});
