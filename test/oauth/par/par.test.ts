/**
 * Issue 17 item 16: pushed authorization requests (RFC 9126). openid-client 6's
 * buildAuthorizationUrlWithPAR against a real hub (sign-in at a real oidc-provider IdP, Redis as the
 * store shared by two hub instances): the endpoint in metadata; confidential clients authenticate as
 * at the token endpoint (secret, private_key_jwt), public ones by client_id; the request checked as
 * /auth/authorize checks it; `request_uri` single use and short-lived, usable on another instance;
 * MIMIR_REQUIRE_PAR refuses plain authorization requests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { exportJWK, generateKeyPair } from 'jose';
import { hashSecret } from '../../../src/crypto/index.ts';
import { approve, sessionCookie, signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { register } from '../../helpers/authorize-flow.ts';
import { startHub, newRedisPrefix, type TestHub } from '../../helpers/hub.ts';

const REDIRECT = 'http://127.0.0.1:7795/callback';
const URN = 'urn:ietf:params:oauth:request_uri:';


async function push(hub: TestHub, body: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Record<string, any> }> {
  const res = await fetch(`${hub.url}/auth/par`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() });
  return { status: res.status, headers: res.headers, body: await res.json() as Record<string, any> };
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` });

describe('pushed authorization requests (RFC 9126)', () => {
  let rig: Rig;
  let session: string;
  let confidential: { id: string; secret: string };
  let publicId: string;
  let config: client.Configuration;
  const secrets = { MIMIR_JWT_SECRET: randomBytes(32).toString('base64url'), MIMIR_SESSION_SECRET: randomBytes(32).toString('base64url') };
  const redisPrefix = newRedisPrefix();

  /** A complete authorization request's parameters (PKCE S256). */
  const request = async (extra: Record<string, string> = {}) => {
    const verifier = client.randomPKCECodeVerifier();
    return { verifier, params: { response_type: 'code', redirect_uri: REDIRECT, scope: 'nodes:read', state: client.randomState(), code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra } };
  };

  before(async () => {
    rig = await startRig({ corp: 'generic' }, { storage: 'redis', redisPrefix, env: secrets });
    session = (await signIn(rig, 'corp')).session!;
    const reg = await register(rig.hub, { client_name: 'PAR RP', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    confidential = { id: reg.body.client_id, secret: reg.body.client_secret };
    const pub = await register(rig.hub, { client_name: 'PAR public', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
    publicId = pub.body.client_id;
    config = await client.discovery(new URL(rig.hub.config.jwt.issuer), confidential.id, { redirect_uris: [REDIRECT] }, client.ClientSecretBasic(confidential.secret), { execute: [client.allowInsecureRequests] });
  });
  after(async () => { await rig?.close(); });

  it('metadata names the endpoint; requests are not required by default', async () => {
    const m = await (await fetch(`${rig.hub.url}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>;
    assert.equal(m.pushed_authorization_request_endpoint, `${rig.hub.url}/auth/par`);
    assert.equal(m.require_pushed_authorization_requests, false);
    assert.equal(config.serverMetadata().pushed_authorization_request_endpoint, m.pushed_authorization_request_endpoint);
  });

  it('openid-client pushes with client_secret_basic, the browser carries only client_id and request_uri, the code is exchanged', async () => {
    const { verifier, params } = await request();
    const url = await client.buildAuthorizationUrlWithPAR(config, params);
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    assert.ok(url.searchParams.get('request_uri')!.startsWith(URN));
    const back = await approve(rig, session, url);
    assert.ok(back.href.startsWith(REDIRECT), back.href);
    assert.equal(back.searchParams.get('state'), params.state);
    const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: params.state });
    assert.equal(tokens.scope, 'nodes:read');

    // RFC 9126 §4: single use — the same URL again is refused.
    const again = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session) } });
    assert.equal(again.status, 400);
    assert.equal(again.headers.get('location'), null);
  });

  it('answers 201 with request_uri and expires_in ≤ 60, not cached; the stored request dies with it', async () => {
    const { params } = await request();
    const res = await push(rig.hub, params, basic(confidential.id, confidential.secret));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(res.body.request_uri, /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{40,}$/);
    assert.ok(res.body.expires_in > 0 && res.body.expires_in <= 60, String(res.body.expires_in));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const stored = await rig.hub.hub.store.find('par_request', hashSecret(res.body.request_uri.slice(URN.length)));
    assert.ok(stored?.expiresAt !== undefined && stored.expiresAt - Date.now() / 1000 <= 61, 'the record expires within a minute');
    assert.equal(JSON.stringify(stored.payload).includes(confidential.secret), false, 'the client secret is not stored');
  });

  it('only what was pushed counts: parameters added to the authorization URL are ignored', async () => {
    const { verifier, params } = await request();
    const url = await client.buildAuthorizationUrlWithPAR(config, params);
    url.searchParams.set('scope', 'nodes:write');
    url.searchParams.set('redirect_uri', 'http://127.0.0.1:7795/elsewhere');
    const back = await approve(rig, session, url);
    assert.ok(back.href.startsWith(REDIRECT));
    const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: params.state });
    assert.equal(tokens.scope, 'nodes:read');
  });

  it('a request_uri is bound to its client', async () => {
    const { params } = await request();
    const url = await client.buildAuthorizationUrlWithPAR(config, params);
    url.searchParams.set('client_id', publicId);
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session) } });
    assert.equal(res.status, 400);
  });

  it('a public client pushes with its client_id alone; a confidential one must authenticate', async () => {
    const { params } = await request();
    const ok = await push(rig.hub, { ...params, client_id: publicId });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const none = await push(rig.hub, { ...params, client_id: confidential.id });
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'invalid_client');
    const wrong = await push(rig.hub, params, basic(confidential.id, 'not-the-secret'));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid_client');
  });

  it('a private_key_jwt client authenticates with its assertion, as at the token endpoint', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const reg = await register(rig.hub, { client_name: 'PAR pkjwt', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, grant_types: ['authorization_code'] });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const keyed = await client.discovery(new URL(rig.hub.config.jwt.issuer), reg.body.client_id, { redirect_uris: [REDIRECT] }, client.PrivateKeyJwt({ key: privateKey, kid: 'k1' }), { execute: [client.allowInsecureRequests] });
    const { verifier, params } = await request();
    const url = await client.buildAuthorizationUrlWithPAR(keyed, params);
    const back = await approve(rig, session, url);
    const tokens = await client.authorizationCodeGrant(keyed, back, { pkceCodeVerifier: verifier, expectedState: params.state });
    assert.ok(tokens.access_token);
  });

  it('bad requests get RFC 6749 JSON errors, checked as /auth/authorize checks them', async () => {
    const auth = basic(confidential.id, confidential.secret);
    const { params } = await request();
    const { code_challenge: _c, ...noPkce } = params;
    const cases: Array<[Record<string, string>, string]> = [
      [noPkce, 'invalid_request'],
      [{ ...params, code_challenge_method: 'plain' }, 'invalid_request'],
      [{ ...params, redirect_uri: 'http://127.0.0.1:7795/not-registered' }, 'invalid_request'],
      [{ ...params, request_uri: `${URN}abc` }, 'invalid_request'],
      [{ ...params, max_age: 'soon' }, 'invalid_request'],
      [{ ...params, response_type: 'token' }, 'unsupported_response_type'],
      [{ ...params, scope: 'bogus:unknown' }, 'invalid_scope'],
      [{ ...params, resource: 'https://elsewhere.example/' }, 'invalid_target'],
      [{ ...params, client_id: publicId }, 'invalid_request'],
    ];
    for (const [body, error] of cases) {
      const res = await push(rig.hub, body, auth);
      assert.equal(res.status, 400, `${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, error, JSON.stringify(body));
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    }
  });

  it('CORS as at the token endpoint', async () => {
    const res = await fetch(`${rig.hub.url}/auth/par`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    assert.ok(res.status === 204 || res.status === 200, String(res.status));
    assert.ok(res.headers.get('access-control-allow-origin'));
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
  });

  it('without a session the user signs in first; the way back carries a new request_uri, and the flow completes', async () => {
    const { verifier, params } = await request();
    const url = await client.buildAuthorizationUrlWithPAR(config, params);
    const res = await fetch(url, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const login = new URL(res.headers.get('location')!, rig.hub.url);
    assert.equal(login.pathname, '/auth/login');
    const returnTo = login.searchParams.get('returnTo')!;
    const resumed = new URL(returnTo, rig.hub.url).searchParams.get('request_uri');
    assert.ok(resumed?.startsWith(URN) && resumed !== url.searchParams.get('request_uri'), 'a new request_uri, the pushed one being used');
    const signedIn = await signIn(rig, 'corp', { returnTo });
    const back = await approve(rig, signedIn.session!, new URL(returnTo, rig.hub.url));
    assert.ok(back.href.startsWith(REDIRECT), back.href);
    const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: params.state });
    assert.ok(tokens.access_token);
  });

  it('a request pushed to one instance is used at another (shared Store), once', async () => {
    const other = await startHub({ storage: 'redis', redisPrefix, env: { ...secrets, MIMIR_JWT_ISSUER: rig.hub.config.jwt.issuer } });
    try {
      const { params } = await request();
      const url = await client.buildAuthorizationUrlWithPAR(config, params);
      const there = await fetch(`${other.url}/auth/authorize${url.search}`, { redirect: 'manual' });
      assert.equal(there.status, 302, await there.text());
      assert.equal(new URL(there.headers.get('location')!, other.url).pathname, '/auth/login', 'the other instance found the request and sends the user to sign in');
      const here = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session) } });
      assert.equal(here.status, 400, 'used up on the other instance');
    } finally {
      await other.close();
    }
  });
});

