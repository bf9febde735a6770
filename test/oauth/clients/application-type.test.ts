/**
 * Issue 17 item 8: dynamic client registration takes OIDC Dynamic Client Registration §2
 * `application_type`, as the MCP 2026-07-28 revision asks clients to send it: accepted, stored
 * and echoed; `native` by default when the client registers a loopback redirect URI, `web`
 * otherwise; a `web` client may not register an http: or loopback redirect URI (RFC 7591 §3.2.2
 * `invalid_redirect_uri`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { startHub, type TestHub } from '../../helpers/hub.ts';
import { register } from '../../helpers/authorize-flow.ts';
import { OAuthError } from '../../../src/errors.ts';

describe('application_type at dynamic client registration', () => {
  let t: TestHub;
  let docServer: Server;
  let docOrigin: string;
  const docs = new Map<string, unknown>();
  before(async () => {
    t = await startHub({ storage: 'memory', env: { MIMIR_DEVELOPMENT_MODE: 'true', MIMIR_REGISTRATION_RATE_LIMIT: '1000' } });
    docServer = createServer((req, res) => {
      const doc = docs.get(req.url ?? '');
      res.writeHead(doc ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc ?? {}));
    });
    await new Promise<void>((resolve) => docServer.listen(0, '127.0.0.1', resolve));
    const addr = docServer.address();
    docOrigin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  after(async () => {
    await t?.close();
    await new Promise((resolve) => docServer?.close(resolve));
  });

  const stored = async (clientId: string) => (await t.hub.clients.get(clientId)).application_type;

  it('omitted: native for a CLI or desktop client\'s loopback redirect, web for an https one; stored and echoed', async () => {
    const native = await register(t, { client_name: 'CLI', redirect_uris: ['http://127.0.0.1:8976/callback'], token_endpoint_auth_method: 'none' });
    assert.equal(native.status, 201, JSON.stringify(native.body));
    assert.equal(native.body.application_type, 'native');
    assert.equal(await stored(native.body.client_id), 'native');
    const web = await register(t, { client_name: 'Web app', redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' });
    assert.equal(web.status, 201);
    assert.equal(web.body.application_type, 'web');
    assert.equal(await stored(web.body.client_id), 'web');
  });

  it('given: echoed as given, including VS Code\'s native registration with an https redirect beside loopback ones', async () => {
    const vscode = await register(t, {
      client_name: 'Visual Studio Code', application_type: 'native', token_endpoint_auth_method: 'none',
      redirect_uris: ['https://insiders.vscode.dev/redirect', 'https://vscode.dev/redirect', 'http://127.0.0.1/', 'http://127.0.0.1:33418/'],
    });
    assert.equal(vscode.status, 201, JSON.stringify(vscode.body));
    assert.equal(vscode.body.application_type, 'native');
    // Older VS Code sends no application_type with the same set: a loopback redirect makes it native.
    const older = await register(t, { client_name: 'Older VS Code', token_endpoint_auth_method: 'none', redirect_uris: ['https://vscode.dev/redirect', 'http://127.0.0.1/'] });
    assert.equal(older.status, 201, JSON.stringify(older.body));
    assert.equal(older.body.application_type, 'native');
    const web = await register(t, { application_type: 'web', redirect_uris: ['https://app.example/cb'] });
    assert.equal(web.status, 201);
    assert.equal(web.body.application_type, 'web');
  });

  it('a web client may not register a loopback (or http:) redirect URI: invalid_redirect_uri', async () => {
    for (const uri of ['http://127.0.0.1:8976/callback', 'http://localhost/cb', 'http://[::1]:9/cb', 'https://localhost/cb']) {
      const r = await register(t, { application_type: 'web', redirect_uris: ['https://app.example/cb', uri], token_endpoint_auth_method: 'none' });
      assert.equal(r.status, 400, uri);
      assert.equal(r.body.error, 'invalid_redirect_uri', uri);
    }
  });

  it('an application_type other than native or web is invalid_client_metadata', async () => {
    for (const value of ['browser', 'Native', 42]) {
      const r = await register(t, { application_type: value, redirect_uris: ['https://app.example/cb'] });
      assert.equal(r.status, 400, String(value));
      assert.equal(r.body.error, 'invalid_client_metadata', String(value));
    }
  });

  it('a client ID metadata document is held to the application_type it states, and to none when it states none', async () => {
    const webDoc = `${docOrigin}/web-loopback.json`;
    docs.set('/web-loopback.json', { client_id: webDoc, client_name: 'Says web', application_type: 'web', redirect_uris: ['http://127.0.0.1:9/cb'] });
    await assert.rejects(t.hub.clients.get(webDoc), (e) => e instanceof OAuthError && e.error === 'invalid_redirect_uri');
    const silent = `${docOrigin}/mixed.json`;
    docs.set('/mixed.json', { client_id: silent, client_name: 'Says nothing', redirect_uris: ['https://app.example/cb', 'http://127.0.0.1:9/cb'] });
    const client = await t.hub.clients.get(silent);
    assert.equal(client.application_type, undefined);
  });
});
