/**
 * Attacker's review (after issue 19): signing out (or an administrator ending a session) reaches
 * the other grants of that sign-in — an MCP client's or the CLI's refresh-token family made
 * through /auth/authorize — only through a tombstone that lasts until the session would have
 * expired anyway (MIMIR_SESSION_ABSOLUTE_TIMEOUT, 12 h), and a `sid` revocation that lasts an
 * access-token lifetime. A refresh token lives 30 days: whoever holds a stolen one waits for
 * both to lapse, then mints tokens again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config/index.ts';
import { openHub, type Hub } from '../../src/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryStore } from '../../src/storage/memory.ts';
import { freePort } from '../helpers/hub.ts';
import { pkce } from '../helpers/authorize-flow.ts';

const HOUR = 3600_000;

describe('after sign-out, no grant made through that session mints tokens again, however long its holder waits', () => {
  let clock = Date.now();
  const now = () => clock;
  let hub: Hub;
  let app: FastifyInstance;
  let url: string;
  let dataDir: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mimir-attack-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = loadConfig({
      MIMIR_AUTH_PORT: String(port), MIMIR_PUBLIC_URL: url, MIMIR_DATA_DIR: dataDir, MIMIR_TOKEN_STORAGE: 'memory',
      MIMIR_SESSION_COOKIE_SECURE: 'false', MIMIR_LOG_LEVEL: 'silent', MIMIR_LOG_AUTH_EVENTS: 'false',
    }, { dotenv: false });
    hub = await openHub(config, { logger: createLogger('silent'), now, store: new MemoryStore({ now }) });
    app = await buildServer(hub);
    await app.listen({ port, host: '127.0.0.1' });
  });
  after(async () => {
    await app.close();
    await hub.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('an MCP client\'s refresh token from a signed-out session stays dead after the session\'s absolute timeout', async () => {
    // A signed-in user (the IdP hop itself is not what is attacked here).
    const { cookie } = await hub.sessions.create({ sub: 'jane', roles: ['developer'], groups: [], provider: 'corp' });
    const cookieHeader = `${hub.config.session.cookie.name}=${cookie}`;

    // An MCP client (public, registered by DCR) gets a refresh token through the session.
    const reg = await fetch(`${url}/auth/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'MCP', redirect_uris: ['http://127.0.0.1:7777/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] }),
    });
    const clientId = (await reg.json() as { client_id: string }).client_id;
    const { verifier, challenge } = pkce();
    const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: 'http://127.0.0.1:7777/cb', code_challenge: challenge, code_challenge_method: 'S256', resource: url });
    const page = await fetch(`${url}/auth/authorize?${q}`, { headers: { cookie: cookieHeader } });
    const pending = /name="request" value="([^"]+)"/.exec(await page.text())![1]!;
    const decided = await fetch(`${url}/auth/authorize/decision`, {
      method: 'POST', redirect: 'manual', headers: { cookie: cookieHeader, origin: url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ request: pending, decision: 'allow' }).toString(),
    });
    const code = new URL(decided.headers.get('location')!).searchParams.get('code')!;
    const token = async (body: Record<string, string>) => {
      const res = await fetch(`${url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
      return { status: res.status, body: await res.json() as Record<string, string> };
    };
    const issued = await token({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:7777/cb', code_verifier: verifier, client_id: clientId });
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const stolen = issued.body.refresh_token!;

    // The user signs out.
    const out = await fetch(`${url}/auth/logout`, { method: 'POST', headers: { cookie: cookieHeader, origin: url, accept: 'application/json' } });
    assert.equal(out.status, 200);
    assert.equal((await out.json() as { signed_out: boolean }).signed_out, true);

    // The thief waits out the session's absolute timeout (12 h) and the sign-out's `sid` revocation
    // (the longest access-token lifetime, 24 h) — well within the refresh token's 30 days — without
    // presenting the token meanwhile.
    clock += 25 * HOUR;
    const later = await token({ grant_type: 'refresh_token', refresh_token: stolen, client_id: clientId });
    if (later.status === 200) {
      const me = await fetch(`${url}/auth/me`, { headers: { authorization: `Bearer ${later.body.access_token}` } });
      assert.notEqual(me.status, 200, 'a token minted from a signed-out session\'s grant is accepted');
    }
    assert.notEqual(later.status, 200, 'the signed-out session\'s refresh token minted tokens again');
    assert.equal(later.body.error, 'invalid_grant');
  });
});
