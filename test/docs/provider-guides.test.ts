/**
 * Issue 21, item 4: the per-IdP guides under docs/providers/ say what the hub really does.
 *
 * Every ```env block of a guide is read by the hub's own configuration loader (as a `.env` file,
 * the way an operator would use it) and must yield the provider kind and claim settings the guide
 * is about. Then it is run: a real OpenID provider shaped like that kind (test/helpers/idp.ts) and
 * a real hub configured from the block, in which only the placeholders naming the outside world are
 * replaced — the IdP's issuer (and the hosts it is derived from), the hub's public URL, and the
 * paths of the files the block points at (written from the guide's own ```json rbac.json and
 * ```yaml providers.yaml blocks). Client ids and secrets are not replaced: the test IdP registers
 * the guide's own. Claim names, scopes, audiences and the RBAC mapping are taken as written.
 *
 * The guides' examples are checked the same way. After an env block:
 * - ```json id-token [provider]: the claims the IdP puts in the ID token of a user (its `sub` is
 *   the login); the user signs in through the hub (authorization code flow, by HTTP);
 * - ```json auth-me: what `GET /auth/me` then answers, at least (every key shown must match);
 * - ```json access-token [provider]: an access token's claims, signed by the IdP's key and
 *   presented as a bearer token; ```json auth-me-bearer: what /auth/me answers for it. For Google,
 *   whose access tokens are opaque, the bearer is a real access token from the test IdP's token
 *   endpoint, checked by the hub through tokeninfo and userinfo.
 * The n-th id-token (access-token) block goes with the n-th auth-me (auth-me-bearer) block.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { loadProviders, type ProviderSettings } from '../../src/oidc/providers.ts';
import { parseRbac } from '../../src/rbac/policy.ts';
import { freePort, startHub, type TestHub } from '../helpers/hub.ts';
import { startIdp, type IdpKind, type TestIdp } from '../helpers/idp.ts';
import { callback, cookieFrom, me, sessionCookie, startLogin } from '../oidc/setup.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** Guide file → the provider kind it is about and what its env block must yield. */
const GUIDES: Record<string, { kind: IdpKind; expect: (p: ProviderSettings, c: Config) => void }> = {
  okta: {
    kind: 'okta',
    expect: (p) => {
      // A custom authorization server: JWT access tokens with the AS's audience, groups requested.
      assert.match(p.issuer, /^https:\/\/[^/]+\/oauth2\/default$/);
      assert.equal(p.audience, 'api://default');
      assert.equal(p.opaqueTokens, 'off');
      assert.ok(p.scope.split(' ').includes('groups'), 'the groups scope is requested');
    },
  },
  auth0: {
    kind: 'auth0',
    expect: (p) => {
      assert.match(p.issuer, /^https:\/\/[^/]+\/$/, 'the issuer keeps its trailing slash');
      assert.ok(p.audience, 'an audience (the API identifier) is configured');
      assert.deepEqual(p.authorizationParams, { audience: p.audience }, 'the audience is sent at sign-in');
    },
  },
  'azure-ad': {
    kind: 'azure',
    expect: (p) => {
      assert.match(p.issuer, /^https:\/\/login\.microsoftonline\.com\/[0-9a-f-]{36}\/v2\.0$/, 'a single tenant\'s v2.0 issuer');
      assert.equal(p.issuerTemplate, undefined);
      assert.deepEqual(p.authorizationParams, {}, 'no resource (or other extra) parameter is sent to the v2.0 endpoint');
      assert.equal(p.audience, p.clientId, 'v2.0 access tokens for the hub\'s own API carry its client id as aud');
    },
  },
  google: {
    kind: 'google',
    expect: (p) => {
      assert.equal(p.issuer, 'https://accounts.google.com');
      assert.ok(p.hostedDomain, 'sign-in is restricted to a Workspace domain (hd)');
      assert.equal(p.opaqueTokens, 'userinfo', 'opaque access tokens are checked through tokeninfo and userinfo');
    },
  },
  keycloak: {
    kind: 'keycloak',
    expect: (p, c) => {
      assert.equal(p.issuer, `${c.provider.keycloak.serverUrl}/realms/${c.provider.keycloak.realm}`);
      assert.ok(p.audience, 'an audience is configured for bearer tokens');
    },
  },
  cognito: {
    kind: 'cognito',
    expect: (p) => {
      assert.match(p.issuer, /^https:\/\/cognito-idp\.[a-z0-9-]+\.amazonaws\.com\/[a-z0-9-]+_[A-Za-z0-9]+$/);
      assert.equal(p.audience, undefined, 'access tokens are matched by client_id against the app client id');
    },
  },
  generic: {
    kind: 'generic',
    expect: (p) => {
      // An Authentik-shaped issuer: its trailing slash is part of it and must survive the loader.
      assert.match(p.issuer, /^https:\/\/.+\/$/);
      assert.equal(p.opaqueTokens, 'off');
    },
  },
};

