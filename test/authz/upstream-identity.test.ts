/**
 * Issue 15, items A, B and D: what the upstream is told about the caller. Mimir splits
 * X-User-Roles on commas and trims, and keys its data on X-User-ID: the hub never sends a role
 * it did not grant, never breaks on a role named like an object property, and never gives two
 * principals the same id.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type Upstream } from '../proxy/upstream.ts';
import { AUDIENCE, signIn, startRig, type Rig } from '../oidc/setup.ts';
import { basic, postForm } from '../helpers/http.ts';

interface Echo { identity: Record<string, string | undefined> }

describe('items A, B, D: identity toward the upstream', () => {
  let upstream: Upstream;
  let rig: Rig;
  before(async () => {
    upstream = await startUpstream();
    rig = await startRig({ corp: 'generic', partner: 'generic' }, {
      storage: 'memory',
      env: { MIMIR_UPSTREAM_URL: upstream.url },
      idpById: {
        corp: { users: {
          alice: { roles: ['developer'] },
          injector: { roles: ['viewer,admin', 'admin ', ' admin', 'developer'] },
          'svc-bot': { roles: ['viewer'] },
          'odd:sub': { roles: ['viewer'] },
        } },
        partner: { users: { alice: { roles: ['viewer'] } } },
      },
    });
  });
  after(async () => {
    await rig.close();
    await upstream.close();
  });

  async function echo(headers: Record<string, string>): Promise<Echo> {
    const res = await fetch(`${rig.hub.url}/api/nodes/1`, { headers });
    assert.equal(res.status, 200, await res.clone().text());
    return await res.json() as Echo;
  }

  async function sessionOf(provider: string, login: string): Promise<string> {
    const { session, res } = await signIn(rig, provider, { login });
    assert.ok(session, `signed in as ${login}@${provider}: ${res.status}`);
    return `mimir_session=${session}`;
  }

  it('A: an IdP role "viewer,admin", "admin " or " admin" never reaches X-User-Roles (session and bearer)', async () => {
    const cookie = await sessionOf('corp', 'injector');
    const bySession = await echo({ cookie });
    const roles = (bySession.identity['x-user-roles'] ?? '').split(',').map((r) => r.trim());
    assert.deepEqual(roles, ['developer']);
    assert.ok(!roles.includes('admin'));

    const idp = rig.idps.corp!;
    const token = await idp.sign({ sub: 'injector', aud: AUDIENCE, roles: ['viewer,admin', 'admin ', ' admin', 'developer'] });
    const byBearer = await echo({ authorization: `Bearer ${token}` });
    assert.deepEqual((byBearer.identity['x-user-roles'] ?? '').split(',').map((r) => r.trim()), ['developer']);
  });

  it('B: roles named like object properties are unknown roles (no 500)', async () => {
    const key = (await rig.hub.hub.apiKeys.create({ name: 'proto', roles: ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'] })).key;
    const me = await fetch(`${rig.hub.url}/auth/me`, { headers: { 'x-api-key': key } });
    assert.equal(me.status, 200);
    const body = await me.json() as { permissions: string[] };
    assert.deepEqual(body.permissions.sort(), ['files:read', 'nodes:read', 'orchestration:read', 'search:execute'], 'the default role, nothing more');
    const seen = await echo({ 'x-api-key': key });
    assert.equal(seen.identity['x-user-roles'], 'viewer', 'only the default role the hub granted');
  });

  it('D: alice of the default provider and alice of another provider arrive as different users', async () => {
    const corp = await echo({ cookie: await sessionOf('corp', 'alice') });
    const partner = await echo({ cookie: await sessionOf('partner', 'alice') });
    assert.equal(corp.identity['x-user-id'], 'alice', 'the default provider keeps its plain ids');
    assert.equal(partner.identity['x-user-id'], 'partner:alice');
    assert.equal(partner.identity['x-user-roles'], 'viewer');
  });

  it('D: an IdP user named like a service account, and a default-provider sub with a colon, stay distinct', async () => {
    await rig.hub.hub.serviceAccounts.create({ clientId: 'svc-bot', roles: ['viewer'] });
    const user = await echo({ cookie: await sessionOf('corp', 'svc-bot') });
    assert.equal(user.identity['x-user-id'], 'svc-bot');
    const odd = await echo({ cookie: await sessionOf('corp', 'odd:sub') });
    assert.equal(odd.identity['x-user-id'], 'corp:odd:sub', 'a sub holding ":" is prefixed, so it cannot pose as another provider\'s user');
  });

  it('D: a trusted service names the user by the hub\'s id; service accounts and unknown prefixes are refused', async () => {
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'svc-bot-2', roles: ['developer'], allowUserContext: true });
    const token = (await postForm(`${rig.hub.url}/auth/token`, { grant_type: 'client_credentials' }, basic('svc-bot-2', clientSecret))).body.access_token as string;
    const bot = await echo({ authorization: `Bearer ${token}` });
    assert.equal(bot.identity['x-user-id'], 'service-account:svc-bot-2');
    const asPartner = await echo({ authorization: `Bearer ${token}`, 'x-user-id': 'partner:alice', 'x-user-roles': 'viewer' });
    assert.equal(asPartner.identity['x-user-id'], 'partner:alice');
    for (const id of ['service-account:svc-bot', 'api-key:abc', 'nosuchprovider:alice']) {
      const res = await fetch(`${rig.hub.url}/api/nodes/1`, { headers: { authorization: `Bearer ${token}`, 'x-user-id': id } });
      assert.equal(res.status, 400, id);
    }
  });
});
