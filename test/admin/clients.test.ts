/**
 * Issue 19 (one admin service): the OAuth clients of the authorization server (dynamically
 * registered, RFC 7591, and client ID metadata documents) are listed and revoked by an admin, over
 * HTTP (/auth/admin/clients) and with the CLI (`mimir-auth clients list|revoke ID`). A revoked
 * client gets nothing more: no code, no token for a code it already holds, no refreshed token, and
 * the tokens it was given stop working.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { authorize, pkce, register, tokenRequest } from '../helpers/authorize-flow.ts';
import { signIn, startRig, type Rig } from '../oidc/setup.ts';
import { cli } from './support.ts';

describe('OAuth clients: listed and revoked by an admin', () => {
  let rig: Rig;
  let session: string;
  let admin: Record<string, string>;
  let docServer: Server;
  let docOrigin: string;
  let docFetches = 0;
  const docs = new Map<string, unknown>();

  before(async () => {
    rig = await startRig({ corp: 'generic' }, { env: { MIMIR_DEVELOPMENT_MODE: 'true' } });
    session = (await signIn(rig, 'corp')).session!;
    assert.ok(session, 'signed in through the IdP');
    admin = { 'x-api-key': (await rig.hub.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key };
    docServer = createServer((req, res) => {
      docFetches++;
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

  const listClients = async () => {
    const res = await fetch(`${rig.hub.url}/auth/admin/clients`, { headers: admin });
    assert.equal(res.status, 200);
    return (await res.json() as { clients: Array<Record<string, unknown>> }).clients;
  };
  /** The CLI on the running hub's store. */
  const cliEnv = () => ({ MIMIR_DATA_DIR: rig.hub.dataDir, MIMIR_TOKEN_STORAGE: 'sqlite', MIMIR_LOG_AUTH_EVENTS: 'false' });

  it('over HTTP: a revoked dynamic client gets no code, no token for its code, no refresh, and its tokens stop working', async () => {
    const redirectUri = 'https://client.example/cb';
    const reg = await register(rig.hub, { client_name: 'Soon Revoked', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(reg.status, 201);
    const clientId = reg.body.client_id as string;
    const { verifier, challenge } = pkce();
    // The origin root as the resource: the token is good at /auth/me (RFC 8707).
    const params = { response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', resource: rig.hub.config.publicUrl };
    const codeOf = (r: { location: string | null }) => new URL(r.location!).searchParams.get('code')!;
    const first = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: codeOf(await authorize(rig.hub, session, params)), redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const held = codeOf(await authorize(rig.hub, session, params));
    const bearer = { authorization: `Bearer ${first.body.access_token}` };
    assert.equal((await fetch(`${rig.hub.url}/auth/me`, { headers: bearer })).status, 200);

    const listed = (await listClients()).find((c) => c.client_id === clientId);
    assert.equal(listed?.client_name, 'Soon Revoked');
    assert.equal(listed?.source, 'dynamic');
    assert.equal(listed?.client_secret_hash, undefined, 'never a secret hash');
    assert.ok((await listClients()).some((c) => c.client_id === 'mimir-cli' && c.source === 'builtin'));

    const revoked = await fetch(`${rig.hub.url}/auth/admin/clients/${encodeURIComponent(clientId)}`, { method: 'DELETE', headers: admin });
    assert.equal(revoked.status, 200);
    assert.deepEqual(await revoked.json(), { client_id: clientId, revoked: true, refresh_families_revoked: 1 });
    assert.equal((await listClients()).find((c) => c.client_id === clientId), undefined);

    const withCode = await tokenRequest(rig.hub, { grant_type: 'authorization_code', code: held, redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId });
    assert.equal(withCode.body.error, 'invalid_client', 'the code it already held buys nothing');
    const refreshed = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: clientId });
    assert.equal(refreshed.body.error, 'invalid_client');
    const anonymous = await tokenRequest(rig.hub, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    assert.equal(anonymous.body.error, 'invalid_grant', 'its refresh token is revoked, whoever presents it');
    assert.equal((await fetch(`${rig.hub.url}/auth/me`, { headers: bearer })).status, 401, 'the access token it got stops working');
    const again = await authorize(rig.hub, session, params);
    assert.equal(again.status, 400);
    assert.equal(again.location, null, 'no code, and no redirect to its URI');
  });

  it('with the CLI: a revoked client ID metadata document is refused from then on, without fetching it', async () => {
    const clientId = `${docOrigin}/clients/doc.json`;
    const redirectUri = 'http://127.0.0.1:9999/cb';
    docs.set('/clients/doc.json', { client_id: clientId, client_name: 'Doc Client', redirect_uris: [redirectUri], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none' });
    const { challenge } = pkce();
    const params = { response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' };
    const before = await authorize(rig.hub, session, params);
    assert.match(before.page ?? '', /Doc Client/, 'it works before');
    assert.ok(before.location);

    const listed = await cli(['clients', 'list', '--json'], cliEnv(), rig.hub.dataDir);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok((JSON.parse(listed.stdout) as Array<{ client_id: string }>).some((c) => c.client_id === clientId));
    const revoked = await cli(['clients', 'revoke', clientId], cliEnv(), rig.hub.dataDir);
    assert.equal(revoked.code, 0, revoked.stderr);

    const fetches = docFetches;
    const after = await authorize(rig.hub, session, params);
    assert.equal(after.status, 400);
    assert.equal(after.location, null);
    assert.equal(docFetches, fetches, 'refused before any fetch of its document');
    const shown = (await listClients()).find((c) => c.client_id === clientId);
    assert.equal(typeof shown?.revoked_at, 'number', 'listed as revoked');
    const table = await cli(['clients', 'list'], cliEnv(), rig.hub.dataDir);
    assert.match(table.stdout, new RegExp(`${clientId.replace(/[.]/g, '\\.')}\\s+metadata-document\\s+revoked`));
  });
});
