/**
 * The MCP conformance suite's authorization server scenarios (`@modelcontextprotocol/conformance`
 * 0.2.0-alpha.12, installed as `conformance-next`: 0.1.16 has none) against the hub, run by the
 * suite's own CLI, `conformance authorization`, with the exact result of every check asserted.
 *
 * What 0.2.0-alpha.12 has that targets an authorization server or a protected resource, read from
 * its CLI (`conformance list`) and bundle: the `authorization` command and its two scenarios,
 * - authorization-server-metadata-endpoint: RFC 8414 metadata at the first well-known URL that
 *   answers 200 (`/.well-known/oauth-authorization-server` first), JSON, `issuer` equal to the URL
 *   given, authorization and token endpoints, `code` and `S256`; `client_id_metadata_document_supported`
 *   true (a WARNING otherwise);
 * - authorization-code-grant: a browser authorization request (PKCE S256, state, `resource`, no
 *   scope) to a loopback callback the CLI listens on, the response's code, state and RFC 9207 `iss`,
 *   the code exchanged at the token endpoint (JSON, `Cache-Control: no-store`, access_token, token_type).
 * Nothing targets a protected resource: `/.well-known/oauth-protected-resource` appears only in the
 * mock servers of its client scenarios (test/conformance/auth-wire-format.test.ts answers those as
 * the hub). The last test here fails when a version adds another kind of scenario.
 *
 * The interactive step is done as a person would: Debian's Chromium opens the URL the CLI prints,
 * signs in at the test IdP (oidc-provider), allows the hub's consent page, and lands on the CLI's
 * callback. The client is registered by DCR with the CLI's callback as its redirect URI.
 *
 * One way of running it that cannot pass, and why (the suite's fault, not the hub's): with
 * `--client-secret`, the suite still sends no client authentication whenever the metadata lists
 * `none` in `token_endpoint_auth_methods_supported` (its selectTokenAuthMethod: no secret, or `none`
 * listed → `none`). That list is what the AS supports for some clients (RFC 8414 §2); a confidential
 * client registered for client_secret_basic must authenticate at the token endpoint (RFC 6749 §3.2.1,
 * OAuth 2.1 draft 13 §3.2.1), so the hub answers 401 invalid_client and the check fails with
 * "Invalid status code: 401". The hub lists `none` because MCP clients are mostly public (PKCE).
 * The test asserts that exact failure and that the same client, authenticating, gets its token.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { authorize, pkce, register, tokenRequest } from '../helpers/authorize-flow.ts';
import { freePort } from '../helpers/hub.ts';
import { basic } from '../helpers/http.ts';
import { signIn, startRig, type Rig } from '../oidc/setup.ts';
import { RBAC_FIXTURE } from '../proxy/setup.ts';
import { CLI_NEXT, conformance, explain, listedScenarios, runSuite, tally, type SuiteRun } from './cli.ts';
import { startEverythingServer, type EverythingServer } from './everything-server.ts';

const SCENARIOS = ['authorization-code-grant', 'authorization-server-metadata-endpoint'];
const ALL_PASS = {
  'authorization-code-grant': { passed: 1, failed: 0, warnings: 0 },
  'authorization-server-metadata-endpoint': { passed: 2, failed: 0, warnings: 0 },
};

describe('MCP conformance suite 0.2.0-alpha.12: authorization server scenarios against the hub', () => {
  let upstream: EverythingServer;
  let rig: Rig;
  let browser: Browser;
  const issuer = () => rig.hub.config.jwt.issuer;
  const resource = () => `${rig.hub.url}/mcp`;

  before(async () => {
    upstream = await startEverythingServer();
    rig = await startRig({ corp: 'okta' }, { storage: 'memory', env: { MIMIR_UPSTREAM_URL: upstream.origin, MIMIR_RBAC_CONFIG: RBAC_FIXTURE } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
    await upstream?.close();
  });

  /** A client registered by DCR (RFC 7591) whose one redirect URI is the CLI's callback on `port`. */
  async function registerClient(name: string, port: number, authMethod: 'none' | 'client_secret_basic') {
    const r = await register(rig.hub, {
      client_name: name, redirect_uris: [`http://127.0.0.1:${port}/callback`], grant_types: ['authorization_code'],
      response_types: ['code'], token_endpoint_auth_method: authMethod,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.client_id as string, secret: r.body.client_secret as string | undefined };
  }

  /** In a fresh Chromium profile: the printed URL, the IdP's sign-in, the hub's consent (naming `client`), the CLI's callback page. */
  async function signInAndAllow(url: string, client: string): Promise<void> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      await page.waitForURL((u) => u.href.startsWith(rig.idps.corp!.origin)); // one provider: straight to the IdP
      await page.fill('input[name="login"]', 'jane');
      await page.fill('input[name="password"]', 'pw');
      await page.click('button[type="submit"]');
      await page.waitForSelector('[data-field="client-name"]');
      assert.equal(await page.textContent('[data-field="client-name"]'), client);
      await page.click('button[value="allow"]');
      await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
      assert.equal((await page.textContent('body'))?.trim(), 'OK. You can close this page.');
    } finally {
      await context.close();
    }
  }

  /**
   * `conformance authorization` (both scenarios, in the suite's order: the code grant reads the
   * metadata the first one found). Once it prints the authorization URL and its callback server
   * listens, `drive` plays the user; if that fails, the CLI is stopped and the error thrown.
   */
  async function runAuthorization(args: string[], drive: (authorizationUrl: string) => Promise<void>): Promise<SuiteRun & { authorizationUrl?: string }> {
    const abort = new AbortController();
    let authorizationUrl: string | undefined;
    let driving: Promise<void> | undefined;
    let failed: unknown;
    const run = await runSuite(['authorization', '--url', issuer(), ...args], 'authorization-server', {
      cli: CLI_NEXT, signal: abort.signal, timeoutMs: 60_000,
      onStdout: (out) => {
        const printed = new RegExp(`^(${rig.hub.url}/auth/authorize\\?\\S+)$`, 'm').exec(out);
        if (driving || !printed || !/^Callback server started: /m.test(out)) return;
        authorizationUrl = printed[1]!;
        driving = drive(authorizationUrl).catch((e: unknown) => { failed = e; abort.abort(); });
      },
    });
    await driving;
    if (failed) throw failed;
    return { ...run, authorizationUrl };
  }

  it('the suite has exactly these two authorization server scenarios (a new version must be read, not skipped)', async () => {
    assert.deepEqual(await listedScenarios(CLI_NEXT, '--authorization'), SCENARIOS);
  });

  it('a public client (DCR, PKCE, no secret) signed in and consenting in Chromium: every check of both scenarios passes', async () => {
    const port = await freePort();
    const client = await registerClient('conformance public client', port, 'none');
    const run = await runAuthorization(['--client-id', client.id, '--resource', resource(), '--port', String(port)], (url) => signInAndAllow(url, 'conformance public client'));
    assert.deepEqual(tally(run), ALL_PASS, explain(run));
    assert.equal(run.code, 0, run.stdout.slice(-2000));
    assert.match(run.stdout, /^Total: 3 passed, 0 failed$/m);

    const metadata = run.results.get('authorization-server-metadata-endpoint')!;
    assert.deepEqual(metadata.map((c) => [c.id, c.status]), [['authorization-server-metadata', 'SUCCESS'], ['authorization-server-metadata-cimd', 'SUCCESS']]);
    assert.equal((metadata[0]!.details as { body: { issuer: string } }).body.issuer, issuer());

    // What the suite asked and what came back, from its own record.
    const asked = new URL(run.authorizationUrl!);
    assert.equal(`${asked.origin}${asked.pathname}`, `${rig.hub.url}/auth/authorize`);
    assert.equal(asked.searchParams.get('client_id'), client.id);
    assert.equal(asked.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(asked.searchParams.get('resource'), resource());
    const grant = run.results.get('authorization-code-grant')![0]!.details as { authorizationResponseUrl: string; body: Record<string, unknown> };
    const back = new URL(grant.authorizationResponseUrl);
    assert.equal(back.searchParams.get('state'), asked.searchParams.get('state'));
    assert.equal(back.searchParams.get('iss'), issuer(), 'RFC 9207 iss, which the suite checks when present');
    assert.equal(grant.body.token_type, 'Bearer');
    assert.equal(grant.body.scope, 'mcp:*', 'no scope asked: everything the user may do, here a developer\'s mcp:*');
    assert.doesNotMatch(JSON.stringify(run.results.get('authorization-code-grant')), /eyJ[\w-]{20,}\.[\w-]{20,}/, 'the suite redacts the token');
  });

  it('the metadata scenario really compares the issuer: given the issuer with a trailing slash, it fails on exactly that', async () => {
    const run = await runSuite(['authorization', '--url', `${issuer()}/`, '--scenario', 'authorization-server-metadata-endpoint'], 'authorization-server', { cli: CLI_NEXT });
    const checks = run.results.get('authorization-server-metadata-endpoint')!;
    assert.deepEqual(checks.map((c) => [c.id, c.status, c.errorMessage]), [
      ['authorization-server-metadata', 'FAILURE', `Invalid issuer: ${issuer()}`],
      ['authorization-server-metadata-cimd', 'SUCCESS', undefined],
    ]);
    assert.equal(run.code, 1);
  });

  it('a confidential client (--client-secret): the suite sends no client authentication because `none` is listed, the hub refuses (401), and the same client authenticating gets its token', async () => {
    const port = await freePort();
    const client = await registerClient('conformance confidential client', port, 'client_secret_basic');
    assert.ok(client.secret);
    const run = await runAuthorization(['--client-id', client.id, '--client-secret', client.secret, '--resource', resource(), '--port', String(port)], (url) => signInAndAllow(url, 'conformance confidential client'));
    assert.deepEqual(tally(run), { ...ALL_PASS, 'authorization-code-grant': { passed: 0, failed: 1, warnings: 0 } }, explain(run));
    assert.equal(run.results.get('authorization-code-grant')![0]!.errorMessage, 'Invalid status code: 401');
    assert.equal(run.code, 1);

    // The hub is right: without authentication, invalid_client; with client_secret_basic, a token.
    const { session } = await signIn(rig, 'corp');
    const { verifier, challenge } = pkce();
    const params = { response_type: 'code', client_id: client.id, redirect_uri: `http://127.0.0.1:${port}/callback`, code_challenge: challenge, code_challenge_method: 'S256', state: 's', resource: resource() };
    const code = async () => new URL((await authorize(rig.hub, session!, params)).location!).searchParams.get('code')!;
    const exchange = { grant_type: 'authorization_code', redirect_uri: params.redirect_uri, code_verifier: verifier, resource: resource() };
    const unauthenticated = await tokenRequest(rig.hub, { ...exchange, code: await code(), client_id: client.id });
    assert.deepEqual([unauthenticated.status, unauthenticated.body.error], [401, 'invalid_client']);
    const authenticated = await tokenRequest(rig.hub, { ...exchange, code: await code() }, basic(client.id, client.secret));
    assert.equal(authenticated.status, 200, JSON.stringify(authenticated.body));
    assert.equal(authenticated.body.token_type, 'Bearer');
  });

  it('the CLI lists server, client and authorization server scenarios, nothing else (none for a protected resource)', async () => {
    const { stdout } = await conformance(['list'], { cli: CLI_NEXT });
    assert.deepEqual([...stdout.matchAll(/^(\S.*) scenarios \(test against an? ([^)]+)\):$/gm)].map((m) => m[2]), ['server', 'client', 'authorization server']);
  });
});