interface Block {
  lang: string;
  tags: string[];
  text: string;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  for (const m of markdown.matchAll(/^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm)) {
    const [lang = '', ...tags] = m[1]!.trim().split(/\s+/);
    out.push({ lang, tags, text: m[2]! });
  }
  return out;
}

/** An env block and the examples that follow it (up to the next env block). */
interface Scenario {
  env: string;
  idTokens: Array<{ provider: string | undefined; claims: Record<string, unknown> }>;
  sessions: Array<Record<string, unknown>>;
  accessTokens: Array<{ provider: string | undefined; claims: Record<string, unknown> }>;
  bearers: Array<Record<string, unknown>>;
}

/** A block of variable assignments: ```env, or ```sh/```bash holding nothing but KEY=value lines. */
function isEnv(b: Block): boolean {
  if (b.lang === 'env') return true;
  if (!['sh', 'bash', 'shell', 'dotenv'].includes(b.lang)) return false;
  const lines = b.text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return lines.length > 0 && lines.every((l) => /^MIMIR_[A-Z0-9_]+=/.test(l));
}

function scenarios(all: Block[]): Scenario[] {
  const out: Scenario[] = [];
  for (const b of all) {
    if (isEnv(b)) {
      out.push({ env: b.text, idTokens: [], sessions: [], accessTokens: [], bearers: [] });
      continue;
    }
    const s = out.at(-1);
    if (b.lang !== 'json' || !s) continue;
    const [tag, provider] = b.tags;
    if (tag === 'id-token') s.idTokens.push({ provider, claims: JSON.parse(b.text) });
    if (tag === 'auth-me') s.sessions.push(JSON.parse(b.text));
    if (tag === 'access-token') s.accessTokens.push({ provider, claims: JSON.parse(b.text) });
    if (tag === 'auth-me-bearer') s.bearers.push(JSON.parse(b.text));
  }
  return out;
}

function only(all: Block[], lang: string, tag: string): string | undefined {
  const found = all.filter((b) => b.lang === lang && b.tags[0] === tag);
  assert.ok(found.length <= 1, `at most one \`\`\`${lang} ${tag} block`);
  return found[0]?.text;
}

