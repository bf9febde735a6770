/**
 * Attacker's review (after issue 19): `POST /auth/admin/revocations` with `type: session` is
 * documented to revoke "a sign-in session or refresh family (by sid)". Given a refresh family's id
 * (the `fid` of its access tokens, the `family` of its audit events), it only lists the id in the
 * revocation list for the longest access-token lifetime: the family itself is never revoked, so
 * its refresh token keeps minting tokens, which work again once that entry lapses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { loadConfig } from '../../src/config/index.ts';
import { openHub, type Hub } from '../../src/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/logger.ts';
import { MemoryStore } from '../../src/storage/memory.ts';
import { freePort } from '../helpers/hub.ts';
import { pkce } from '../helpers/authorize-flow.ts';

const HOUR = 3600_000;

describe('an administrator\'s revocation of a refresh family by id holds for the family\'s whole life', () => {
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

  const token = async (body: Record<string, string>) => {
    const res = await fetch(`${url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
    return { status: res.status, body: await res.json() as Record<string, string> };
  };

  it('the revoked family\'s refresh token mints no working token a day later', async () => {
    const { cookie } = await hub.sessions.create({ sub: 'jane', roles: ['developer'], groups: [], provider: 'corp' });
    const cookieHeader = `${hub.config.session.cookie.name}=${cookie}`;
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
    const issued = await token({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:7777/cb', code_verifier: verifier, client_id: clientId });
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const family = decodeJwt(issued.body.access_token!).fid as string;
    assert.ok(family, 'the access token names its family');

    // The refresh token leaked; the administrator revokes its family by id.
    const admin = (await hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
    const revoked = await fetch(`${url}/auth/admin/revocations`, {
      method: 'POST', headers: { 'x-api-key': admin, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'session', id: family }),
    });
    assert.equal(revoked.status, 200);

    // The thief waits out the revocation entry (the longest access-token lifetime, 24 h), far
    // inside the refresh token's 30 days.
    clock += 25 * HOUR;
    const later = await token({ grant_type: 'refresh_token', refresh_token: issued.body.refresh_token!, client_id: clientId });
    if (later.status === 200) {
      const me = await fetch(`${url}/auth/me`, { headers: { authorization: `Bearer ${later.body.access_token}` } });
      assert.notEqual(me.status, 200, 'a token minted from the revoked family is accepted');
    }
    assert.equal(later.status, 400, 'the revoked family\'s refresh token still refreshes');
    assert.equal(later.body.error, 'invalid_grant');
  });
});
