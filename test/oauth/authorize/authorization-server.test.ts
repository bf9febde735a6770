import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { decodeJwt } from 'jose';
import { signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { authorize, pkce, register, tokenRequest } from '../../helpers/authorize-flow.ts';

describe('the hub as the authorization server for MCP clients', () => {
  let rig: Rig;
  let session: string;
  let docServer: Server;
  let docOrigin: string;
  const docs = new Map<string, unknown>();

  before(async () => {
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_DEVELOPMENT_MODE: 'true' } });
    const signed = await signIn(rig, 'corp');
    assert.ok(signed.session, 'signed in through the IdP');
    session = signed.session!;
    docServer = createServer((req, res) => {
      const doc = docs.get(req.url ?? '');
      res.writeHead(doc ? 200 : 404, { 'content-type': 'application/json', 'cache-control': 'max-age=600' });
      res.end(doc ? JSON.stringify(doc) : '{}');
    });
    await new Promise<void>((resolve) => docServer.listen(0, '127.0.0.1', resolve));
    const addr = docServer.address();
    docOrigin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  after(async () => {
    await rig.close();
    await new Promise((resolve) => docServer.close(resolve));
  });

  it('publishes RFC 9728 protected resource metadata naming the resource it was fetched for, and the hub', async () => {
    // RFC 9728 §3.3: the resource is the URL the document describes (the well-known part removed).
    for (const [path, resource] of [['/.well-known/oauth-protected-resource', rig.hub.url], ['/.well-known/oauth-protected-resource/mcp', `${rig.hub.url}/mcp`]] as const) {
      const prm = await (await fetch(`${rig.hub.url}${path}`)).json() as Record<string, unknown>;
      assert.equal(prm.resource, resource);
      assert.deepEqual(prm.authorization_servers, [rig.hub.config.jwt.issuer]);
      assert.ok((prm.scopes_supported as string[]).includes('mcp:*'));
      assert.deepEqual(prm.bearer_methods_supported, ['header']);
    }
  });

  it('advertises the authorization server in its RFC 8414 metadata', async () => {
    const m = await (await fetch(`${rig.hub.url}/.well-known/oauth-authorization-server`)).json() as Record<string, any>;
    assert.equal(m.authorization_endpoint, `${rig.hub.url}/auth/authorize`);
    assert.equal(m.registration_endpoint, `${rig.hub.url}/auth/register`);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.equal(m.client_id_metadata_document_supported, true);
    assert.equal(m.authorization_response_iss_parameter_supported, true);
    assert.ok(m.grant_types_supported.includes('authorization_code'));
    assert.ok(m.response_types_supported.includes('code'));
  });

  it('dynamic registration → authorize with consent → code → token whose aud is the resource', async () => {
    const reg = await register(rig.hub, { client_name: 'Test MCP Client', redirect_uris: ['http://127.0.0.1:7777/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201);
    assert.equal(reg.body.client_secret, undefined, 'public clients get no secret');
    const { verifier, challenge } = pkce();
    const resource = `${rig.hub.url}/mcp`;
    // Loopback redirect on another port than registered (RFC 8252 §7.3).
    const redirectUri = 'http://127.0.0.1:53123/callback';
    const result = await authorize(rig.hub, session, {
      response_type: 'code', client_id: reg.body.client_id, redirect_uri: redirectUri, state: 's-123',
      code_challenge: challenge, code_challenge_method: 'S256', resource, scope: 'mcp:* nodes:read',
    });
    assert.match(result.page ?? '', /Test MCP Client/, 'the consent page names the client');
    assert.match(result.page ?? '', /127\.0\.0\.1:53123/, 'and its redirect host');
    assert.match(result.page ?? '', /mcp:\*/, 'and the scopes');
    assert.equal(result.status, 303);
    const back = new URL(result.location!);
    assert.equal(`${back.origin}${back.pathname}`, redirectUri);
    assert.equal(back.searchParams.get('state'), 's-123');
    assert.equal(back.searchParams.get('iss'), rig.hub.config.jwt.issuer, 'RFC 9207 iss');
    const code = back.searchParams.get('code')!;

    const token = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: reg.body.client_id, resource });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    const claims = decodeJwt(token.body.access_token);
    assert.equal(claims.aud, resource);
    assert.equal(claims.client_id, reg.body.client_id);
    assert.equal(claims.scope, 'mcp:* nodes:read');
    assert.ok(typeof token.body.refresh_token === 'string');
    // RFC 8707: a token for the /mcp resource is good there only (issue 15 item 8).
    const me = await fetch(`${rig.hub.url}/auth/me`, { headers: { authorization: `Bearer ${token.body.access_token}` } });
    assert.equal(me.status, 401);
    assert.equal((await me.json() as { error: string }).error, 'invalid_token');

    // Replayed code: refused, and what it produced is revoked.
    const replay = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: reg.body.client_id });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');
    const refreshed = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: token.body.refresh_token, client_id: reg.body.client_id });
    assert.equal(refreshed.body.error, 'invalid_grant', 'the refresh token from the replayed code is revoked');

    // Consent is remembered: the next authorization needs no page.
    const again = await authorize(rig.hub, session, {
      response_type: 'code', client_id: reg.body.client_id, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', resource, scope: 'nodes:read',
    });
    assert.equal(again.status, 302);
    assert.ok(new URL(again.location!).searchParams.get('code'));
  });

  it('public clients get rotated refresh tokens bound to the resource', async () => {
    const reg = await register(rig.hub, { client_name: 'Rotating', redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    const { verifier, challenge } = pkce();
    const resource = `${rig.hub.url}/mcp`;
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: reg.body.client_id, redirect_uri: 'https://client.example/cb', code_challenge: challenge, code_challenge_method: 'S256', resource });
    const code = new URL(r.location!).searchParams.get('code')!;
    const t1 = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: 'https://client.example/cb', code_verifier: verifier, client_id: reg.body.client_id });
    assert.equal(t1.status, 200);
    const t2 = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: t1.body.refresh_token, client_id: reg.body.client_id });
    assert.equal(t2.status, 200, JSON.stringify(t2.body));
    assert.notEqual(t2.body.refresh_token, t1.body.refresh_token, 'rotated');
    assert.equal(decodeJwt(t2.body.access_token).aud, resource, 'the refreshed token keeps the resource audience');
  });

  it('refresh tokens stay bound to their client; confidential clients authenticate', async () => {
    const conf = await register(rig.hub, { client_name: 'Confidential', redirect_uris: ['https://conf.example/cb'], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(conf.status, 201);
    assert.ok(conf.body.client_secret, 'a confidential client gets a secret once');
    const basic = `Basic ${Buffer.from(`${conf.body.client_id}:${conf.body.client_secret}`).toString('base64')}`;
    const { verifier, challenge } = pkce();
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: conf.body.client_id, redirect_uri: 'https://conf.example/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    const code = new URL(r.location!).searchParams.get('code')!;
    const noAuth = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: 'https://conf.example/cb', code_verifier: verifier, client_id: conf.body.client_id });
    assert.equal(noAuth.status, 401);
    assert.equal(noAuth.body.error, 'invalid_client');
    const r2 = await authorize(rig.hub, session, { response_type: 'code', client_id: conf.body.client_id, redirect_uri: 'https://conf.example/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    const t = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: new URL(r2.location!).searchParams.get('code')!, redirect_uri: 'https://conf.example/cb', code_verifier: verifier }, { authorization: basic });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    const stolen = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: 'mimir-cli' });
    assert.equal(stolen.body.error, 'invalid_grant', 'another client cannot use it');
    const wrongSecret = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token }, { authorization: `Basic ${Buffer.from(`${conf.body.client_id}:nope`).toString('base64')}` });
    assert.equal(wrongSecret.status, 401);
    const ok = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token }, { authorization: basic });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('a client ID metadata document served on loopback (development mode) works', async () => {
    const clientId = `${docOrigin}/clients/cli.json`;
    docs.set('/clients/cli.json', { client_id: clientId, client_name: 'Doc Client', redirect_uris: ['http://127.0.0.1:9999/cb'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none' });
    const { verifier, challenge } = pkce();
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: clientId, redirect_uri: 'http://127.0.0.1:9999/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    assert.match(r.page ?? '', /Doc Client/);
    const code = new URL(r.location!).searchParams.get('code')!;
    const t = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9999/cb', code_verifier: verifier, client_id: clientId });
    assert.equal(t.status, 200, JSON.stringify(t.body));
  });

  it('a metadata document whose client_id differs from its URL is refused', async () => {
    const clientId = `${docOrigin}/clients/liar.json`;
    docs.set('/clients/liar.json', { client_id: 'https://someone-else.example/client.json', redirect_uris: ['http://127.0.0.1:9999/cb'] });
    const { challenge } = pkce();
    const r = await authorize(rig.hub, session, { response_type: 'code', client_id: clientId, redirect_uri: 'http://127.0.0.1:9999/cb', code_challenge: challenge, code_challenge_method: 'S256' });
    assert.equal(r.status, 400);
    assert.equal(r.location, null, 'never redirected to an unverified redirect URI');
    assert.match(r.page ?? '', /differs from its URL/);
  });

  describe('rejected, each for its reason', () => {
    let clientId: string;
    const redirectUri = 'https://client.example/callback';
    before(async () => {
      clientId = (await register(rig.hub, { client_name: 'R', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' })).body.client_id;
    });
    const base = () => ({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, state: 'st' });

    it('redirect URI mismatch: an error page, no redirect', async () => {
      const { challenge } = pkce();
      const r = await authorize(rig.hub, session, { ...base(), redirect_uri: 'https://evil.example/callback', code_challenge: challenge, code_challenge_method: 'S256' });
      assert.equal(r.status, 400);
      assert.equal(r.location, null);
    });

    it('missing PKCE and plain PKCE', async () => {
      const missing = await authorize(rig.hub, session, base());
      assert.equal(missing.status, 302);
      assert.equal(new URL(missing.location!).searchParams.get('error'), 'invalid_request');
      assert.equal(new URL(missing.location!).searchParams.get('state'), 'st');
      const plain = await authorize(rig.hub, session, { ...base(), code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
      assert.equal(new URL(plain.location!).searchParams.get('error'), 'invalid_request');
    });

    it('a resource the hub does not serve', async () => {
      const { challenge } = pkce();
      const r = await authorize(rig.hub, session, { ...base(), code_challenge: challenge, code_challenge_method: 'S256', resource: 'https://other.example/api' });
      assert.equal(new URL(r.location!).searchParams.get('error'), 'invalid_target');
    });

    it('a wrong verifier, and a resource differing at the token endpoint', async () => {
      const { verifier, challenge } = pkce();
      const get = async () => new URL((await authorize(rig.hub, session, { ...base(), code_challenge: challenge, code_challenge_method: 'S256', resource: `${rig.hub.url}/mcp` })).location!).searchParams.get('code')!;
      const wrong = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: await get(), redirect_uri: redirectUri, code_verifier: pkce().verifier, client_id: clientId });
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.error, 'invalid_grant');
      const other = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: await get(), redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId, resource: 'mimir-api' });
      assert.equal(other.status, 400);
      assert.equal(other.body.error, 'invalid_target');
      const wrongRedirect = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: await get(), redirect_uri: 'https://client.example/other', code_verifier: verifier, client_id: clientId });
      assert.equal(wrongRedirect.body.error, 'invalid_grant');
      const wrongClient = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: await get(), redirect_uri: redirectUri, code_verifier: verifier, client_id: 'mimir-cli' });
      assert.equal(wrongClient.body.error, 'invalid_grant');
    });

    it('registration with a non-https redirect that is not loopback', async () => {
      for (const uri of ['http://client.example/cb', 'javascript:alert(1)', 'https://client.example/cb#frag']) {
        const r = await register(rig.hub, { redirect_uris: [uri] });
        assert.equal(r.status, 400, uri);
        assert.equal(r.body.error, 'invalid_redirect_uri', uri);
      }
      const noUris = await register(rig.hub, { client_name: 'x' });
      assert.equal(noUris.status, 400);
    });

    it('without a session the user is sent to sign in, then back', async () => {
      const { challenge } = pkce();
      const res = await fetch(`${rig.hub.url}/auth/authorize?${new URLSearchParams({ ...base(), code_challenge: challenge, code_challenge_method: 'S256' })}`, { redirect: 'manual' });
      assert.equal(res.status, 302);
      const loc = new URL(res.headers.get('location')!, rig.hub.url);
      assert.equal(loc.pathname, '/auth/login');
      assert.match(loc.searchParams.get('returnTo') ?? '', /^\/auth\/authorize\?/);
    });

    it('a denied consent goes back with access_denied', async () => {
      const other = (await register(rig.hub, { client_name: 'Deny me', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' })).body.client_id;
      const { challenge } = pkce();
      const r = await authorize(rig.hub, session, { ...base(), client_id: other, code_challenge: challenge, code_challenge_method: 'S256' }, 'deny');
      assert.equal(new URL(r.location!).searchParams.get('error'), 'access_denied');
    });
  });
});

describe('client ID metadata documents outside development mode', () => {
  it('refuses a document on a loopback or private address (SSRF)', async () => {
    const rig = await startRig({ corp: 'generic' });
    try {
      const { session } = await signIn(rig, 'corp');
      const r = await authorize(rig.hub, session!, { response_type: 'code', client_id: 'https://127.0.0.1:9/client.json', redirect_uri: 'https://x.example/cb', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
      assert.equal(r.status, 400);
      assert.match(r.page ?? '', /non-public address/);
    } finally {
      await rig.close();
    }
  });
});
