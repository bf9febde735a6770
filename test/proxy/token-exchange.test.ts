import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { mcpClient, startFront, type Front } from './setup.ts';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';

describe('RFC 8693 token exchange', () => {
  let f: Front;
  let pctx: { id: string; secret: string };
  let userToken: string;

  const exchange = (client: { id: string; secret: string }, params: Record<string, string>) => fetch(`${f.t.url}/auth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: EXCHANGE, ...params }),
  });
  const account = async (id: string, roles: string[], allowTokenExchange = true) => ({ id, secret: (await f.t.hub.serviceAccounts.create({ clientId: id, roles, allowTokenExchange })).clientSecret });
  /** A user's Mimir JWT, as the sign-in flow issues them. */
  const userJwt = async (sub: string, roles: string[], lifetime = 3600) => (await f.t.hub.signer.issue({ sub, client_id: 'mimir-web', roles, email: `${sub}@example.com` }, lifetime)).token;

  before(async () => {
    f = await startFront();
    pctx = await account('pctx-service', ['developer']);
    userToken = await userJwt('alice', ['developer']);
  });
  after(async () => { await f.close(); });

  it('returns a Mimir JWT with sub = the user and act.sub = the service account', async () => {
    const res = await exchange(pctx, { subject_token: userToken, subject_token_type: ACCESS });
    assert.equal(res.status, 200);
    const body = await res.json() as Record<string, any>;
    assert.equal(body.issued_token_type, ACCESS);
    assert.equal(body.token_type, 'Bearer');
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.sub, 'alice');
    assert.deepEqual(claims.act, { sub: 'pctx-service' });
    assert.equal(claims.client_id, 'pctx-service');
    assert.equal(claims.aud, f.t.config.jwt.audience);
    assert.deepEqual(claims.roles, ['developer']);
  });

  for (const generation of [1, 2] as const) {
    it(`an exchanged token lists and calls tools as the user (SDK ${generation}.x)`, async () => {
      const { access_token } = await (await exchange(pctx, { subject_token: userToken, subject_token_type: ACCESS })).json() as { access_token: string };
      const s = await mcpClient(generation, f.t.url, { authorization: `Bearer ${access_token}` });
      try {
        assert.ok((await s.listTools()).includes('memory_search'));
        const seen = JSON.parse(await s.call('whoami')) as Record<string, string>;
        assert.equal(seen['x-user-id'], 'alice');
        assert.equal(seen['x-user-email'], 'alice@example.com');
      } finally {
        await s.close();
      }
    });
  }

  it('nests the previous actor when an exchanged token is exchanged again', async () => {
    const first = (await (await exchange(pctx, { subject_token: userToken, subject_token_type: ACCESS })).json() as { access_token: string }).access_token;
    const agent = await account('agent-svc', ['developer']);
    const res = await exchange(agent, { subject_token: first, subject_token_type: ACCESS });
    assert.equal(res.status, 200);
    const claims = decodeJwt((await res.json() as { access_token: string }).access_token);
    assert.equal(claims.sub, 'alice');
    assert.deepEqual(claims.act, { sub: 'agent-svc', act: { sub: 'pctx-service' } });
  });

  it('narrows roles to what the service account may delegate', async () => {
    const admin = await userJwt('root', ['admin']);
    const asAdmin = decodeJwt((await (await exchange(pctx, { subject_token: admin, subject_token_type: ACCESS })).json() as { access_token: string }).access_token);
    assert.deepEqual(asAdmin.roles, ['developer']);
    const viewer = await userJwt('vera', ['viewer']);
    const { access_token } = await (await exchange(pctx, { subject_token: viewer, subject_token_type: ACCESS })).json() as { access_token: string };
    assert.deepEqual(decodeJwt(access_token).roles, ['viewer']);
    const write = await fetch(`${f.t.url}/api/nodes`, { method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(write.status, 403, 'a viewer stays a viewer through a developer service');
  });

  it('never outlives the subject token', async () => {
    const short = await userJwt('sam', ['developer'], 120);
    const body = await (await exchange(pctx, { subject_token: short, subject_token_type: ACCESS })).json() as { expires_in: number };
    assert.ok(body.expires_in <= 120);
  });

  it('takes the audience from resource (RFC 8707) and refuses unknown targets with invalid_target', async () => {
    const resource = `${f.t.url}/mcp`;
    const ok = await exchange(pctx, { subject_token: userToken, subject_token_type: ACCESS, resource });
    assert.equal(ok.status, 200);
    assert.equal(decodeJwt((await ok.json() as { access_token: string }).access_token).aud, resource);
    const bad = await exchange(pctx, { subject_token: userToken, subject_token_type: ACCESS, audience: 'https://elsewhere.example' });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json() as { error: string }).error, 'invalid_target');
  });

  it('only service accounts created with --allow-token-exchange may exchange (unauthorized_client)', async () => {
    const plain = await account('plain-svc', ['developer'], false);
    const res = await exchange(plain, { subject_token: userToken, subject_token_type: ACCESS });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'unauthorized_client');
  });

  it('requires client authentication (invalid_client)', async () => {
    const res = await fetch(`${f.t.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: EXCHANGE, subject_token: userToken, subject_token_type: ACCESS }) });
    assert.equal(res.status, 401);
    assert.equal((await res.json() as { error: string }).error, 'invalid_client');
  });

  it('refuses missing, malformed, forged and API-key subject tokens with invalid_request', async () => {
    const { key } = await f.t.hub.apiKeys.create({ name: 'k', roles: ['admin'] });
    const forged = userToken.slice(0, -4) + (userToken.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const cases: Array<Record<string, string>> = [
      { subject_token_type: ACCESS },
      { subject_token: userToken },
      { subject_token: userToken, subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' },
      { subject_token: forged, subject_token_type: ACCESS },
      { subject_token: key, subject_token_type: ACCESS },
      { subject_token: userToken, subject_token_type: ACCESS, actor_token: userToken, actor_token_type: ACCESS },
    ];
    for (const params of cases) {
      const res = await exchange(pctx, params);
      assert.equal(res.status, 400, JSON.stringify(Object.keys(params)));
      assert.equal((await res.json() as { error: string }).error, 'invalid_request');
    }
  });

  it('is advertised in the authorization server metadata', async () => {
    const meta = await (await fetch(`${f.t.url}/.well-known/oauth-authorization-server`)).json() as { grant_types_supported: string[] };
    assert.ok(meta.grant_types_supported.includes(EXCHANGE));
  });
});
