/**
 * Issue 21, "sign-in that shows who you are": after a standard OIDC sign-in the account page
 * showed Name —, Email —, Roles (none), because the hub never asked the userinfo endpoint for
 * what a conformant IdP leaves out of the ID token (OIDC Core §5.4), and the default scope did
 * not ask for the kind's group claim. Real OpenID providers (oidc-provider) on loopback.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWTPayload } from 'jose';
import { loadConfig } from '../../src/config/index.ts';
import { loadProviders, signInScope } from '../../src/oidc/providers.ts';
import { freePort } from '../helpers/hub.ts';
import { sessionCookie, signIn, startLogin, startRig, type Rig } from './setup.ts';

/** The hub's operational log, line by line (pino JSON). */
function logCapture() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } } };
}

/** The text of `data-field="…"` on a page (first match, entities decoded). */
function field(html: string, name: string): string | undefined {
  const m = new RegExp(`data-field="${name}"[^>]*>([^<]*)<`).exec(html);
  return m?.[1]?.replace(/&#(\d+);/g, (_s, c: string) => String.fromCharCode(Number(c)));
}

async function accountPage(rig: Rig, session: string): Promise<string> {
  const res = await fetch(`${rig.hub.url}/auth/account`, { headers: { cookie: sessionCookie(rig.hub, session) } });
  assert.equal(res.status, 200);
  return res.text();
}

describe('sign-in completes the ID token from userinfo (OIDC Core §5.3)', () => {
  let rig: Rig;
  let liar: Server;
  const log = logCapture();
  before(async () => {
    // A loopback server answering userinfo for someone else (an IdP misrouting answers).
    liar = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ sub: 'mallory', name: 'Mallory', email: 'mallory@example.com', email_verified: true, roles: ['admin'] }));
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', () => resolve()));
    const liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}/userinfo`;
    const closedPort = await freePort();
    rig = await startRig({ conformant: 'generic', bare: 'generic', full: 'generic', down: 'generic', liar: 'generic' }, {
      storage: 'memory',
      logDestination: log.stream,
      env: { MIMIR_LOG_LEVEL: 'info' },
      idpById: {
        conformant: { conformIdTokenClaims: true },
        bare: { conformIdTokenClaims: true, userinfo: false },
        down: { conformIdTokenClaims: true },
        liar: { conformIdTokenClaims: true },
      },
      settings: {
        down: { endpoints: { userinfo: `http://127.0.0.1:${closedPort}/userinfo` } },
        liar: { endpoints: { userinfo: liarUrl } },
      },
    });
  });
  after(async () => {
    await rig?.close();
    liar?.close();
  });

  it('an ID token without name and email: the account page shows them, read from userinfo', async () => {
    const idp = rig.idps.conformant!;
    let idTokenClaims: JWTPayload | undefined;
    idp.tamperIdToken((claims) => { idTokenClaims = claims; return claims; });
    const before = idp.requests('/me');
    const { res, session } = await signIn(rig, 'conformant', { login: 'jane' });
    idp.tamperIdToken(undefined);
    assert.equal(res.status, 200);
    assert.ok(session);
    // The IdP really left them out of the ID token (its `openid` scope claims, roles among them, stay in).
    assert.ok(idTokenClaims);
    for (const claim of ['name', 'email', 'email_verified']) assert.equal(idTokenClaims[claim], undefined, `the ID token carries ${claim}`);
    assert.equal(idp.requests('/me'), before + 1, 'userinfo was asked once');

    const html = await accountPage(rig, session);
    assert.equal(field(html, 'name'), 'jane Doe');
    assert.equal(field(html, 'email'), 'jane@example.com');
    assert.equal(field(html, 'roles'), 'developer');
    const me = await fetch(`${rig.hub.url}/auth/me`, { headers: { cookie: sessionCookie(rig.hub, session) } });
    const body = await me.json() as Record<string, unknown>;
    assert.equal(body.email, 'jane@example.com');
    assert.deepEqual(body.roles, ['developer']);
  });

  it('an ID token that has everything: userinfo is not asked', async () => {
    const idp = rig.idps.full!;
    const before = idp.requests('/me');
    const { res, session } = await signIn(rig, 'full', { login: 'kim' });
    assert.equal(res.status, 200);
    assert.equal(field(await accountPage(rig, session!), 'name'), 'kim Doe');
    assert.equal(idp.requests('/me'), before, 'userinfo was asked for nothing');
  });

  it('a provider without a userinfo endpoint still signs in, with what the ID token has', async () => {
    const idp = rig.idps.bare!;
    const discovery = await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
    assert.equal(discovery.userinfo_endpoint, undefined, 'the IdP publishes no userinfo endpoint');
    // Its ID token has the subject and nothing about the person.
    idp.tamperIdToken(({ name: _n, email: _e, email_verified: _v, roles: _r, groups: _g, ...rest }) => rest);
    const { res, session } = await signIn(rig, 'bare', { login: 'lee' });
    idp.tamperIdToken(undefined);
    assert.equal(res.status, 200);
    assert.ok(session, 'signed in');
    const html = await accountPage(rig, session);
    assert.equal(field(html, 'user-id'), 'lee');
    assert.equal(field(html, 'name'), '—');
    assert.equal(field(html, 'roles'), 'viewer (default role)');
  });

  it('userinfo unreachable: the sign-in goes on with the ID token and a warning without any token is logged', async () => {
    const from = log.lines.length;
    const { res, session } = await signIn(rig, 'down', { login: 'max' });
    assert.equal(res.status, 200);
    assert.ok(session, 'signed in');
    assert.equal(field(await accountPage(rig, session), 'user-id'), 'max');
    const warnings = log.lines.slice(from).filter((l) => l.level === 40 && /userinfo/.test(String(l.msg)));
    assert.equal(warnings.length, 1, 'one warning');
    assert.equal(warnings[0]!.provider, 'down');
    assert.ok(typeof warnings[0]!.reqId === 'string', 'with the request id');
    // No token of any kind: nothing long and base64url-shaped.
    assert.doesNotMatch(JSON.stringify(warnings[0]), /[A-Za-z0-9_-]{40,}/);
  });

  it('a userinfo answer about another subject is not used (OIDC Core §5.3.2)', async () => {
    const from = log.lines.length;
    const { res, session } = await signIn(rig, 'liar', { login: 'nora' });
    assert.equal(res.status, 200);
    const html = await accountPage(rig, session!);
    assert.equal(field(html, 'user-id'), 'nora');
    assert.equal(field(html, 'name'), '—', 'not Mallory');
    assert.equal(field(html, 'email'), '—');
    assert.doesNotMatch(field(html, 'roles') ?? '', /admin/);
    assert.ok(log.lines.slice(from).some((l) => l.level === 40 && /userinfo/.test(String(l.msg))), 'the refusal is logged');
  });
});

