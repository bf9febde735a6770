/**
 * private_key_jwt (RFC 7523 §2.2, RFC 7521 §4.2): service accounts and dynamically registered
 * clients authenticate with a JWT signed by their own key, at every endpoint that authenticates
 * clients (token, introspection, revocation). The keys live in a real JWT issuer on loopback
 * serving its JWKS over HTTP; the MCP TypeScript SDK's PrivateKeyJwtProvider is one client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { auth, PrivateKeyJwtProvider } from '@modelcontextprotocol/client';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { startHub, type TestHub } from '../../helpers/hub.ts';
import { basic, postForm, postJson, type Reply } from '../../helpers/http.ts';
import { startJwtIssuer, type JwtIssuer, type SignOptions } from '../../helpers/jwt-issuer.ts';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** A client assertion as RFC 7523 §3 wants it: iss = sub = the client, aud = the hub's issuer. */
function assertion(keys: JwtIssuer, t: TestHub, clientId: string, claims: Record<string, unknown> = {}, options: SignOptions = {}): Promise<string> {
  return keys.sign({ iss: clientId, sub: clientId, aud: t.config.jwt.issuer, ...claims }, options);
}

function withAssertion(jwt: string, extra: Record<string, string> = {}): Record<string, string> {
  return { client_assertion_type: ASSERTION_TYPE, client_assertion: jwt, ...extra };
}

