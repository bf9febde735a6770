/**
 * Issue 17 item 2: the hub is an OpenID Provider for its own clients. openid-client 6, as an
 * application would use it, against a real hub (the user signs in through a real oidc-provider
 * IdP and approves the consent page): discovery → authorization URL with PKCE and nonce →
 * authorizationCodeGrant (ID token signature, iss, aud, nonce checked by openid-client; at_hash
 * here) → fetchUserInfo, with Bearer and with DPoP-bound tokens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify } from 'jose';
import { approve, signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { authorize, pkce, register, tokenRequest } from '../../helpers/authorize-flow.ts';
import { startHub } from '../../helpers/hub.ts';

const REDIRECT = 'http://127.0.0.1:7791/callback';
/** The IdP says how jane authenticated; the hub passes it on (OIDC Core §2). */
const IDP_AUTH = { acr: 'urn:mimir:test:mfa', amr: ['pwd', 'otp'] };


/** OIDC Core §3.1.3.6: base64url of the left half of SHA-256 of the access token (RS256). */
function atHash(accessToken: string): string {
  const digest = createHash('sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, 16).toString('base64url');
}

describe('the hub as an OpenID Provider (OIDC Core, Discovery) for openid-client 6', () => {
  let rig: Rig;
  let session: string;
  let clientId: string;
  let config: client.Configuration;
  let signedInAt: number;

  before(async () => {
    rig = await startRig({ corp: 'generic' });
    // The IdP says when jane authenticated (two minutes ago, at its own session): the hub passes that on.
    signedInAt = Math.floor(Date.now() / 1000) - 120;
    rig.idps.corp!.tamperIdToken((claims) => ({ ...claims, ...IDP_AUTH, auth_time: signedInAt }));
    session = (await signIn(rig, 'corp')).session!;
    rig.idps.corp!.tamperIdToken(undefined);
    const reg = await register(rig.hub, { client_name: 'OIDC RP', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    clientId = reg.body.client_id;
    config = await client.discovery(new URL(rig.hub.config.jwt.issuer), clientId, { redirect_uris: [REDIRECT] }, client.None(), { execute: [client.allowInsecureRequests] });
  });
  after(async () => { await rig?.close(); });

  it('discovery holds every field OIDC Discovery 1.0 §3 requires, and the recommended ones the hub serves', async () => {
    const res = await fetch(`${rig.hub.url}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const m = await res.json() as Record<string, any>;
    for (const field of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported']) {
      assert.ok(m[field] !== undefined, `${field} is REQUIRED`);
    }
    assert.equal(m.issuer, rig.hub.config.jwt.issuer);
    assert.equal(m.userinfo_endpoint, `${rig.hub.url}/auth/userinfo`);
    assert.ok(m.id_token_signing_alg_values_supported.includes('RS256'), 'RS256 MUST be included (§3)');
    assert.deepEqual(m.subject_types_supported, ['public']);
    for (const scope of ['openid', 'profile', 'email', 'offline_access']) assert.ok(m.scopes_supported.includes(scope), scope);
    for (const claim of ['sub', 'name', 'email', 'email_verified', 'auth_time', 'nonce']) assert.ok(m.claims_supported.includes(claim), claim);
    assert.equal(m.request_uri_parameter_supported, false, 'its default is true, and the hub takes no request_uri');
    // The same metadata, as openid-client read it.
    assert.equal(config.serverMetadata().userinfo_endpoint, m.userinfo_endpoint);
  });

  it('authorization code flow with PKCE and nonce: openid-client validates the ID token, then reads UserInfo', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid profile email groups roles', nonce, state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    assert.equal(url.origin + url.pathname, `${rig.hub.url}/auth/authorize`);
    const callback = await approve(rig, session, url);
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true });

    // openid-client checked signature (JWKS), iss, aud, exp, iat and nonce; the rest of OIDC Core §2 here.
    const claims = tokens.claims()!;
    assert.equal(claims.iss, rig.hub.config.jwt.issuer);
    assert.equal(claims.aud, clientId);
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.sub, 'jane');
    assert.equal(claims.at_hash, atHash(tokens.access_token), 'at_hash is the left half of SHA-256 of the access token');
    assert.equal(claims.auth_time, signedInAt, 'auth_time as the IdP said (never the hub\'s own sign-in time)');
    assert.equal(claims.acr, IDP_AUTH.acr, 'acr as the IdP said');
    assert.deepEqual(claims.amr, IDP_AUTH.amr, 'amr as the IdP said');
    assert.equal(typeof claims.iat, 'number');
    assert.equal((claims.exp as number) - (claims.iat as number), rig.hub.config.jwt.idTokenLifetime);
    const header = decodeProtectedHeader(tokens.id_token!);
    const metadata = config.serverMetadata();
    assert.ok(metadata.id_token_signing_alg_values_supported!.includes(header.alg!), 'signed with an advertised algorithm');
    // Signed by the key the hub publishes: verified independently of openid-client.
    await jwtVerify(tokens.id_token!, createRemoteJWKSet(new URL(metadata.jwks_uri!)), { issuer: metadata.issuer, audience: clientId, algorithms: metadata.id_token_signing_alg_values_supported! });

    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.sub, 'jane');
    assert.equal(info.name, 'jane Doe');
    assert.equal(info.email, 'jane@example.com');
    assert.equal(info.email_verified, true);
    assert.deepEqual(info.roles, ['developer']);
    assert.ok(Array.isArray(info.groups));
  });

  it('UserInfo answers POST too, and only the claims of the granted scopes', async () => {
    const { verifier, challenge } = pkce();
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid email' });
    const code = new URL(r.location!).searchParams.get('code')!;
    const t = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.ok(t.body.id_token);
    const res = await fetch(`${rig.hub.url}/auth/userinfo`, { method: 'POST', headers: { authorization: `Bearer ${t.body.access_token}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), { sub: 'jane', email: 'jane@example.com', email_verified: true });
  });

  it('DPoP: a DPoP-bound access token reads UserInfo with a proof (openid-client DPoP handle)', async () => {
    const dpop = client.getDPoPHandle(config, await generateKeyPair('ES256'));
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid profile', nonce, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const callback = await approve(rig, session, url);
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedNonce: nonce, idTokenExpected: true }, undefined, { DPoP: dpop });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    assert.ok((decodeJwt(tokens.access_token).cnf as { jkt?: string } | undefined)?.jkt, 'the access token is bound');
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub, { DPoP: dpop });
    assert.deepEqual({ ...info }, { sub: 'jane', name: 'jane Doe' });
    // The same token as a Bearer token is refused (RFC 9449 §7.1).
    const bearer = await fetch(`${rig.hub.url}/auth/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(bearer.status, 401);
  });

  it('no openid scope: no ID token, and the token cannot read UserInfo (403 insufficient_scope)', async () => {
    const { verifier, challenge } = pkce();
    const r = await authorize(rig.hub, session, {
      response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', scope: 'nodes:read', resource: rig.hub.url, nonce: 'n-1',
    });
    const code = new URL(r.location!).searchParams.get('code')!;
    const t = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(t.body.id_token, undefined, 'OIDC Core §3.1.3.3: no openid, no ID token');
    assert.equal(t.body.scope, 'nodes:read');
    const res = await fetch(`${rig.hub.url}/auth/userinfo`, { headers: { authorization: `Bearer ${t.body.access_token}` } });
    assert.equal(res.status, 403);
    assert.equal((await res.json() as { error: string }).error, 'insufficient_scope');
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
  });

  it('UserInfo refuses what is not an OpenID access token: none, a service account\'s, garbage (401 invalid_token)', async () => {
    const none = await fetch(`${rig.hub.url}/auth/userinfo`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer /);
    const { clientSecret } = await rig.hub.hub.serviceAccounts.create({ clientId: 'svc-userinfo', roles: ['developer'] });
    const svc = await tokenRequest(rig.hub, { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`svc-userinfo:${clientSecret}`).toString('base64')}` });
    for (const token of [svc.body.access_token as string, 'not-a-token']) {
      const res = await fetch(`${rig.hub.url}/auth/userinfo`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401);
      assert.equal((await res.json() as { error: string }).error, 'invalid_token');
    }
  });

  it('refresh (OIDC Core §12.2): a new access token that still reads UserInfo, and no new ID token', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email offline_access', nonce, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const tokens = await client.authorizationCodeGrant(config, await approve(rig, session, url), { pkceCodeVerifier: verifier, expectedNonce: nonce, idTokenExpected: true });
    assert.ok(tokens.refresh_token);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal(refreshed.id_token, undefined, 'the hub sends no ID token at refresh');
    const info = await client.fetchUserInfo(config, refreshed.access_token, tokens.claims()!.sub);
    assert.equal(info.email, 'jane@example.com');
  });
});

describe('a hub signing with HS256 is no OpenID Provider', () => {
  it('no openid-configuration, no userinfo endpoint, no openid among the scopes it lists', async () => {
    const t = await startHub({ storage: 'memory', env: { MIMIR_JWT_ALGORITHM: 'HS256', MIMIR_JWT_SECRET: 'x'.repeat(40) } });
    try {
      assert.equal((await fetch(`${t.url}/.well-known/openid-configuration`)).status, 404);
      assert.equal((await fetch(`${t.url}/auth/userinfo`)).status, 404);
      const m = await (await fetch(`${t.url}/.well-known/oauth-authorization-server`)).json() as Record<string, any>;
      assert.equal(m.userinfo_endpoint, undefined);
      assert.ok(!m.scopes_supported.includes('openid'));
    } finally {
      await t.close();
    }
  });
});
