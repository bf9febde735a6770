/**
 * The hub as the authorization server and protected resource that the MCP conformance suite's
 * client auth scenarios (0.1.16) stand in for with mock servers. Those mocks say what a client
 * that passes them sends and what it expects back; here the same requests — made the way the
 * suite's reference client (examples/clients/typescript/everything-client.ts at v0.1.16) makes
 * them, with the same MCP SDK providers — go to the hub in front of the SDK server of
 * test/conformance, and the hub must answer as the mock does, refusals included.
 *
 * One family of scenarios a describe:
 * - auth/client-credentials-jwt and -basic (SEP-1046, src/scenarios/client/auth/client-credentials.ts)
 * - auth/cross-app-access-complete-flow (SEP-990, ID-JAG; cross-app-access.ts)
 * - auth/offline-access-scope (SEP-2207; offline-access.ts). Its sibling
 *   auth/offline-access-not-supported stands in for an AS that does not list offline_access; the
 *   hub always lists it (it issues refresh tokens), so that mock's setup has no hub counterpart.
 *
 * Scenarios of 0.1.16 that would test an authorization server or a protected resource directly:
 * none. Its CLI has `server` (MCP server scenarios, server-scenarios.test.ts here) and `client`;
 * the `authorization` command and its scenarios (authorization-server-metadata-endpoint,
 * authorization-code-grant) arrived in the 0.2.0 alphas: authorization-server.test.ts runs them
 * (0.2.0-alpha.12, installed as `conformance-next`). Nothing is skipped for the network: every
 * server is on loopback.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { decodeJwt, exportJWK, exportPKCS8, generateKeyPair, SignJWT } from 'jose';
import { authorize } from '../helpers/authorize-flow.ts';
import { basic, get, postForm, postJson, type Reply } from '../helpers/http.ts';
import { signIn, startRig, type Rig } from '../oidc/setup.ts';
import { RBAC_FIXTURE } from '../proxy/setup.ts';
import { startEverythingServer, type EverythingServer } from './everything-server.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ID_JAG_TYP = 'oauth-id-jag+jwt';

/**
 * Mimir's rbac.json, but every user without a known role is a developer: the suite's IdP asserts
 * no groups (its ID-JAG carries sub, client_id and resource only) and its client calls a tool.
 */
function rbacEveryoneDeveloper(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mimir-conformance-rbac-')), 'rbac.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(RBAC_FIXTURE, 'utf8')), defaultRole: 'developer' }));
  return file;
}

/** The reference client's last steps: connect, list the tools, call one. */
async function useMcp(url: string, options: ConstructorParameters<typeof StreamableHTTPClientTransport>[1]): Promise<string> {
  const client = new Client({ name: 'conformance-auth', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url), options);
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'test_simple_text'), 'the upstream\'s tools are listed');
    const r = await client.callTool({ name: 'test_simple_text', arguments: {} });
    return (r.content as Array<{ text: string }>)[0]!.text;
  } finally {
    await transport.close();
  }
}

