/**
 * Fuzzing the configuration files the hub reads: the providers file (JSON or YAML,
 * `loadProviders`) and the RBAC file (Mimir's rbac.json, `parseRbac`, also fetched from a URL by
 * `loadRbac`), from valid documents with members replaced, dropped or added, mutated text, and any
 * JSON. A bad file must stop the start with the documented error naming the variable, never with
 * a TypeError; a file that loads must be usable (permissions, routes).
 *
 *   node --test test/fuzz/config-files.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/config-files.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…             replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { loadProviders } from '../../src/oidc/providers.ts';
import { DEFAULT_RBAC, loadRbac, parseRbac, Rbac, allows } from '../../src/rbac/policy.ts';
import { DEFAULT_ROUTES, routePermission } from '../../src/rbac/routes.ts';
import { anyString, applyEdits, assertThrownIs, bounded, describeThrown, edits, fuzz, hostile, jsonValue, UNIT_RUNS } from './support.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const URLS = ['https://idp.example', 'http://127.0.0.1:8080/realms/x', 'http://idp.example', 'https://', 'idp.example', 'https://idp.example/{tenantid}/v2.0',
  'https://login.microsoftonline.com/organizations/v2.0', 'http://localhost', 'file:///etc/passwd'];

/** Role and group names in mappings; Object.prototype names included (item B of issue 15). */
const name = fc.oneof(fc.constantFrom('admin', 'developer', 'viewer', 'Everyone', '*', '', 'a.b', 'constructor', '__proto__', 'toString'), anyString(12));

/** Hostile values per member of a providers-file entry. */
const MEMBERS: Record<string, fc.Arbitrary<unknown>> = {
  id: fc.oneof(hostile(['okta', 'a-b_c', 'UPPER', '', 'x'.repeat(63)]), jsonValue(1)),
  kind: fc.oneof(hostile(['okta', 'auth0', 'azure', 'google', 'keycloak', 'cognito', 'generic', 'github']), jsonValue(1)),
  name: fc.oneof(anyString(), jsonValue(1)),
  issuer: fc.oneof(hostile(URLS), jsonValue(1)),
  clientId: fc.oneof(anyString(), jsonValue(1)),
  clientSecret: fc.oneof(anyString(), jsonValue(1)),
  redirectUri: hostile(URLS),
  scope: anyString(),
  audience: fc.oneof(anyString(), jsonValue(1)),
  endpoints: fc.oneof(fc.dictionary(fc.constantFrom('authorization', 'token', 'jwks', 'userinfo', 'revocation', 'introspection', 'endSession', 'x'), fc.oneof(hostile(URLS), jsonValue(1)), { maxKeys: 3, noNullPrototype: true }), jsonValue(1)),
  oktaDomain: hostile(['example.okta.com', 'https://example.okta.com/', 'http://']),
  authorizationServer: anyString(),
  auth0Domain: hostile(['tenant.auth0.com', 'https://tenant.auth0.com']),
  tenantId: hostile([TENANT, 'organizations', 'common']),
  tenant: hostile([TENANT]),
  allowedTenants: fc.oneof(fc.array(hostile([TENANT]), { maxLength: 2 }), jsonValue(1)),
  hostedDomain: anyString(),
  keycloakServerUrl: hostile(URLS),
  realm: anyString(),
  rolesClaim: fc.oneof(hostile(['realm_access.roles', 'a..b', '.', '']), jsonValue(1)),
  roleMappings: fc.oneof(fc.dictionary(name, fc.oneof(name, fc.array(name, { maxLength: 3 })), { maxKeys: 3, noNullPrototype: true }), jsonValue(1)),
  groupsToRoles: fc.oneof(fc.dictionary(name, fc.oneof(name, fc.array(name, { maxLength: 3 })), { maxKeys: 3, noNullPrototype: true }), jsonValue(1)),
  opaqueTokens: fc.oneof(hostile(['introspection', 'userinfo', 'off']), jsonValue(1)),
  jwksCooldownSeconds: fc.oneof(fc.integer({ min: -10, max: 4000 }), fc.double(), jsonValue(1)),
  extra: jsonValue(1),
};

