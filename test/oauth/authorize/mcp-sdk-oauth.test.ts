/**
 * The MCP TypeScript SDK clients' own OAuth support, unchanged (1.x and 2.x): discovery from the
 * 401 → registration (dynamic, or a client ID metadata document) → authorization through the
 * hub (IdP sign-in by a test user against a real oidc-provider, consent) → token → tools/list
 * through the hub to a real MCP upstream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { SignJWT } from 'jose';
import { approve, signIn, startRig, type Rig } from '../../oidc/setup.ts';
import { RBAC_FIXTURE } from '../../proxy/setup.ts';
import { startUpstream, TOOLS, type Upstream } from '../../proxy/upstream.ts';

/** A minimal OAuthClientProvider, as an MCP host application would write one. */
class TestProvider {
  info: any;
  saved: any;
  verifier = '';
  authorizationUrl: URL | undefined;
  readonly redirect: string;
  readonly clientMetadataUrl: string | undefined;
  constructor(redirect: string, clientMetadataUrl?: string) {
    this.redirect = redirect;
    this.clientMetadataUrl = clientMetadataUrl;
  }
  get redirectUrl() { return this.redirect; }
  get clientMetadata() {
    return { client_name: 'SDK Test Client', redirect_uris: [this.redirect], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info: unknown) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens: unknown) { this.saved = tokens; }
  redirectToAuthorization(url: URL) { this.authorizationUrl = url; }
  saveCodeVerifier(v: string) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

/** The user's browser (test/oidc/setup.ts `approve`); the callback URL back, carrying the hub as `iss`. */
async function approveBack(rig: Rig, session: string, url: URL): Promise<URL> {
  const back = await approve(rig, session, url);
  assert.equal(back.searchParams.get('iss'), rig.hub.config.jwt.issuer);
  return back;
}

async function connectWithOAuth(generation: 1 | 2, rig: Rig, session: string, provider: TestProvider): Promise<string[]> {
  const url = new URL(`${rig.hub.url}/mcp`);
  const make = () => {
    const info = { name: `oauth-v${generation}`, version: '1.0.0' };
    const client = generation === 1 ? new ClientV1(info) : new ClientV2(info);
    const transport = generation === 1 ? new TransportV1(url, { authProvider: provider as never }) : new TransportV2(url, { authProvider: provider as never });
    return { client: client as ClientV1, transport: transport as TransportV1 };
  };
  const first = make();
  await assert.rejects(first.client.connect(first.transport), /nauthorized/i, 'the first attempt needs authorization');
  await first.client.close().catch(() => undefined);
  assert.ok(provider.authorizationUrl, 'the SDK found the hub by RFC 9728 and built an authorization URL');
  assert.equal(provider.authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(provider.authorizationUrl.searchParams.get('resource'), `${rig.hub.url}/mcp`);
  const back = await approveBack(rig, session, provider.authorizationUrl);
  // 1.x takes the code; 2.x takes the callback's parameters and checks RFC 9207 `iss` itself.
  if (generation === 1) await first.transport.finishAuth(back.searchParams.get('code')!);
  else await (first.transport as unknown as TransportV2).finishAuth(back.searchParams);
  assert.ok(provider.saved?.access_token, 'the SDK exchanged the code for tokens');
  const second = make();
  await second.client.connect(second.transport);
  try {
    return (await second.client.listTools()).tools.map((t) => t.name).sort();
  } finally {
    await second.client.close();
  }
}

describe('MCP SDK clients authorize through the hub and reach Mimir', () => {
  let rig: Rig;
  let upstream: Upstream;
  let session: string;
  let docServer: Server;
  let docUrl: string;
  const sockets = new Set<Socket>();

  before(async () => {
    // A loopback https server for the client ID metadata document (the SDK insists on https).
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cimd-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    docServer = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
      if (req.url !== '/mcp-client.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        client_id: docUrl, client_name: 'SDK Doc Client', redirect_uris: ['http://127.0.0.1:8976/callback'],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
      }));
    });
    docServer.on('connection', (socket: Socket) => { sockets.add(socket); socket.once('close', () => sockets.delete(socket)); });
    await new Promise<void>((resolve) => docServer.listen(0, '127.0.0.1', resolve));
    const addr = docServer.address();
    docUrl = `https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/mcp-client.json`;

    upstream = await startUpstream();
    rig = await startRig({ corp: 'generic' }, {
      env: { MIMIR_UPSTREAM_URL: upstream.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, MIMIR_DEVELOPMENT_MODE: 'true', MIMIR_OUTBOUND_CA_FILE: join(dir, 'cert.pem') },
    });
    session = (await signIn(rig, 'corp')).session!;
  });
  after(async () => {
    await rig?.close();
    await upstream?.close();
    // Raw TLS sockets (e.g. a handshake a client gave up on) are not HTTP connections: destroy them too.
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => docServer.close(resolve));
  });

  it('/mcp without a token: 401 pointing at the protected resource metadata', async () => {
    const res = await fetch(`${rig.hub.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer /);
    assert.match(challenge, new RegExp(`resource_metadata="${rig.hub.url}/.well-known/oauth-protected-resource/mcp"`));
    assert.match(challenge, /scope="[^"]+"/);
  });

  for (const generation of [1, 2] as const) {
    it(`SDK ${generation}.x: dynamic registration → authorization → tools/list`, async () => {
      const provider = new TestProvider('http://127.0.0.1:8976/callback');
      const tools = await connectWithOAuth(generation, rig, session, provider);
      assert.deepEqual(tools, [...TOOLS].sort());
      assert.match(provider.info.client_id, /^dyn_/, 'registered dynamically');
    });

    it(`SDK ${generation}.x: client ID metadata document → authorization → tools/list`, async () => {
      const provider = new TestProvider('http://127.0.0.1:8976/callback', docUrl);
      const tools = await connectWithOAuth(generation, rig, session, provider);
      assert.deepEqual(tools, [...TOOLS].sort());
      assert.equal(provider.info.client_id, docUrl, 'the URL is the client_id');
    });
  }

  it('no token passthrough: a token for another audience is refused at /mcp and never reaches Mimir', async () => {
    const key = rig.hub.hub.keys.current();
    const foreign = await new SignJWT({ client_id: 'x', roles: ['admin'], scope: 'mcp:*' })
      .setProtectedHeader({ alg: key.record.alg, kid: key.record.kid, typ: 'at+jwt' })
      .setIssuer(rig.hub.config.jwt.issuer).setAudience('https://another-resource.example').setSubject('someone')
      .setIssuedAt().setExpirationTime('5m').setJti('foreign-aud').sign(key.sign);
    const before = upstream.find('/mcp').length;
    const res = await fetch(`${rig.hub.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${foreign}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /resource_metadata=/);
    assert.equal(upstream.find('/mcp').length, before, 'the upstream saw nothing');
    for (const r of upstream.received) assert.ok(!JSON.stringify(r.headers).includes('Bearer '), 'no client token was ever passed upstream');
  });
});