describe('MIMIR_REQUIRE_PAR=true', () => {
  let rig: Rig;
  let session: string;
  let config: client.Configuration;

  before(async () => {
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_REQUIRE_PAR: 'true' } });
    session = (await signIn(rig, 'corp')).session!;
    const reg = await register(rig.hub, { client_name: 'FAPI RP', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code'] });
    config = await client.discovery(new URL(rig.hub.config.jwt.issuer), reg.body.client_id, { redirect_uris: [REDIRECT] }, client.ClientSecretBasic(reg.body.client_secret), { execute: [client.allowInsecureRequests] });
  });
  after(async () => { await rig?.close(); });

  it('metadata says require_pushed_authorization_requests: true', () => {
    assert.equal(config.serverMetadata().require_pushed_authorization_requests, true);
  });

  it('a plain authorization request goes back to the client as invalid_request; a pushed one succeeds', async () => {
    const verifier = client.randomPKCECodeVerifier();
    const params = { redirect_uri: REDIRECT, scope: 'nodes:read', state: 'st', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' };
    const plain = await fetch(client.buildAuthorizationUrl(config, params), { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session) } });
    assert.equal(plain.status, 302);
    const refused = new URL(plain.headers.get('location')!);
    assert.ok(refused.href.startsWith(REDIRECT));
    assert.equal(refused.searchParams.get('error'), 'invalid_request');
    assert.equal(refused.searchParams.get('code'), null);
    assert.equal(refused.searchParams.get('state'), 'st');

    const back = await approve(rig, session, await client.buildAuthorizationUrlWithPAR(config, params));
    assert.ok(back.searchParams.get('code'), back.href);
    const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: 'st' });
    assert.ok(tokens.access_token);
  });
});