/** The block as a `.env` file in a fresh directory, read by loadConfig as the hub reads one. */
function configFromDotenv(env: string): Config {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-guide-'));
  try {
    writeFileSync(join(dir, '.env'), env);
    return loadConfig({}, { cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every key of `expected` has the same value in `actual` (objects: recursively, arrays: exactly). */
function assertShows(actual: unknown, expected: unknown, where: string): void {
  if (expected && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(actual && typeof actual === 'object', `${where}: an object`);
    for (const [k, v] of Object.entries(expected)) assertShows((actual as Record<string, unknown>)[k], v, `${where}.${k}`);
    return;
  }
  assert.deepEqual(actual, expected, where);
}

/** Claims the IdP itself sets (or that describe a token rather than a user): not the user's. */
const PROTOCOL = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'azp', 'at_hash', 'c_hash', 'auth_time', 'jti', 'sid', 'ver', 'sub']);
/** Role-bearing claims the test IdP sends by default: absent from a guide's example, absent from the token. */
const ROLE_CLAIMS = ['groups', 'roles', 'realm_access', 'resource_access', 'cognito:groups', 'https://mimir.example.com/roles',
  '_claim_names', '_claim_sources', 'hasgroups', 'hd'];

function userClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.fromEntries(ROLE_CLAIMS.map((k) => [k, undefined]));
  for (const [k, v] of Object.entries(claims)) if (!PROTOCOL.has(k)) out[k] = v;
  return out;
}

function loginOf(claims: Record<string, unknown>): string {
  assert.equal(typeof claims.sub, 'string', 'an example token names its user (sub)');
  return claims.sub as string;
}

/** Where the guide's issuer is replaced by the running IdP's (the issuer itself, its origin, its bare host). */
function outsideWorld(guideIssuer: string, idp: TestIdp): (value: string) => string {
  const u = new URL(guideIssuer);
  return (value) => {
    if (value === guideIssuer || value === guideIssuer.replace(/\/$/, '')) return idp.issuer;
    if (value === u.host) return idp.origin;
    return value.split(u.origin).join(idp.origin);
  };
}

interface Running {
  hub: TestHub;
  idps: Record<string, TestIdp>;
  providers: ProviderSettings[];
  close(): Promise<void>;
}

/** Starts one test IdP per provider the block configures and a hub configured from the block. */
async function run(env: Record<string, string>, files: { rbac: string | undefined; providers: string | undefined }, scenario: Scenario): Promise<Running> {
  const guideConfig = loadConfig(env, { dotenv: false });
  const dir = mkdtempSync(join(tmpdir(), 'mimir-guide-run-'));
  const yamlPath = join(dir, 'providers.yaml');
  if (guideConfig.provider.providersFile) {
    assert.ok(files.providers, 'MIMIR_AUTH_PROVIDERS_FILE is set: the guide shows the file (```yaml providers.yaml)');
    writeFileSync(yamlPath, files.providers);
  }
  const guideProviders = loadProviders(guideConfig, (path) => (path === guideConfig.provider.providersFile ? files.providers! : readFileSync(path, 'utf8')));
  const port = await freePort();
  const hubUrl = `http://127.0.0.1:${port}`;
  const idps: Record<string, TestIdp> = {};
  const substitutions: Array<(v: string) => string> = [];
  const close = async () => {
    for (const idp of Object.values(idps)) await idp.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const p of guideProviders) {
      const users: Record<string, Record<string, unknown>> = {};
      for (const t of scenario.idTokens.filter((x) => (x.provider ?? p.id) === p.id)) users[loginOf(t.claims)] = userClaims(t.claims);
      idps[p.id] = await startIdp({
        kind: p.kind, clientId: p.clientId, clientSecret: p.clientSecret ?? 'no-secret-configured',
        redirectUris: [p.redirectUri.replace(guideConfig.publicUrl, hubUrl)], postLogoutRedirectUris: [`${hubUrl}/auth/login`], users,
        ...(p.kind === 'azure' ? { tenantId: /\/([0-9a-f-]{36})\/v2\.0$/.exec(p.issuer)![1]! } : {}),
        ...(p.kind === 'keycloak' ? { realm: /\/realms\/([^/]+)$/.exec(p.issuer)![1]! } : {}),
      });
      substitutions.push(outsideWorld(p.issuer, idps[p.id]!));
    }
    const outside = (v: string) => substitutions.reduce((acc, f) => f(acc), v);
    if (files.providers !== undefined && guideConfig.provider.providersFile) {
      const doc = parseYaml(files.providers) as { providers: Array<Record<string, unknown>> };
      for (const entry of doc.providers) {
        for (const key of ['issuer', 'oktaDomain', 'auth0Domain', 'keycloakServerUrl']) if (typeof entry[key] === 'string') entry[key] = outside(entry[key] as string);
      }
      writeFileSync(yamlPath, JSON.stringify(doc));
    }
    const substituted: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) {
      if (k === 'MIMIR_PUBLIC_URL') substituted[k] = hubUrl;
      else if (k === 'MIMIR_RBAC_CONFIG') {
        assert.ok(files.rbac, 'MIMIR_RBAC_CONFIG is set: the guide shows the file (```json rbac.json)');
        writeFileSync(join(dir, 'rbac.json'), files.rbac);
        substituted[k] = join(dir, 'rbac.json');
      } else if (k === 'MIMIR_AUTH_PROVIDERS_FILE') substituted[k] = yamlPath;
      else substituted[k] = outside(v);
    }
    const hub = await startHub({ storage: 'memory', env: { ...substituted, MIMIR_AUTH_PORT: String(port) } });
    return {
      hub, idps, providers: guideProviders,
      async close() {
        await hub.close();
        await close();
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}

async function signInAs(r: Running, provider: string, login: string): Promise<Record<string, unknown>> {
  const started = await startLogin(r.hub, provider);
  const back = await r.idps[provider]!.loginByHttp(started.authorizationUrl, login);
  const res = await callback(r.hub, back, started.binding);
  assert.equal(res.status, 200, `sign-in of ${login} through ${provider}: ${res.status} ${await res.clone().text()}`);
  const session = cookieFrom(res, r.hub.config.session.cookie.name);
  assert.ok(session, 'a session cookie');
  const { status, body } = await me(r.hub, { cookie: sessionCookie(r.hub, session) });
  assert.equal(status, 200);
  return body;
}

for (const [file, guide] of Object.entries(GUIDES)) {
  const path = `docs/providers/${file}.md`;
  describe(path, () => {
    let markdown: string;
    try {
      markdown = read(path);
    } catch {
      it('exists', () => assert.fail(`${path} is missing`));
      return;
    }
    const all = blocks(markdown);
    const rbac = only(all, 'json', 'rbac.json');
    const providersYaml = only(all, 'yaml', 'providers.yaml');
    const found = scenarios(all);

    it('has at least one env block, and every rbac.json it shows is one the hub loads', () => {
      assert.ok(found.length >= 1, 'an ```env block');
      if (rbac !== undefined) parseRbac(rbac, () => '');
    });

    it('has a Quirks section and cites the provider\'s documentation under Sources', () => {
      assert.match(markdown, /^##+ .*Quirks/m);
      const sources = markdown.split(/^## Sources/m)[1];
      assert.ok(sources, 'a "## Sources" section');
      assert.match(sources, /https:\/\/\S+/);
    });

    found.forEach((scenario, i) => {
      describe(`env block ${i + 1}`, () => {
        const env = parseEnv(scenario.env) as Record<string, string>;

        it(`parses with loadConfig and yields ${guide.kind} provider settings the guide describes`, () => {
          const config = configFromDotenv(scenario.env);
          const providers = loadProviders(config, (p) => (p === config.provider.providersFile ? providersYaml ?? '' : readFileSync(p, 'utf8')));
          assert.ok(providers.length >= 1);
          for (const p of providers) {
            assert.ok(markdown.includes(p.redirectUri), `the guide names the redirect URI ${p.redirectUri}`);
            assert.equal(p.redirectUri, `${config.publicUrl}/auth/callback`);
          }
          if (config.provider.kind) {
            assert.equal(config.provider.kind, guide.kind);
            guide.expect(providers[0]!, config);
          } else {
            assert.ok(providers.some((p) => p.kind === guide.kind), `the providers file configures a ${guide.kind} provider`);
          }
          for (const t of [...scenario.idTokens, ...scenario.accessTokens]) {
            const p = providers.find((x) => x.id === (t.provider ?? providers[0]!.id));
            assert.ok(p, `an example names a configured provider (${t.provider})`);
            if (t.claims.iss !== undefined) assert.equal(t.claims.iss, p.issuer, 'the example token\'s iss is the configured issuer');
          }
          for (const t of scenario.idTokens) {
            const p = providers.find((x) => x.id === (t.provider ?? providers[0]!.id))!;
            if (t.claims.aud !== undefined) assert.equal(t.claims.aud, p.clientId, 'the example ID token is for the configured client');
          }
        });

        it('run against a test IdP of that kind, its example users end with the roles the guide says', async () => {
          assert.ok(scenario.idTokens.length >= 1 && scenario.idTokens.length === scenario.sessions.length,
            'each example ID token (```json id-token) is followed by what /auth/me answers (```json auth-me)');
          assert.equal(scenario.accessTokens.length, guide.kind === 'google' ? 0 : scenario.bearers.length);
          const r = await run(env, { rbac, providers: providersYaml }, scenario);
          try {
            for (const [n, t] of scenario.idTokens.entries()) {
              const provider = t.provider ?? r.providers[0]!.id;
              const body = await signInAs(r, provider, loginOf(t.claims));
              assertShows(body, scenario.sessions[n], `/auth/me after signing in as ${loginOf(t.claims)}`);
            }
            for (const [n, expected] of scenario.bearers.entries()) {
              const example = scenario.accessTokens[n];
              const provider = example?.provider ?? r.providers[0]!.id;
              const idp = r.idps[provider]!;
              // Google: a real (opaque) access token of the first example user, from the IdP's token endpoint.
              const token = example
                ? await idp.sign({ ...example.claims, iss: idp.issuer })
                : (await idp.userTokens(loginOf(scenario.idTokens[0]!.claims))).access_token;
              const { status, body } = await me(r.hub, { authorization: `Bearer ${token}` });
              assert.equal(status, 200, `bearer ${n + 1}: ${JSON.stringify(body)}`);
              assertShows(body, expected, `/auth/me with bearer token ${n + 1}`);
            }
          } finally {
            await r.close();
          }
        });
      });
    });
  });
}

describe('generic.md: the issuer is used exactly as written', () => {
  it('an issuer ending in "/" (as Authentik\'s do) set in MIMIR_OAUTH_ISSUER signs users in and accepts its bearer tokens', async () => {
    const port = await freePort();
    // The auth0-shaped test IdP publishes the issuer `${origin}/`: a generic provider with a trailing slash.
    const idp = await startIdp({ kind: 'auth0', redirectUris: [`http://127.0.0.1:${port}/auth/callback`], users: { jane: { roles: ['developer'] } } });
    let hub: TestHub | undefined;
    try {
      assert.ok(idp.issuer.endsWith('/'));
      hub = await startHub({
        storage: 'memory',
        env: {
          MIMIR_AUTH_PORT: String(port), MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_ISSUER: idp.issuer,
          MIMIR_OAUTH_CLIENT_ID: idp.clientId, MIMIR_OAUTH_CLIENT_SECRET: idp.clientSecret, MIMIR_OAUTH_AUDIENCE: 'mimir-api',
        },
      });
      assert.equal(hub.config.provider.issuer, idp.issuer);
      const r: Running = { hub, idps: { generic: idp }, providers: [], close: async () => {} };
      assert.deepEqual((await signInAs(r, 'generic', 'jane')).roles, ['developer']);
      const token = await idp.sign({ sub: 'max', aud: 'mimir-api', roles: ['analyst'] });
      const { status, body } = await me(hub, { authorization: `Bearer ${token}` });
      assert.equal(status, 200, JSON.stringify(body));
      assert.deepEqual(body.roles, ['analyst']);
    } finally {
      await hub?.close();
      await idp.close();
    }
  });
});

describe('README', () => {
  it('links every provider guide', () => {
    const readme = read('README.md');
    for (const file of Object.keys(GUIDES)) assert.ok(readme.includes(`(docs/providers/${file}.md)`), `README links docs/providers/${file}.md`);
  });
});