describe('private_key_jwt client authentication (RFC 7523 §2.2)', () => {
  let t: TestHub;
  let keys: JwtIssuer;
  let admin: string;
  const token = (form: Record<string, string>, headers: Record<string, string> = {}) => postForm(`${t.url}/auth/token`, form, headers);

  before(async () => {
    keys = await startJwtIssuer({ alg: 'ES256' });
    t = await startHub({ storage: 'sqlite' });
    admin = (await t.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
  });
  after(async () => {
    await t.close();
    await keys.close();
  });

  async function createWithKeys(clientId: string, body: Record<string, unknown>, roles = ['developer']): Promise<Reply> {
    return postJson(`${t.url}/auth/admin/service-accounts`, { client_id: clientId, roles, ...body }, { 'x-api-key': admin });
  }

  it('the admin API creates a service account with a jwks_uri and no secret; the MCP SDK\'s PrivateKeyJwtProvider gets its token', async () => {
    const created = await createWithKeys('sdk-agent', { jwks_uri: keys.jwksUri });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.client_secret, undefined, 'an account with keys gets no secret');
    assert.equal(created.body.jwksUri, keys.jwksUri);

    const provider = new PrivateKeyJwtProvider({ clientId: 'sdk-agent', privateKey: keys.privateKeyPem, algorithm: keys.alg, expectedIssuer: t.config.jwt.issuer });
    const result = await auth(provider, { serverUrl: new URL(`${t.url}/mcp`), scope: 'nodes:read' });
    assert.equal(result, 'AUTHORIZED');
    const claims = decodeJwt(provider.tokens()!.access_token);
    assert.equal(claims.sub, 'sdk-agent');
    assert.equal(claims.client_id, 'sdk-agent');
    assert.equal(claims.scope, 'nodes:read');
    assert.ok(keys.jwksRequests >= 1, 'the hub fetched the keys from the jwks_uri');
  });

  it('an account with an inline jwks authenticates with client_assertion; its token works', async () => {
    assert.equal((await createWithKeys('inline-agent', { jwks: keys.jwks })).status, 201);
    const res = await token({ grant_type: 'client_credentials', ...withAssertion(await assertion(keys, t, 'inline-agent')) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.token_type, 'Bearer');
    const me = await fetch(`${t.url}/auth/me`, { headers: { authorization: `Bearer ${res.body.access_token}` } });
    assert.equal(me.status, 200);
    assert.equal((await me.json() as { sub: string }).sub, 'inline-agent');
  });

  it('a token endpoint URL (or any second audience) as aud is invalid_client: aud is the issuer only', async () => {
    for (const aud of [`${t.url}/auth/token`, [t.config.jwt.issuer, 'https://other.example'], 'https://other.example']) {
      const res = await token({ grant_type: 'client_credentials', ...withAssertion(await assertion(keys, t, 'inline-agent', { aud })) });
      assert.equal(res.status, 401, JSON.stringify(aud));
      assert.equal(res.body.error, 'invalid_client');
    }
    // The issuer in a one-element array is the issuer.
    const one = await token({ grant_type: 'client_credentials', ...withAssertion(await assertion(keys, t, 'inline-agent', { aud: [t.config.jwt.issuer] })) });
    assert.equal(one.status, 200, JSON.stringify(one.body));
  });

  it('a replayed client assertion is invalid_client (jti single use)', async () => {
    const jwt = await assertion(keys, t, 'inline-agent');
    assert.equal((await token({ grant_type: 'client_credentials', ...withAssertion(jwt) })).status, 200);
    const again = await token({ grant_type: 'client_credentials', ...withAssertion(jwt) });
    assert.equal(again.status, 401);
    assert.equal(again.body.error, 'invalid_client');
    // The same jti in a freshly signed assertion is a replay too.
    const jti = decodeJwt(jwt).jti!;
    const sameJti = await token({ grant_type: 'client_credentials', ...withAssertion(await assertion(keys, t, 'inline-agent', { jti })) });
    assert.equal(sameJti.body.error, 'invalid_client');
  });

  it('a wrong key, an expired or long-lived assertion, a future iat, no jti, HS256 or alg none are invalid_client', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, Promise<string>]> = [
      ['wrong key', assertion(keys, t, 'inline-agent', {}, { key: 'stranger' })],
      ['expired', assertion(keys, t, 'inline-agent', {}, { expiresIn: -120 })],
      ['lives 10 minutes', assertion(keys, t, 'inline-agent', {}, { expiresIn: 600 })],
      ['no exp', assertion(keys, t, 'inline-agent', {}, { expiresIn: null })],
      ['iat in the future', assertion(keys, t, 'inline-agent', { iat: now + 600 })],
      ['no iat', assertion(keys, t, 'inline-agent', {}, { omit: ['iat'] })],
      ['no jti', assertion(keys, t, 'inline-agent', {}, { omit: ['jti'] })],
      ['HS256', assertion(keys, t, 'inline-agent', {}, { key: 'hmac' })],
      ['alg none', assertion(keys, t, 'inline-agent', {}, { key: 'none' })],
      ['iss is not the client', assertion(keys, t, 'inline-agent', { iss: 'someone-else' })],
      ['typ of an ID-JAG', assertion(keys, t, 'inline-agent', {}, { typ: 'oauth-id-jag+jwt' })],
    ];
    for (const [name, pending] of cases) {
      const res = await token({ grant_type: 'client_credentials', ...withAssertion(await pending) });
      assert.equal(res.status, 401, name);
      assert.equal(res.body.error, 'invalid_client', name);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/, name);
      assert.doesNotMatch(JSON.stringify(res.body), /eyJ/, `${name}: no token in the answer`);
    }
  });

  it('keys and secrets do not mix: a key account has no secret, a secret account no key; one method at a time', async () => {
    const secretAccount = await t.hub.serviceAccounts.create({ clientId: 'secret-agent', roles: ['viewer'] });
    const byKey = await token({ grant_type: 'client_credentials', ...withAssertion(await assertion(keys, t, 'secret-agent')) });
    assert.equal(byKey.status, 401);
    assert.equal(byKey.body.error, 'invalid_client');
    // The key account's stored secret hash is of a value nobody knows; a guess is refused like any.
    const bySecret = await token({ grant_type: 'client_credentials' }, basic('inline-agent', secretAccount.clientSecret));
    assert.equal(bySecret.body.error, 'invalid_client');
    const rotate = await postJson(`${t.url}/auth/admin/service-accounts/inline-agent/rotate-secret`, {}, { 'x-api-key': admin });
    assert.equal(rotate.status, 400);
    assert.equal(rotate.body.error, 'invalid_request');
    const both = await token({ grant_type: 'client_credentials', ...withAssertion(await assertion(keys, t, 'inline-agent')) }, basic('secret-agent', secretAccount.clientSecret));
    assert.equal(both.status, 400);
    assert.equal(both.body.error, 'invalid_request');
    const otherType = await token({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer', client_assertion: await assertion(keys, t, 'inline-agent') });
    assert.equal(otherType.body.error, 'invalid_client');
    const mismatched = await token({ grant_type: 'client_credentials', client_id: 'secret-agent', ...withAssertion(await assertion(keys, t, 'inline-agent')) });
    assert.equal(mismatched.body.error, 'invalid_client');
  });

  it('the admin API refuses private keys, symmetric keys, keys and a jwks_uri together, and a plain-http jwks_uri', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const refused: Array<Record<string, unknown>> = [
      { jwks: { keys: [privateJwk] } },
      { jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } },
      { jwks: { keys: [] } },
      { jwks: keys.jwks, jwks_uri: keys.jwksUri },
      { jwks_uri: 'http://keys.example/jwks' },
    ];
    for (const [i, body] of refused.entries()) {
      const res = await createWithKeys(`refused-${i}`, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request');
    }
  });

  it('introspection and revocation authenticate a client by private_key_jwt through the same code', async () => {
    assert.equal((await createWithKeys('rs-by-key', { jwks: keys.jwks }, ['introspector'])).status, 201);
    const issued = await token({ grant_type: 'client_credentials', ...withAssertion(await assertion(keys, t, 'inline-agent')) });
    const target = issued.body.access_token as string;
    const active = await postForm(`${t.url}/auth/introspect`, { token: target, ...withAssertion(await assertion(keys, t, 'rs-by-key')) });
    assert.equal(active.status, 200, JSON.stringify(active.body));
    assert.equal(active.body.active, true);
    assert.equal(active.body.sub, 'inline-agent');
    const endpointAud = await postForm(`${t.url}/auth/introspect`, { token: target, ...withAssertion(await assertion(keys, t, 'rs-by-key', { aud: `${t.url}/auth/introspect` })) });
    assert.equal(endpointAud.status, 401, 'the introspection endpoint URL is no audience either');
    assert.equal(endpointAud.body.error, 'invalid_client');
    // The client revokes its own token, authenticated by its key.
    const revoked = await postForm(`${t.url}${t.config.revocation.endpoint}`, { token: target, ...withAssertion(await assertion(keys, t, 'inline-agent')) });
    assert.equal(revoked.status, 200);
    const after = await postForm(`${t.url}/auth/introspect`, { token: target, ...withAssertion(await assertion(keys, t, 'rs-by-key')) });
    assert.equal(after.body.active, false);
  });

  it('metadata lists private_key_jwt and the asymmetric signing algorithms for token, revocation and introspection', async () => {
    const m = await (await fetch(`${t.url}/.well-known/oauth-authorization-server`)).json() as Record<string, string[]>;
    for (const endpoint of ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint']) {
      assert.ok(m[`${endpoint}_auth_methods_supported`]!.includes('private_key_jwt'), endpoint);
      const algs = m[`${endpoint}_auth_signing_alg_values_supported`]!;
      assert.ok(algs.includes('ES256') && algs.includes('RS256'), endpoint);
      assert.ok(!algs.some((a) => a === 'none' || a.startsWith('HS')), `${endpoint}: no none or HMAC`);
    }
  });
});