describe('the hub speaks the wire format of the conformance suite\'s mock authorization servers', () => {
  let upstream: EverythingServer;
  let rig: Rig;
  let admin: string;
  const hubUrl = () => rig.hub.url;
  const mcpUrl = () => `${rig.hub.url}/mcp`;
  const issuer = () => rig.hub.config.jwt.issuer;
  const token = (form: Record<string, string>, headers: Record<string, string> = {}) => postForm(`${hubUrl()}/auth/token`, form, headers);

  before(async () => {
    upstream = await startEverythingServer();
    rig = await startRig({ corp: 'okta' }, {
      storage: 'memory',
      env: { MIMIR_UPSTREAM_URL: upstream.origin, MIMIR_RBAC_CONFIG: rbacEveryoneDeveloper(), MIMIR_ENABLE_ID_JAG: 'true' },
    });
    admin = (await rig.hub.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
  });
  after(async () => {
    // The SDK transport's aborted GET stream can leave undici's pool holding a socket it connected
    // but never sent a request on; node:http waits for such a socket until its headers timeout
    // (about 70 s) before server.close() returns. Nothing is in flight here: cut them.
    rig?.hub.app.server.closeAllConnections();
    await rig?.close();
    await upstream?.close();
  });

  it('discovery as the reference client does it: 401 names the PRM; the PRM names the hub; the AS metadata at the origin root', async () => {
    const refused = await fetch(mcpUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer .*resource_metadata="${hubUrl()}/.well-known/oauth-protected-resource/mcp"`));
    // new URL('/.well-known/oauth-protected-resource/mcp', serverUrl), then authorization_servers[0].
    const prm = await get(new URL('/.well-known/oauth-protected-resource/mcp', mcpUrl()).href);
    assert.equal(prm.status, 200);
    assert.equal(prm.body.resource, mcpUrl());
    assert.deepEqual(prm.body.authorization_servers, [issuer()]);
    const as = await get(new URL('/.well-known/oauth-authorization-server', prm.body.authorization_servers[0]).href);
    assert.equal(as.status, 200);
    assert.equal(as.body.issuer, issuer());
    assert.equal(as.body.token_endpoint, `${hubUrl()}/auth/token`);
  });

  describe('auth/client-credentials-jwt and auth/client-credentials-basic (SEP-1046)', () => {
    it('metadata: client_credentials, with private_key_jwt (ES256) and client_secret_basic', async () => {
      const as = (await get(`${hubUrl()}/.well-known/oauth-authorization-server`)).body;
      assert.ok(as.grant_types_supported.includes('client_credentials'));
      for (const method of ['private_key_jwt', 'client_secret_basic']) assert.ok(as.token_endpoint_auth_methods_supported.includes(method), method);
      assert.ok(as.token_endpoint_auth_signing_alg_values_supported.includes('ES256'));
    });

    it('private_key_jwt: the suite\'s ES256 PKCS#8 key in PrivateKeyJwtProvider gets a token and the MCP tools through the hub', async () => {
      // As the scenario makes its context: an extractable ES256 pair, the private half as PKCS#8 PEM.
      const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
      const created = await postJson(`${hubUrl()}/auth/admin/service-accounts`, { client_id: 'conformance-test-client', roles: ['developer'], jwks: { keys: [await exportJWK(publicKey)] } }, { 'x-api-key': admin });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const provider = new PrivateKeyJwtProvider({ clientId: 'conformance-test-client', privateKey: await exportPKCS8(privateKey), algorithm: 'ES256', expectedIssuer: issuer() });
      assert.equal(await useMcp(mcpUrl(), { authProvider: provider }), 'This is a simple text response for testing.');
      const tokens = provider.tokens()!;
      // The mock's answer: access_token, token_type Bearer, expires_in (and scope when any).
      assert.equal(tokens.token_type, 'Bearer');
      assert.equal(typeof tokens.expires_in, 'number');
      assert.equal(decodeJwt(tokens.access_token).client_id, 'conformance-test-client');

      // The mock's refusals: iss or sub not the client, a wrong assertion type — invalid_client, 401.
      const assertion = (claims: Record<string, unknown>) => new SignJWT({ iss: 'conformance-test-client', sub: 'conformance-test-client', aud: issuer(), jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'ES256' }).setIssuedAt().setExpirationTime('2m').sign(privateKey);
      for (const [what, form] of [
        ['iss another client', { client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: await assertion({ iss: 'someone-else' }) }],
        ['sub another client', { client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: await assertion({ sub: 'someone-else' }) }],
        ['a wrong client_assertion_type', { client_assertion_type: 'urn:example:other', client_assertion: await assertion({}) }],
      ] as const) {
        const r = await token({ grant_type: 'client_credentials', client_id: 'conformance-test-client', ...form });
        assert.deepEqual([r.status, r.body.error], [401, 'invalid_client'], `${what}: ${JSON.stringify(r.body)}`);
      }
      // aud as the mock takes it: the issuer, with or without a trailing slash.
      for (const aud of [issuer(), `${issuer().replace(/\/+$/, '')}/`]) {
        const r = await token({ grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: await assertion({ aud }) });
        assert.equal(r.status, 200, `aud ${aud}: ${JSON.stringify(r.body)}`);
      }
    });

    it('client_secret_basic: ClientCredentialsProvider gets a token and the MCP tools; a wrong secret is invalid_client, 401', async () => {
      const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'conformance-basic-client', roles: ['developer'] });
      const provider = new ClientCredentialsProvider({ clientId: 'conformance-basic-client', clientSecret, expectedIssuer: issuer() });
      assert.equal(await useMcp(mcpUrl(), { authProvider: provider }), 'This is a simple text response for testing.');
      assert.equal(provider.tokens()!.token_type, 'Bearer');
      // The mock splits Basic on ':' without decoding: the hub's secrets need no percent-encoding.
      assert.equal(encodeURIComponent(clientSecret), clientSecret);
      const wrong = await token({ grant_type: 'client_credentials' }, basic('conformance-basic-client', `${clientSecret}x`));
      assert.deepEqual([wrong.status, wrong.body.error], [401, 'invalid_client']);
      const none = await token({ grant_type: 'client_credentials' });
      assert.deepEqual([none.status, none.body.error], [401, 'invalid_client']);
    });
  });

  describe('auth/cross-app-access-complete-flow (SEP-990: ID-JAG, jwt-bearer, client_secret_basic)', () => {
    let client: { id: string; secret: string };
    /** What the suite's IdP issues at its token exchange: these claims, this typ, 5 minutes. */
    const idJag = (claims: Record<string, unknown> = {}, typ = ID_JAG_TYP) => rig.idps.corp!.sign({
      sub: 'demo-user@example.com', resource: mcpUrl(), client_id: client.id, aud: issuer(), jti: randomUUID(),
      exp: Math.floor(Date.now() / 1000) + 300, ...claims,
    }, { typ });
    /** RFC 7523 §5 / the reference client: Basic with the percent-encoded id and secret. */
    const grant = (assertion: string | undefined, who: { id: string; secret: string } | null = client) => token(
      { grant_type: JWT_BEARER, ...(assertion === undefined ? {} : { assertion }) },
      who ? basic(who.id, who.secret) : {},
    );

    before(async () => {
      const registered = await postJson(`${hubUrl()}/auth/register`, { client_name: 'conformance-test-xaa-client', grant_types: [JWT_BEARER], token_endpoint_auth_method: 'client_secret_basic' });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      client = { id: registered.body.client_id, secret: registered.body.client_secret };
    });

    it('the reference client\'s flow: PRM → AS metadata (jwt-bearer listed) → ID-JAG with Basic → Bearer token → tools listed and called', async () => {
      const prm = (await get(new URL('/.well-known/oauth-protected-resource/mcp', mcpUrl()).href)).body;
      const as = (await get(new URL('/.well-known/oauth-authorization-server', prm.authorization_servers[0]).href)).body;
      assert.ok(as.grant_types_supported.includes(JWT_BEARER), JSON.stringify(as.grant_types_supported));
      // The IdP's ID-JAG names audience = the AS issuer and resource = the PRM's resource.
      const r = await postForm(as.token_endpoint, { grant_type: JWT_BEARER, assertion: await idJag({ aud: as.issuer, resource: prm.resource }) }, basic(client.id, client.secret));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.token_type, 'Bearer');
      assert.equal(typeof r.body.expires_in, 'number');
      const claims = decodeJwt(r.body.access_token);
      assert.deepEqual([claims.sub, claims.client_id, claims.aud], ['demo-user@example.com', client.id, mcpUrl()]);
      const text = await useMcp(mcpUrl(), { requestInit: { headers: { authorization: `Bearer ${r.body.access_token}` } } });
      assert.equal(text, 'This is a simple text response for testing.');
    });

    it('aud as the mock takes it: the issuer with or without a trailing slash', async () => {
      for (const aud of [issuer().replace(/\/+$/, ''), `${issuer().replace(/\/+$/, '')}/`]) {
        const r = await grant(await idJag({ aud }));
        assert.equal(r.status, 200, `aud ${aud}: ${JSON.stringify(r.body)}`);
      }
    });

    it('the mock\'s refusals are the hub\'s: no or wrong Basic → invalid_client 401; no assertion → invalid_request; wrong typ, another client_id, another resource → invalid_grant', async () => {
      const cases: Array<[string, () => Promise<Reply>, number, string]> = [
        ['no client authentication', async () => grant(await idJag(), null), 401, 'invalid_client'],
        ['a wrong secret', async () => grant(await idJag(), { id: client.id, secret: `${client.secret}x` }), 401, 'invalid_client'],
        ['no assertion', () => grant(undefined), 400, 'invalid_request'],
        ['typ JWT', async () => grant(await idJag({}, 'JWT')), 400, 'invalid_grant'],
        ['client_id of another client', async () => grant(await idJag({ client_id: 'conformance-test-idp-client' })), 400, 'invalid_grant'],
        ['a resource that is not the hub\'s', async () => grant(await idJag({ resource: 'http://127.0.0.1:9/mcp' })), 400, 'invalid_grant'],
      ];
      for (const [what, request, status, error] of cases) {
        const r = await request();
        assert.deepEqual([r.status, r.body.error], [status, error], `${what}: ${JSON.stringify(r.body)}`);
      }
    });
  });

  describe('auth/offline-access-scope (SEP-2207: offline_access and refresh tokens)', () => {
    /** The reference client's OAuth provider (helpers/ConformanceOAuthProvider.ts), in memory. */
    class Provider implements OAuthClientProvider {
      info: OAuthClientInformationMixed | undefined;
      saved: OAuthTokens | undefined;
      verifier = '';
      authorizationUrl: URL | undefined;
      readonly clientMetadata: OAuthClientMetadata;
      constructor(metadata: OAuthClientMetadata) { this.clientMetadata = metadata; }
      get redirectUrl() { return 'http://localhost:3000/callback'; }
      clientInformation() { return this.info; }
      saveClientInformation(info: OAuthClientInformationMixed) { this.info = info; }
      tokens() { return this.saved; }
      saveTokens(tokens: OAuthTokens) { this.saved = tokens; }
      redirectToAuthorization(url: URL) { this.authorizationUrl = url; }
      saveCodeVerifier(v: string) { this.verifier = v; }
      codeVerifier() { return this.verifier; }
    }

    it('metadata: the AS lists offline_access and refresh_token; the PRM does not list offline_access (SEP-2207 server guidance)', async () => {
      const as = (await get(`${hubUrl()}/.well-known/oauth-authorization-server`)).body;
      assert.ok(as.scopes_supported.includes('offline_access'));
      assert.ok(as.grant_types_supported.includes('refresh_token'));
      assert.equal(as.client_id_metadata_document_supported, true, 'both CIMD and DCR paths, as the mock offers');
      const prm = (await get(`${hubUrl()}/.well-known/oauth-protected-resource/mcp`)).body;
      assert.ok(!prm.scopes_supported.includes('offline_access'), JSON.stringify(prm.scopes_supported));
    });

    it('a client that wants a refresh token: DCR with refresh_token, offline_access asked (prompt=consent), a refresh token issued, refreshed, and MCP with each', async () => {
      const provider = new Provider({
        client_name: 'test-auth-client', redirect_uris: ['http://localhost:3000/callback'],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
      });
      // SEP-2207: the client MAY add offline_access when the AS lists it.
      assert.equal(await auth(provider, { serverUrl: mcpUrl(), scope: 'mcp:* offline_access' }), 'REDIRECT');
      const registered = provider.clientInformation() as OAuthClientInformationMixed & { grant_types?: string[]; token_endpoint_auth_method?: string };
      assert.ok(registered.grant_types?.includes('refresh_token'), JSON.stringify(registered));
      assert.equal(registered.token_endpoint_auth_method, 'none');
      assert.equal((registered as { client_secret?: string }).client_secret, undefined, 'a public client gets no secret');

      const url = provider.authorizationUrl!;
      assert.equal(url.searchParams.get('scope'), 'mcp:* offline_access');
      assert.equal(url.searchParams.get('prompt'), 'consent');
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(url.searchParams.get('resource'), mcpUrl());
      const { session } = await signIn(rig, 'corp');
      const back = await authorize(rig.hub, session!, Object.fromEntries(url.searchParams));
      const code = back.location ? new URL(back.location).searchParams.get('code') : null;
      assert.ok(code, `a code comes back: ${back.status} ${back.location}`);

      assert.equal(await auth(provider, { serverUrl: mcpUrl(), authorizationCode: code }), 'AUTHORIZED');
      const first = provider.tokens()!;
      assert.ok(first.refresh_token, 'a refresh token for offline access');
      assert.deepEqual(first.scope?.split(' ').sort(), ['mcp:*', 'offline_access']);
      assert.equal(await useMcp(mcpUrl(), { authProvider: provider }), 'This is a simple text response for testing.');

      // The refresh_token grant a client with offline access uses (the SDK's refresh, public client).
      const refreshed = await token({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: registered.client_id });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.ok(refreshed.body.refresh_token && refreshed.body.refresh_token !== first.refresh_token, 'rotated');
      const text = await useMcp(mcpUrl(), { requestInit: { headers: { authorization: `Bearer ${refreshed.body.access_token}` } } });
      assert.equal(text, 'This is a simple text response for testing.');
    });
  });
});