/** One valid entry per kind. */
const ENTRIES: Array<Record<string, unknown>> = [
  { id: 'okta', kind: 'okta', oktaDomain: 'example.okta.com', authorizationServer: 'default', clientId: 'c' },
  { id: 'a0', kind: 'auth0', auth0Domain: 'tenant.auth0.com', clientId: 'c', audience: 'api://mimir' },
  { id: 'az', kind: 'azure', tenantId: TENANT, clientId: 'c', allowedTenants: [TENANT] },
  { id: 'azm', kind: 'azure', tenantId: 'organizations', clientId: 'c' },
  { id: 'goo', kind: 'google', clientId: 'c', hostedDomain: 'example.com' },
  { id: 'kc', kind: 'keycloak', keycloakServerUrl: 'https://kc.example/', realm: 'mimir', clientId: 'c' },
  { id: 'cog', kind: 'cognito', issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X', clientId: 'c' },
  {
    id: 'gen', kind: 'generic', issuer: 'https://idp.example', clientId: 'c', endpoints: { token: 'https://idp.example/token' },
    roleMappings: { Admins: 'admin', devs: ['developer', 'analyst'] }, groupsToRoles: { ops: 'admin' }, rolesClaim: 'app.roles', opaqueTokens: 'introspection', jwksCooldownSeconds: 10,
  },
];

/** Up to three members of a document replaced by hostile values, removed (null) or added. */
function changed(doc: fc.Arbitrary<Record<string, unknown>>, members: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const change = fc.constantFrom(...Object.keys(members)).chain((key) => fc.option(members[key]!, { freq: 4 }).map((v) => [key, v] as const));
  return fc.tuple(doc, fc.array(change, { maxLength: 3 })).map(([d, list]) => {
    const out = { ...d };
    for (const [k, v] of list) if (v === null) delete out[k]; else out[k] = v;
    return out;
  });
}

const providersDoc: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.array(changed(fc.constantFrom(...ENTRIES), MEMBERS), { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([entries, bare]) => (bare ? entries : { providers: entries })) },
  { weight: 1, arbitrary: jsonValue(3) },
);

/** The file's text: JSON or YAML of the document, mutated now and then, or YAML's own hazards. */
const providersFile = fc.tuple(fc.boolean(), providersDoc, fc.option(edits, { freq: 4 })).map(([yaml, doc, mutation]) => {
  const text = yaml ? toYaml(doc) : JSON.stringify(doc);
  return { yaml, text: mutation ? applyEdits(text, mutation) : text };
});
const YAML_HAZARDS = [
  'a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nproviders: []\n',
  'providers: !!binary aGVsbG8=\n', 'providers:\n  - !!set {a, b}\n', '? [a, b]\n: c\n', 'providers:\n  - <<: {id: x}\n    kind: generic\n',
  'providers: [{id: x, kind: generic, clientId: 2001-01-01, issuer: https://x.example}]\n', '%YAML 1.1\n---\nproviders: []\n', '---\n---\n', '!!js/function "x"',
  'providers: *undefined\n', `providers:${' ['.repeat(500)}`, 'providers: [{id: x, kind: generic, clientId: c, issuer: !!str https://x.example, jwksCooldownSeconds: .inf}]\n',
];

describe('fuzz: the providers file (MIMIR_AUTH_PROVIDERS_FILE)', () => {
  for (const yaml of [false, true]) {
    it(`loadProviders answers any ${yaml ? 'YAML' : 'JSON'} file with valid providers or a ConfigError`, () => {
      const config = loadConfig({ MIMIR_AUTH_PROVIDERS_FILE: yaml ? '/fuzz/providers.yaml' : '/fuzz/providers.json' }, { dotenv: false });
      const text = fc.oneof(
        { weight: 8, arbitrary: providersFile.filter((f) => f.yaml === yaml).map((f) => f.text) },
        { weight: 1, arbitrary: yaml ? fc.constantFrom(...YAML_HAZARDS) : anyString(64) },
      );
      const outcomes = { loaded: 0, refused: 0 };
      fc.assert(fc.property(text, (file) => {
        let providers;
        try {
          providers = bounded('loadProviders', () => loadProviders(config, () => file));
        } catch (e) {
          assertThrownIs(e, [ConfigError]);
          assert.ok((e as ConfigError).problems.every((p) => p.startsWith('MIMIR_AUTH_PROVIDERS_FILE') || p.startsWith('provider id')), describeThrown(e));
          outcomes.refused++;
          return;
        }
        outcomes.loaded++;
        const ids = new Set(providers.map((p) => p.id));
        assert.equal(ids.size, providers.length);
        for (const p of providers) {
          const u = new URL(p.issuerTemplate ?? p.issuer.replace('{tenantid}', TENANT));
          assert.ok(u.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname), `issuer ${p.issuer}`);
          for (const list of [...Object.values(p.roleMappings), ...Object.values(p.groupsToRoles)]) assert.ok(list.every((r) => typeof r === 'string'));
        }
      }), fuzz(UNIT_RUNS / 2, { examples: [[yaml ? toYaml({ providers: ENTRIES }) : JSON.stringify({ providers: ENTRIES })], [yaml ? 'providers: [' : '{']] }));
      assert.ok(outcomes.loaded > 0 && outcomes.refused > 0, `the runs reached both outcomes: ${JSON.stringify(outcomes)}`);
    });
  }
});