/**
 * Issue 17 review F3: anyone may push (a public client names itself), so /auth/par must not be a
 * way to fill the store: only the authorization request's own parameters are kept, a few KB at
 * most, form-encoded only (RFC 9126 §2.1), and each address has a budget of pushes a minute.
 */
describe('pushed authorization requests cannot fill the store', () => {
  let t: TestHub;
  let limited: TestHub;
  let publicId: string;
  const pkce = async () => ({ response_type: 'code', redirect_uri: REDIRECT, state: 'st', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
  const stored = async () => (await t.hub.store.list<{ clientId: string; params: Record<string, string> }>('par_request'));

  before(async () => {
    t = await startHub({ storage: 'sqlite' });
    limited = await startHub({ storage: 'sqlite', env: { MIMIR_PAR_RATE_LIMIT: '5' } });
    const pub = await register(t, { client_name: 'PAR public', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    publicId = pub.body.client_id;
  });
  after(async () => {
    await t?.close();
    await limited?.close();
  });

  it('unknown parameters are not stored, at the push nor at the re-push for a sign-in', async () => {
    const junk = 'A'.repeat(50_000);
    const res = await push(t, { client_id: publicId, ...(await pkce()), scope: 'nodes:read', junk, prompt: 'login', other: 'x' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const record = (await t.hub.store.find<{ params: Record<string, string> }>('par_request', hashSecret(res.body.request_uri.slice(URN.length))))!;
    assert.deepEqual(Object.keys(record.payload.params).sort(), ['client_id', 'code_challenge', 'code_challenge_method', 'redirect_uri', 'response_type', 'scope', 'state']);
    assert.ok(JSON.stringify(record.payload).length < 1000, 'a few hundred bytes, not 50 000');
    // No session: the hub re-pushes for the way back from the sign-in; only the request's own parameters.
    const authorize = await fetch(`${t.url}/auth/authorize?${new URLSearchParams({ client_id: publicId, request_uri: res.body.request_uri })}`, { redirect: 'manual' });
    assert.equal(authorize.status, 302);
    const returnTo = new URL(authorize.headers.get('location')!, t.url).searchParams.get('returnTo')!;
    const again = new URL(returnTo, t.url).searchParams.get('request_uri')!;
    const repushed = (await t.hub.store.find<{ params: Record<string, string> }>('par_request', hashSecret(again.slice(URN.length))))!;
    assert.deepEqual(repushed.payload.params, record.payload.params);
  });

  it('a request over 4096 bytes is invalid_request and nothing is stored', async () => {
    const before = (await stored()).length;
    const res = await push(t, { client_id: publicId, ...(await pkce()), state: 's'.repeat(5000) });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error, 'invalid_request');
    assert.match(res.body.error_description, /4096 bytes/);
    assert.equal((await stored()).length, before);
  });

  it('a JSON body is refused with invalid_request (RFC 9126 §2.1: form-encoded), small or large, and nothing is stored', async () => {
    const before = (await stored()).length;
    const small = await fetch(`${t.url}/auth/par`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: publicId, ...(await pkce()) }) });
    assert.equal(small.status, 400);
    assert.equal((await small.json() as { error: string }).error, 'invalid_request');
    const big = await fetch(`${t.url}/auth/par`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: publicId, ...(await pkce()), junk: 'A'.repeat(900_000) }) });
    assert.equal(big.status, 413, 'refused after at most the 64 KiB form limit was read');
    assert.equal((await stored()).length, before);
  });

  it('each address may push MIMIR_PAR_RATE_LIMIT times a minute; then 429 with Retry-After, failed pushes counted too', async () => {
    const reg = await register(limited, { client_name: 'PAR limited', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
    const id = reg.body.client_id as string;
    const answers = [];
    // Near a minute's end the budget may renew mid-test; start in a fresh minute's first 50 s.
    if (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 50));
    answers.push((await push(limited, { client_id: id, ...(await pkce()), response_type: 'token' })).status); // refused, still counted
    for (let i = 0; i < 5; i++) answers.push((await push(limited, { client_id: id, ...(await pkce()) })).status);
    assert.deepEqual(answers, [400, 201, 201, 201, 201, 429]);
    const over = await push(limited, { client_id: id, ...(await pkce()) });
    assert.equal(over.status, 429);
    assert.equal(over.body.error, 'too_many_requests');
    const retry = Number(over.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, String(over.headers.get('retry-after')));
  });
});
