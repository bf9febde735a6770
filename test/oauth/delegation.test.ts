/**
 * Issue 15, items 5, E, F and 13: refresh-token reuse revokes one family only (RFC 9700
 * §4.14.2); signing out reaches tokens obtained for the user by token exchange; delegation
 * chains stay short and never loop; a confidential client registered by DCR authenticates at the
 * revocation and introspection endpoints for its own tokens (RFC 7009 §2.1).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { basic, get, postForm, postJson, type Reply } from '../helpers/http.ts';
import { signIn, startRig, type Rig } from '../oidc/setup.ts';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

describe('items 5, E, F: refresh families, sign-out and delegation chains', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ corp: 'generic' }, { storage: 'memory', idpById: { corp: { users: { ada: { roles: ['developer'] } } } } });
  });
  after(async () => rig.close());

  const refresh = (token: string, clientId: string) => postForm(`${rig.hub.url}/auth/token`, { grant_type: 'refresh_token', refresh_token: token, client_id: clientId });
  const me = (headers: Record<string, string>) => get(`${rig.hub.url}/auth/me`, headers);

  it('5: replaying a rotated refresh token revokes that family only; the session and the user\'s other clients keep working', async () => {
    const { res, session } = await signIn(rig, 'corp', { login: 'ada' });
    assert.equal(res.status, 200);
    const sid = (await me({ cookie: `mimir_session=${session}` })).body.sid as string;
    assert.ok(sid, 'the session has an id');
    // Two MCP clients the user authorized from this browser session (as the authorization_code grant issues them).
    const grant = { sub: 'ada', scope: '', roles: ['developer'], publicClient: true, sid, provider: 'corp' };
    const a = await rig.hub.hub.refreshTokens.issue({ ...grant, clientId: 'mimir-cli' });
    const b = await rig.hub.hub.refreshTokens.issue({ ...grant, clientId: 'mimir-cli' });
    const a1 = await refresh(a.token, 'mimir-cli');
    const b1 = await refresh(b.token, 'mimir-cli');
    assert.equal(a1.status, 200);
    assert.equal(b1.status, 200);

    const replay = await refresh(a.token, 'mimir-cli');
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');

    assert.equal((await me({ authorization: `Bearer ${a1.body.access_token}` })).status, 401, 'the replayed family\'s access tokens die');
    assert.equal((await refresh(a1.body.refresh_token, 'mimir-cli')).status, 400, 'and its refresh tokens');
    assert.equal((await me({ authorization: `Bearer ${b1.body.access_token}` })).status, 200, 'the other client\'s access token lives');
    const b2 = await refresh(b1.body.refresh_token, 'mimir-cli');
    assert.equal(b2.status, 200, 'and its refresh token');
    assert.equal((await me({ authorization: `Bearer ${b2.body.access_token}` })).status, 200);
    assert.equal((await me({ cookie: `mimir_session=${session}` })).status, 200, 'the browser session lives');

    // Tokens issued later in the same session work too.
    const c = await rig.hub.hub.refreshTokens.issue({ ...grant, clientId: 'mimir-cli' });
    const c1 = await refresh(c.token, 'mimir-cli');
    assert.equal((await me({ authorization: `Bearer ${c1.body.access_token}` })).status, 200);
  });

  async function exchanger(id: string): Promise<{ id: string; auth: Record<string, string> }> {
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: id, roles: ['developer'], allowTokenExchange: true });
    return { id, auth: basic(id, clientSecret) };
  }
  const exchange = (by: { auth: Record<string, string> }, subject: string): Promise<Reply> =>
    postForm(`${rig.hub.url}/auth/token`, { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: ACCESS_TOKEN }, by.auth);

  it('E: after the user signs out, a token a service obtained for them by token exchange is refused', async () => {
    const { res, session } = await signIn(rig, 'corp', { login: 'ada', accept: 'application/json' });
    const user = await res.json() as { access_token: string };
    const svc = await exchanger('exchanger-e');
    const delegated = await exchange(svc, user.access_token);
    assert.equal(delegated.status, 200, JSON.stringify(delegated.body));
    assert.equal((await me({ authorization: `Bearer ${delegated.body.access_token}` })).status, 200);
    const out = await fetch(`${rig.hub.url}/auth/logout`, { method: 'POST', headers: { cookie: `mimir_session=${session}`, origin: rig.hub.url, accept: 'application/json' } });
    assert.equal(out.status, 200);
    assert.equal((await me({ authorization: `Bearer ${delegated.body.access_token}` })).status, 401);
  });

  it('F: a delegation chain is at most MIMIR_TOKEN_EXCHANGE_MAX_DEPTH (3) actors long, and no actor appears twice', async () => {
    const { res } = await signIn(rig, 'corp', { login: 'ada', accept: 'application/json' });
    let token = (await res.json() as { access_token: string }).access_token;
    const [s1, s2, s3, s4] = [await exchanger('chain-1'), await exchanger('chain-2'), await exchanger('chain-3'), await exchanger('chain-4')];
    const tokens: string[] = [];
    for (const s of [s1!, s2!, s3!]) {
      const r = await exchange(s, token);
      assert.equal(r.status, 200, `${s.id}: ${JSON.stringify(r.body)}`);
      token = r.body.access_token as string;
      tokens.push(token);
    }
    const tooDeep = await exchange(s4!, token);
    assert.equal(tooDeep.status, 400);
    assert.equal(tooDeep.body.error, 'invalid_request');
    const loop = await exchange(s1!, tokens[0]!);
    assert.equal(loop.status, 400, 'chain-1 already acts in that token');
    assert.equal(loop.body.error, 'invalid_request');
  });
});

describe('item 13: a confidential client registered by DCR at /auth/revoke and /auth/introspect', () => {
  let rig: Rig;
  before(async () => { rig = await startRig({ corp: 'generic' }, { storage: 'memory' }); });
  after(async () => rig.close());

  it('authenticates with its registered method, for its own tokens only', async () => {
    const reg = await postJson(`${rig.hub.url}/auth/register`, { redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const clientId = reg.body.client_id as string;
    const secret = reg.body.client_secret as string;
    const mine = await rig.hub.hub.refreshTokens.issue({ sub: 'ada', clientId, scope: 'nodes:read', roles: ['viewer'] });
    const theirs = await rig.hub.hub.refreshTokens.issue({ sub: 'bob', clientId: 'mimir-cli', scope: 'nodes:read', roles: ['viewer'], publicClient: true });

    const introspected = await postForm(`${rig.hub.url}/auth/introspect`, { token: mine.token }, basic(clientId, secret));
    assert.equal(introspected.status, 200);
    assert.equal(introspected.body.active, true);
    const other = await postForm(`${rig.hub.url}/auth/introspect`, { token: theirs.token }, basic(clientId, secret));
    assert.equal(other.status, 200);
    assert.deepEqual(other.body, { active: false }, 'nothing about another client\'s token');

    const wrongMethod = await postForm(`${rig.hub.url}/auth/revoke`, { token: mine.token, client_id: clientId, client_secret: secret });
    assert.equal(wrongMethod.status, 401, 'client_secret_post is not the method it registered');
    assert.equal(wrongMethod.body.error, 'invalid_client');
    const wrongSecret = await postForm(`${rig.hub.url}/auth/revoke`, { token: mine.token }, basic(clientId, 'nope'));
    assert.equal(wrongSecret.status, 401);

    const revoked = await postForm(`${rig.hub.url}/auth/revoke`, { token: mine.token }, basic(clientId, secret));
    assert.equal(revoked.status, 200);
    assert.equal((await rig.hub.hub.refreshTokens.inspect(mine.token))?.family.revokedAt !== undefined, true, 'its family is revoked');
    const notMine = await postForm(`${rig.hub.url}/auth/revoke`, { token: theirs.token }, basic(clientId, secret));
    assert.equal(notMine.status, 400);
    assert.equal(notMine.body.error, 'unauthorized_client');
    assert.equal((await rig.hub.hub.refreshTokens.inspect(theirs.token))?.family.revokedAt, undefined, 'another client\'s family is untouched');
  });
});