describe('the role/group scope of the provider kind is asked for by default', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ okta: 'okta', generic: 'generic', fixed: 'okta' }, {
      storage: 'memory',
      settings: { fixed: { scope: 'openid email' } },
    });
  });
  after(async () => { await rig?.close(); });

  const scopeOf = async (provider: string) => new URL((await startLogin(rig.hub, provider)).authorizationUrl).searchParams.get('scope');

  it('okta: groups, which the IdP lists in scopes_supported', async () => {
    assert.equal(await scopeOf('okta'), 'openid profile email groups');
  });

  it('generic: roles and groups, which the IdP lists', async () => {
    assert.equal(await scopeOf('generic'), 'openid profile email roles groups');
  });

  it('a configured scope is asked for as it is', async () => {
    assert.equal(await scopeOf('fixed'), 'openid email');
    const config = loadConfig({ MIMIR_AUTH_PROVIDER: 'okta', MIMIR_OAUTH_ISSUER: 'https://example.okta.com/oauth2/default', MIMIR_OAUTH_CLIENT_ID: 'c', MIMIR_OAUTH_SCOPE: 'openid profile' }, { dotenv: false });
    const [okta] = loadProviders(config);
    assert.equal(signInScope(okta!, ['openid', 'profile', 'email', 'groups']), 'openid profile');
  });

  it('a role scope the IdP does not list is not asked for (an IdP refuses a scope it does not know)', () => {
    const config = loadConfig({ MIMIR_AUTH_PROVIDER: 'okta', MIMIR_OAUTH_ISSUER: 'https://example.okta.com/oauth2/default', MIMIR_OAUTH_CLIENT_ID: 'c' }, { dotenv: false });
    const [okta] = loadProviders(config);
    assert.equal(signInScope(okta!, ['openid', 'profile', 'email', 'groups']), 'openid profile email groups');
    assert.equal(signInScope(okta!, ['openid', 'profile', 'email']), 'openid profile email');
    assert.equal(signInScope(okta!, undefined), 'openid profile email');
  });

  it('the okta groups the sign-in asked for become roles on the account page', async () => {
    const { session } = await signIn(rig, 'okta', { login: 'olga' });
    const res = await fetch(`${rig.hub.url}/auth/account`, { headers: { cookie: sessionCookie(rig.hub, session!) } });
    assert.match(field(await res.text(), 'roles') ?? '', /developer/);
  });
});