/** Hostile values per member of Mimir's rbac.json. */
const permission = fc.oneof(fc.constantFrom('*', 'nodes:read', 'nodes:*', 'mcp:tool:memory_search', 'mcp:*', ':*', '', '*:*'), anyString(16));
const RBAC_MEMBERS: Record<string, fc.Arbitrary<unknown>> = {
  version: fc.oneof(anyString(), jsonValue(1)),
  claimPath: fc.oneof(hostile(['roles', 'realm_access.roles']), jsonValue(1)),
  defaultRole: fc.oneof(name, jsonValue(1)),
  roleMappings: fc.oneof(
    { weight: 4, arbitrary: fc.dictionary(name, fc.oneof(
      fc.record({ description: fc.oneof(anyString(), jsonValue(1)), permissions: fc.oneof(fc.array(permission, { maxLength: 4 }), jsonValue(1)) }, { requiredKeys: ['permissions'], noNullPrototype: true }),
      jsonValue(1),
    ), { maxKeys: 4, noNullPrototype: true }) },
    { weight: 1, arbitrary: jsonValue(2) },
  ),
  routes: fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.record({
      method: hostile(['*', 'GET', 'GET|HEAD', 'POST|PUT|PATCH', 'get', 'GET|', '|']),
      path: hostile(['/api/nodes/**', '/api/*/x', '/', '/**', 'api', '//', '/api//x/']),
      permission: fc.oneof(permission, fc.constant(null), jsonValue(1)),
    }, { noNullPrototype: true }), { maxLength: 3 }) },
    { weight: 1, arbitrary: jsonValue(2) },
  ),
  extra: jsonValue(1),
};

const rbacDoc = fc.oneof(
  { weight: 8, arbitrary: changed(fc.constant(DEFAULT_RBAC as unknown as Record<string, unknown>), RBAC_MEMBERS) },
  { weight: 1, arbitrary: jsonValue(3) },
);
const rbacText = fc.tuple(rbacDoc, fc.option(edits, { freq: 4 })).map(([doc, mutation]) => {
  const text = JSON.stringify(doc) ?? 'null';
  return mutation ? applyEdits(text, mutation) : text;
});

/** A loaded RBAC configuration is usable: permissions of any roles, and a route decision for any request. */
function exercise(rbac: Rbac): void {
  const roles = [...Object.keys(rbac.config.roleMappings), rbac.config.defaultRole ?? 'viewer', 'nobody'];
  for (const subset of [roles, roles.slice(0, 1), [], ['nobody']]) {
    const granted = rbac.permissionsFor(subset);
    assert.ok(granted.every((p) => typeof p === 'string'));
    assert.equal(typeof allows(granted, 'nodes:read'), 'boolean');
  }
  for (const [method, path] of [['GET', '/api/nodes/1'], ['post', '/API/Nodes/'], ['DELETE', '/'], ['PATCH', '/api/orchestration/1/cancel']] as const) {
    const decision = routePermission(rbac.config.routes ?? DEFAULT_ROUTES, method, path);
    assert.ok(decision.permission === null || decision.permission === undefined || typeof decision.permission === 'string');
  }
}

/** The documented refusal: an Error naming the variable (loadConfig turns it into the start-up message). */
function assertRbacRefusal(e: unknown): void {
  assert.ok(e instanceof Error && e.constructor === Error && e.message.startsWith('MIMIR_RBAC_CONFIG:'), `expected the MIMIR_RBAC_CONFIG error, got ${describeThrown(e)}`);
}

describe('fuzz: the RBAC file (MIMIR_RBAC_CONFIG)', () => {
  it('parseRbac answers any file or inline value with a usable configuration or the MIMIR_RBAC_CONFIG error', () => {
    const outcomes = { loaded: 0, refused: 0 };
    fc.assert(fc.property(fc.oneof({ weight: 6, arbitrary: rbacText }, { weight: 1, arbitrary: anyString(64) }), fc.boolean(), (text, inline) => {
      let config;
      try {
        config = bounded('parseRbac', () => (inline && text.trim().startsWith('{') ? parseRbac(text, () => assert.fail('read')) : parseRbac('/fuzz/rbac.json', () => text)));
      } catch (e) {
        assertRbacRefusal(e);
        outcomes.refused++;
        return;
      }
      outcomes.loaded++;
      bounded('Rbac', () => exercise(new Rbac(config)));
    }), fuzz(UNIT_RUNS, { examples: [[JSON.stringify(DEFAULT_RBAC), false], ['{', true]] }));
    assert.ok(outcomes.loaded > 0 && outcomes.refused > 0, `the runs reached both outcomes: ${JSON.stringify(outcomes)}`);
  });

  describe('from a URL (loadRbac)', () => {
    let server: Server;
    let answer = { status: 200, body: '' };
    before(async () => {
      server = createServer((_req, res) => { res.writeHead(answer.status, { 'content-type': 'application/json' }); res.end(answer.body); });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    after(async () => { await new Promise((resolve) => server?.close(resolve)); });

    it('loadRbac answers any document and status with a usable configuration or the MIMIR_RBAC_CONFIG error', async () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rbac.json`;
      await fc.assert(fc.asyncProperty(fc.oneof(rbacText, anyString(64)), fc.constantFrom(200, 200, 200, 404, 500, 302), async (body, status) => {
        answer = { status, body };
        let rbac;
        try {
          rbac = await loadRbac(url);
        } catch (e) {
          assertRbacRefusal(e);
          return;
        }
        exercise(rbac);
      }), fuzz(UNIT_RUNS / 10));
    });
  });
});
