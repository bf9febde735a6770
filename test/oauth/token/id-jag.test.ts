/**
 * Enterprise-managed authorization (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant; the
 * MCP enterprise-managed authorization extension): a client presents, with its own credentials,
 * an Identity Assertion JWT Authorization Grant its user's enterprise IdP issued, and gets that
 * user's token for the named resource. The IdPs are real OpenID providers on loopback (one
 * Okta-shaped, one generic) that sign the assertions with their own keys; the MCP SDK's
 * CrossAppAccessProvider is one client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { auth, CrossAppAccessProvider } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import type { AuditEvent } from '../../../src/audit/index.ts';
import { startHub } from '../../helpers/hub.ts';
import { basic, dpopKey, dpopProof, postForm, postJson, type Reply } from '../../helpers/http.ts';
import type { TestIdp } from '../../helpers/idp.ts';
import { startJwtIssuer, type JwtIssuer } from '../../helpers/jwt-issuer.ts';
import { me, sessionCookie, signIn, startRig, type Rig } from '../../oidc/setup.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ID_JAG_TYP = 'oauth-id-jag+jwt';

describe('ID-JAG at /auth/token (enterprise-managed authorization)', () => {
  let rig: Rig;
  let stranger: JwtIssuer;
  let client: { id: string; secret: string };
  const events: AuditEvent[] = [];
  const hub = () => rig.hub;
  const token = (form: Record<string, string>, headers: Record<string, string> = {}) => postForm(`${hub().url}/auth/token`, form, headers);
  const asClient = (assertion: string, extra: Record<string, string> = {}, who = client) => token({ grant_type: JWT_BEARER, assertion, ...extra }, basic(who.id, who.secret));

  /** An ID-JAG as an IdP issues it (draft §3): for `sub`, to the client, for the hub, single use. */
  function idJag(idp: TestIdp | JwtIssuer, claims: Record<string, unknown> = {}, header: { typ?: string } = { typ: ID_JAG_TYP }): Promise<string> {
    const body = { sub: 'jane', client_id: client.id, aud: hub().config.jwt.issuer, resource: hub().config.publicUrl, jti: randomUUID(), ...claims };
    return 'kind' in idp ? idp.sign(body, header) : idp.sign(body, header.typ ? { typ: header.typ } : {});
  }

  async function registerClient(body: Record<string, unknown>): Promise<Reply> {
    return postJson(`${hub().url}/auth/register`, { client_name: 'XAA client', grant_types: [JWT_BEARER], ...body });
  }

  before(async () => {
    stranger = await startJwtIssuer({ alg: 'RS256' });
    rig = await startRig({ corp: 'okta', partner: 'generic' }, {
      env: { MIMIR_ENABLE_ID_JAG: 'true' },
      // Okta groups are roles here through the provider's mapping (the same as at sign-in).
      settings: { corp: { roleMappings: { 'eng-team': ['developer'] } } },
      idpById: { corp: { users: { jane: { groups: ['eng-team'] } } } },
    });
    rig.hub.hub.audit.observe((e) => events.push(e));
    const registered = await registerClient({ token_endpoint_auth_method: 'client_secret_basic' });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    assert.deepEqual(registered.body.redirect_uris, [], 'a jwt-bearer client needs no redirect URI');
    client = { id: registered.body.client_id, secret: registered.body.client_secret };
  });
  after(async () => {
    await rig.close();
    await stranger.close();
  });

  it('a client presenting an ID-JAG for its user gets that user\'s token: aud = resource, scope = requested ∩ the user\'s permissions', async () => {
    const res = await asClient(await idJag(rig.idps.corp!, { groups: ['eng-team'], email: 'jane@example.com', email_verified: true }), { scope: 'nodes:read admin:manage' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.scope, 'nodes:read', 'admin:manage is not the developer\'s');
    assert.equal(res.body.refresh_token, undefined);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const claims = decodeJwt(res.body.access_token);
    assert.equal(claims.sub, 'jane');
    assert.equal(claims.client_id, client.id);
    assert.equal(claims.aud, hub().config.publicUrl);
    assert.equal(claims.provider, 'corp');
    assert.deepEqual(claims.roles, ['developer'], 'eng-team mapped to developer through the provider\'s roleMappings');
    assert.equal(claims.email, 'jane@example.com');
    const issued = events.find((e) => e.type === 'token_issued' && e.outcome === 'success' && e.jti === claims.jti);
    assert.ok(issued, 'the issued token is audited');
    assert.equal(issued.grant_type, JWT_BEARER);
    assert.equal(issued.client, client.id);
    assert.doesNotMatch(JSON.stringify(events), /eyJ[\w-]+\.eyJ/, 'no token or assertion in the audit events');
  });

  it('the token\'s user is the same upstream user (X-User-ID) as the one who signs in through that IdP', async () => {
    const signedIn = await signIn(rig, 'partner', { login: 'sam', accept: 'application/json' });
    const bySession = await me(hub(), { cookie: sessionCookie(hub(), signedIn.session) });
    assert.equal(bySession.status, 200);
    const res = await asClient(await idJag(rig.idps.partner!, { sub: bySession.body.sub, roles: ['developer'] }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const byGrant = await me(hub(), { authorization: `Bearer ${res.body.access_token}` });
    assert.equal(byGrant.status, 200, JSON.stringify(byGrant.body));
    const upstream = (r: { body: Record<string, unknown> }) => (r.body.upstream as { id: string }).id;
    assert.equal(upstream(byGrant), 'partner:sam');
    assert.equal(upstream(byGrant), upstream(bySession));
  });

  it('the MCP SDK\'s CrossAppAccessProvider gets a token for /mcp with the assertion its IdP gave it', async () => {
    let seen: { authorizationServerUrl: string; resourceUrl: string } | undefined;
    const provider = new CrossAppAccessProvider({
      clientId: client.id, clientSecret: client.secret, expectedIssuer: hub().config.jwt.issuer,
      assertion: async (ctx) => {
        seen = ctx;
        return idJag(rig.idps.corp!, { aud: ctx.authorizationServerUrl, resource: ctx.resourceUrl, groups: ['eng-team'] });
      },
    });
    assert.equal(await auth(provider, { serverUrl: new URL(`${hub().url}/mcp`) }), 'AUTHORIZED');
    assert.equal(seen?.resourceUrl, `${hub().url}/mcp`);
    const claims = decodeJwt(provider.tokens()!.access_token);
    assert.equal(claims.aud, `${hub().url}/mcp`);
    assert.equal(claims.sub, 'jane');
    assert.match(String(claims.scope), /nodes:read/);
    assert.doesNotMatch(String(claims.scope), /admin:manage/);
  });

  it('a replayed ID-JAG is invalid_grant (jti single use)', async () => {
    const jag = await idJag(rig.idps.corp!, { groups: ['eng-team'] });
    assert.equal((await asClient(jag)).status, 200);
    const again = await asClient(jag);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
  });

  it('a wrong typ, aud, client_id or issuer, an expired one, a missing claim, a foreign key or HS256 is invalid_grant', async () => {
    const corp = rig.idps.corp!;
    const other = await registerClient({ token_endpoint_auth_method: 'client_secret_post' });
    const cases: Array<[string, Promise<string>]> = [
      ['typ JWT', idJag(corp, {}, { typ: 'JWT' })],
      ['no typ', idJag(corp, {}, {})],
      ['aud is the token endpoint', idJag(corp, { aud: `${hub().url}/auth/token` })],
      ['aud is another server', idJag(corp, { aud: 'https://other.example' })],
      ['aud has a second value', idJag(corp, { aud: [hub().config.jwt.issuer, 'https://other.example'] })],
      ['another client\'s client_id', idJag(corp, { client_id: other.body.client_id })],
      ['an issuer the hub does not trust', idJag(stranger)],
      ['expired', idJag(corp, { exp: Math.floor(Date.now() / 1000) - 120 })],
      ['no jti', idJag(corp, { jti: undefined })],
      ['no sub', idJag(corp, { sub: undefined })],
      ['no client_id', idJag(corp, { client_id: undefined })],
      ['no resource', idJag(corp, { resource: undefined })],
      ['no iat', idJag(corp, { iat: undefined })],
      ['the subject is the client itself', idJag(corp, { sub: client.id })],
      ['scope is no string', idJag(corp, { scope: ['nodes:read'] })],
    ];
    for (const [name, pending] of cases) {
      const res = await asClient(await pending);
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, 'invalid_grant', name);
    }
    // Signed by another key under the IdP's issuer and kid, or with a shared secret.
    const genuine = await idJag(corp);
    const [h, p] = genuine.split('.');
    const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    assert.equal((await asClient(forged)).body.error, 'invalid_grant', 'forged signature');
    const hmac = await stranger.sign({ iss: corp.issuer, sub: 'jane', client_id: client.id, aud: hub().config.jwt.issuer, resource: hub().config.publicUrl }, { typ: ID_JAG_TYP, key: 'hmac' });
    assert.equal((await asClient(hmac)).body.error, 'invalid_grant', 'HS256');
    const none = await stranger.sign({ iss: corp.issuer, sub: 'jane', client_id: client.id, aud: hub().config.jwt.issuer, resource: hub().config.publicUrl }, { typ: ID_JAG_TYP, key: 'none' });
    assert.equal((await asClient(none)).body.error, 'invalid_grant', 'alg none');
  });

  it('an assertion for a resource the hub does not serve is invalid_grant (as the MCP conformance suite\'s AS answers); the resource parameter and scope may only narrow', async () => {
    const corp = rig.idps.corp!;
    const foreign = await asClient(await idJag(corp, { resource: 'https://api.other.example/' }));
    assert.equal(foreign.body.error, 'invalid_grant');
    const outside = await asClient(await idJag(corp, { groups: ['eng-team'] }), { resource: `${hub().url}/mcp` });
    assert.equal(outside.body.error, 'invalid_target', 'the assertion names the origin root only');
    const narrowed = await asClient(await idJag(corp, { groups: ['eng-team'], resource: [hub().config.publicUrl, `${hub().url}/mcp`] }), { resource: `${hub().url}/mcp/` });
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.equal(decodeJwt(narrowed.body.access_token).aud, `${hub().url}/mcp`);
    const wider = await asClient(await idJag(corp, { groups: ['eng-team'], scope: 'nodes:read' }), { scope: 'nodes:read nodes:write' });
    assert.equal(wider.body.error, 'invalid_scope');
    const held = await asClient(await idJag(corp, { groups: ['eng-team'], scope: 'nodes:read admin:manage' }));
    assert.equal(held.body.scope, 'nodes:read', 'the assertion\'s scope, cut to what the user holds');
    const nothing = await asClient(await idJag(corp, { groups: ['eng-team'], scope: 'admin:manage bogus:unknown' }));
    assert.equal(nothing.body.error, 'invalid_scope', 'never an empty (= unnarrowed) scope');
    const unknown = await asClient(await idJag(corp, { groups: ['eng-team'] }), { scope: 'nodes:read bogus:unknown' });
    assert.equal(unknown.body.error, 'invalid_scope', 'an unknown scope asked by the client is refused, as at every grant');
  });

  it('the client must authenticate, and must have registered the grant as a confidential client', async () => {
    const jag = await idJag(rig.idps.corp!);
    const anonymous = await token({ grant_type: JWT_BEARER, assertion: jag });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error, 'invalid_client');
    const publicId = await token({ grant_type: JWT_BEARER, assertion: jag, client_id: client.id });
    assert.equal(publicId.body.error, 'invalid_client');
    const wrongSecret = await asClient(jag, {}, { id: client.id, secret: 'wrong' });
    assert.equal(wrongSecret.status, 401);
    assert.equal(wrongSecret.body.error, 'invalid_client');
    const publicClient = await registerClient({ token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1/cb'] });
    assert.equal(publicClient.status, 400);
    assert.equal(publicClient.body.error, 'invalid_client_metadata');
    const codeOnly = await postJson(`${hub().url}/auth/register`, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic' });
    const notRegistered = await asClient(await idJag(rig.idps.corp!, { client_id: codeOnly.body.client_id }), {}, { id: codeOnly.body.client_id, secret: codeOnly.body.client_secret });
    assert.equal(notRegistered.body.error, 'unauthorized_client');
  });

  it('a client authenticating with private_key_jwt, or a pre-registered service account, presents an ID-JAG too', async () => {
    const keys = await startJwtIssuer({ alg: 'ES256' });
    try {
      const registered = await registerClient({ token_endpoint_auth_method: 'private_key_jwt', jwks: keys.jwks });
      const id = registered.body.client_id as string;
      const clientAssertion = await keys.sign({ iss: id, sub: id, aud: hub().config.jwt.issuer });
      const res = await token({
        grant_type: JWT_BEARER, assertion: await idJag(rig.idps.corp!, { client_id: id, groups: ['eng-team'] }),
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion,
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(decodeJwt(res.body.access_token).client_id, id);
    } finally {
      await keys.close();
    }
    const { clientSecret } = await hub().hub.serviceAccounts.create({ clientId: 'xaa-agent', roles: ['viewer'] });
    const res = await asClient(await idJag(rig.idps.partner!, { client_id: 'xaa-agent', sub: 'sam', roles: ['developer'] }), {}, { id: 'xaa-agent', secret: clientSecret });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const claims = decodeJwt(res.body.access_token);
    assert.equal(claims.sub, 'sam', 'the user\'s token, with the user\'s roles, not the service account\'s');
    assert.deepEqual(claims.roles, ['developer']);
  });

  it('an ID-JAG the IdP bound to a DPoP key (cnf.jkt) is redeemed only with a proof by that key, for a token bound to it; one bound otherwise is invalid_grant', async () => {
    const key = await dpopKey();
    const proof = () => dpopProof(key, { htm: 'POST', htu: `${hub().url}/auth/token` });
    // Found by an attacker's review: the binding was read and dropped (an unbound Bearer token, no proof).
    const unproven = await asClient(await idJag(rig.idps.corp!, { groups: ['eng-team'], cnf: { jkt: key.jkt } }));
    assert.equal(unproven.status, 400, JSON.stringify(unproven.body));
    assert.equal(unproven.body.error, 'invalid_grant');
    const other = await dpopKey();
    const wrongKey = await token({ grant_type: JWT_BEARER, assertion: await idJag(rig.idps.corp!, { groups: ['eng-team'], cnf: { jkt: key.jkt } }) },
      { ...basic(client.id, client.secret), dpop: await dpopProof(other, { htm: 'POST', htu: `${hub().url}/auth/token` }) });
    assert.equal(wrongKey.body.error, 'invalid_grant');
    const bound = await token({ grant_type: JWT_BEARER, assertion: await idJag(rig.idps.corp!, { groups: ['eng-team'], cnf: { jkt: key.jkt } }) }, { ...basic(client.id, client.secret), dpop: await proof() });
    assert.equal(bound.status, 200, JSON.stringify(bound.body));
    assert.equal(bound.body.token_type, 'DPoP');
    assert.deepEqual(decodeJwt(bound.body.access_token).cnf, { jkt: key.jkt });
    // Bound some other way (mTLS): a grant refusal, not an access token's (was 401 invalid_token).
    const mtls = await asClient(await idJag(rig.idps.corp!, { groups: ['eng-team'], cnf: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } }));
    assert.equal(mtls.status, 400, JSON.stringify(mtls.body));
    assert.equal(mtls.body.error, 'invalid_grant');
  });

  it('metadata lists the jwt-bearer grant when ID-JAG is on; without it (and no workload issuers) the grant is unsupported', async () => {
    const m = await (await fetch(`${hub().url}/.well-known/oauth-authorization-server`)).json() as { grant_types_supported: string[] };
    assert.ok(m.grant_types_supported.includes(JWT_BEARER));
    const off = await startHub({ storage: 'memory' });
    try {
      const offMeta = await (await fetch(`${off.url}/.well-known/oauth-authorization-server`)).json() as { grant_types_supported: string[] };
      assert.ok(!offMeta.grant_types_supported.includes(JWT_BEARER));
      const res = await postForm(`${off.url}/auth/token`, { grant_type: JWT_BEARER, assertion: await idJag(rig.idps.corp!) }, basic(client.id, client.secret));
      assert.equal(res.body.error, 'unsupported_grant_type');
    } finally {
      await off.close();
    }
  });
});