describe('private_key_jwt for dynamically registered clients (RFC 7591)', () => {
  let keys: JwtIssuer;
  before(async () => { keys = await startJwtIssuer({ alg: 'RS256' }); });
  after(async () => { await keys.close(); });

  const register = (t: TestHub, body: Record<string, unknown>) => postJson(`${t.url}/auth/register`, {
    client_name: 'key client', redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'private_key_jwt', ...body,
  });

  it('registration takes jwks or jwks_uri, issues no secret, and refuses what cannot authenticate', async () => {
    const t = await startHub({ storage: 'memory' });
    try {
      const ok = await register(t, { jwks: keys.jwks });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.equal(ok.body.client_secret, undefined);
      assert.equal(ok.body.token_endpoint_auth_method, 'private_key_jwt');
      assert.deepEqual(ok.body.jwks, keys.jwks);
      const byUri = await register(t, { jwks_uri: keys.jwksUri });
      assert.equal(byUri.status, 201);
      assert.equal(byUri.body.jwks_uri, keys.jwksUri);
      for (const body of [{}, { jwks: keys.jwks, jwks_uri: keys.jwksUri }, { jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, { jwks_uri: 'http://keys.example/jwks' }]) {
        const res = await register(t, body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error, 'invalid_client_metadata');
      }
    } finally {
      await t.close();
    }
  });

  it('a registered jwks_uri on a private address is never fetched outside development mode (SSRF): invalid_client', async () => {
    const t = await startHub({ storage: 'memory' });
    try {
      const client = await register(t, { jwks_uri: keys.jwksUri });
      const clientId = client.body.client_id as string;
      const before = keys.jwksRequests;
      const res = await postForm(`${t.url}/auth/introspect`, { token: 'x', ...withAssertion(await assertion(keys, t, clientId)) });
      assert.equal(res.status, 401);
      assert.equal(res.body.error, 'invalid_client');
      assert.equal(keys.jwksRequests, before, 'the hub did not connect to the loopback jwks_uri');
    } finally {
      await t.close();
    }
  });

  it('in development mode the client authenticates by its key at introspection (its own tokens only)', async () => {
    const t = await startHub({ storage: 'memory', env: { MIMIR_DEVELOPMENT_MODE: 'true' } });
    try {
      const clientId = (await register(t, { jwks_uri: keys.jwksUri })).body.client_id as string;
      const res = await postForm(`${t.url}/auth/introspect`, { token: 'not-a-token', ...withAssertion(await assertion(keys, t, clientId)) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, { active: false });
      const wrong = await postForm(`${t.url}/auth/introspect`, { token: 'not-a-token', ...withAssertion(await assertion(keys, t, clientId, {}, { key: 'stranger' })) });
      assert.equal(wrong.status, 401);
    } finally {
      await t.close();
    }
  });
});
