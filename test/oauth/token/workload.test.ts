/**
 * Workload identity federation (RFC 7523 §2.1): JWTs of configured issuers (MIMIR_WORKLOAD_ISSUERS_FILE)
 * — here a Kubernetes-shaped issuer and a SPIFFE-shaped one, real JWT issuers on loopback serving
 * their JWKS over HTTP — posted with grant_type=jwt-bearer and no client authentication, get a
 * token for the service account their issuer, audience and subject map to.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import type { AuditEvent } from '../../../src/audit/index.ts';
import { ConfigError } from '../../../src/config/index.ts';
import { subjectMatches } from '../../../src/oauth/jwt-bearer/workload-issuers.ts';
import { freePort, newRedisPrefix, startHub, type TestHub } from '../../helpers/hub.ts';
import { basic, postForm } from '../../helpers/http.ts';
import { startJwtIssuer, type JwtIssuer } from '../../helpers/jwt-issuer.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

function issuersFile(entries: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'mimir-workloads-')), 'workload-issuers.json');
  writeFileSync(file, typeof entries === 'string' ? entries : JSON.stringify(entries));
  return file;
}

describe('workload identity federation at /auth/token (RFC 7523 §2.1)', () => {
  let t: TestHub;
  let k8s: JwtIssuer;
  let spiffe: JwtIssuer;
  let unknown: JwtIssuer;
  let hubIssuer: string;
  const events: AuditEvent[] = [];
  const grant = (assertion: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    postForm(`${t.url}/auth/token`, { grant_type: JWT_BEARER, assertion, ...extra }, headers);
  /** A projected service-account token, as the Kubernetes API server issues it. */
  const podToken = (sub: string, claims: Record<string, unknown> = {}, options: Parameters<JwtIssuer['sign']>[1] = {}) =>
    k8s.sign({ sub, aud: [hubIssuer], 'kubernetes.io': { namespace: sub.split(':')[2], serviceaccount: { name: sub.split(':')[3] } }, ...claims }, options);

  before(async () => {
    [k8s, spiffe, unknown] = await Promise.all([startJwtIssuer({ alg: 'RS256' }), startJwtIssuer({ alg: 'ES256' }), startJwtIssuer({ alg: 'ES256' })]);
    const port = await freePort();
    hubIssuer = `http://127.0.0.1:${port}`;
    const file = issuersFile([
      { issuer: k8s.issuer, jwksUri: k8s.jwksUri, audience: hubIssuer, subject: 'system:serviceaccount:ci:builder', serviceAccount: 'ci-builder' },
      { issuer: k8s.issuer, jwksUri: k8s.jwksUri, audience: 'mimir', subject: 'system:serviceaccount:jobs:*', serviceAccount: 'batch-jobs' },
      { issuer: spiffe.issuer, jwksUri: spiffe.jwksUri, audience: 'mimir', subject: 'spiffe://example.org/ns/prod/sa/*', serviceAccount: 'prod-workload' },
    ]);
    t = await startHub({ storage: 'sqlite', env: { MIMIR_AUTH_PORT: String(port), MIMIR_WORKLOAD_ISSUERS_FILE: file } });
    t.hub.audit.observe((e) => events.push(e));
    await t.hub.serviceAccounts.create({ clientId: 'ci-builder', roles: ['developer'] });
    await t.hub.serviceAccounts.create({ clientId: 'batch-jobs', roles: ['viewer'] });
    await t.hub.serviceAccounts.create({ clientId: 'prod-workload', roles: ['developer'] });
  });
  after(async () => {
    await t.close();
    await Promise.all([k8s.close(), spiffe.close(), unknown.close()]);
  });

  it('a Kubernetes service-account token gets a token for the mapped service account: its sub, client_id, roles and scope rules', async () => {
    const res = await grant(await podToken('system:serviceaccount:ci:builder'), { scope: 'nodes:read' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.scope, 'nodes:read');
    const claims = decodeJwt(res.body.access_token);
    assert.equal(claims.sub, 'ci-builder');
    assert.equal(claims.client_id, 'ci-builder');
    assert.deepEqual(claims.roles, ['developer']);
    const me = await fetch(`${t.url}/auth/me`, { headers: { authorization: `Bearer ${res.body.access_token}` } });
    assert.equal((await me.json() as { upstream: { id: string } }).upstream.id, 'service-account:ci-builder');
    // As for client_credentials: a scope beyond the account's roles is invalid_scope.
    const wider = await grant(await podToken('system:serviceaccount:ci:builder'), { scope: 'admin:manage' });
    assert.equal(wider.body.error, 'invalid_scope');
    const audited = events.find((e) => e.type === 'token_issued' && e.outcome === 'success' && e.jti === claims.jti);
    assert.equal(audited?.grant_type, JWT_BEARER);
    assert.equal(audited?.client, 'ci-builder');
    assert.equal(audited?.assertion_subject, 'system:serviceaccount:ci:builder');
  });

  it('subject patterns: * stands for any run of characters; the first matching entry decides', async () => {
    const nightly = await grant(await podToken('system:serviceaccount:jobs:nightly', { aud: 'mimir' }));
    assert.equal(nightly.status, 200, JSON.stringify(nightly.body));
    assert.equal(decodeJwt(nightly.body.access_token).sub, 'batch-jobs');
    const prod = await grant(await spiffe.sign({ sub: 'spiffe://example.org/ns/prod/sa/api', aud: 'mimir' }));
    assert.equal(decodeJwt(prod.body.access_token).sub, 'prod-workload');
    for (const sub of ['system:serviceaccount:jobs', 'system:serviceaccount:other:nightly', 'xsystem:serviceaccount:jobs:nightly']) {
      const res = await grant(await podToken(sub, { aud: 'mimir' }));
      assert.equal(res.status, 400, sub);
      assert.equal(res.body.error, 'invalid_grant', sub);
    }
  });

  it('a wrong issuer, audience or key, an expired or unexpiring token, alg none, HS256 or another typ is invalid_grant', async () => {
    const sub = 'system:serviceaccount:ci:builder';
    const cases: Array<[string, Promise<string>]> = [
      ['an issuer not configured', unknown.sign({ sub, aud: [hubIssuer] })],
      ['a configured iss signed by another issuer\'s key', unknown.sign({ iss: k8s.issuer, sub, aud: [hubIssuer] })],
      ['signed by a key not in the JWKS', podToken(sub, {}, { key: 'stranger' })],
      ['the wrong audience', podToken(sub, { aud: ['https://kubernetes.default.svc'] })],
      ['an audience of another entry', podToken(sub, { aud: 'mimir' })],
      ['expired', podToken(sub, {}, { expiresIn: -120 })],
      ['no exp', podToken(sub, {}, { expiresIn: null })],
      ['not yet valid', podToken(sub, { nbf: Math.floor(Date.now() / 1000) + 600 })],
      ['alg none', podToken(sub, {}, { key: 'none' })],
      ['HS256', podToken(sub, {}, { key: 'hmac' })],
      ['typ at+jwt', podToken(sub, {}, { typ: 'at+jwt' })],
    ];
    for (const [name, pending] of cases) {
      const res = await grant(await pending);
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, 'invalid_grant', name);
    }
    const notJwt = await grant('not-a-jwt');
    assert.equal(notJwt.body.error, 'invalid_grant');
    const missing = await postForm(`${t.url}/auth/token`, { grant_type: JWT_BEARER });
    assert.equal(missing.body.error, 'invalid_request');
  });

  it('a replayed workload token is invalid_grant; one without a jti is single use by itself', async () => {
    const pod = await podToken('system:serviceaccount:ci:builder');
    assert.equal((await grant(pod)).status, 200);
    const again = await grant(pod);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    const svid = await spiffe.sign({ sub: 'spiffe://example.org/ns/prod/sa/api', aud: 'mimir' }, { omit: ['jti'] });
    assert.equal((await grant(svid)).status, 200);
    assert.equal((await grant(svid)).body.error, 'invalid_grant');
  });

  it('the service account must exist and be enabled when the token is used', async () => {
    const svid = () => spiffe.sign({ sub: 'spiffe://example.org/ns/prod/sa/api', aud: 'mimir' });
    await t.hub.admin.setServiceAccountDisabled({ kind: 'cli', user: 'test' }, 'prod-workload', true);
    assert.equal((await grant(await svid())).body.error, 'invalid_grant');
    await t.hub.admin.setServiceAccountDisabled({ kind: 'cli', user: 'test' }, 'prod-workload', false);
    assert.equal((await grant(await svid())).status, 200);
    await t.hub.admin.deleteServiceAccount({ kind: 'cli', user: 'test' }, 'prod-workload');
    assert.equal((await grant(await svid())).body.error, 'invalid_grant');
  });

  it('no client authenticates: a client_id naming another account, client credentials (ID-JAG is off) or an ID-JAG are refused', async () => {
    const other = await grant(await podToken('system:serviceaccount:ci:builder'), { client_id: 'batch-jobs' });
    assert.equal(other.body.error, 'invalid_grant');
    const same = await grant(await podToken('system:serviceaccount:ci:builder'), { client_id: 'ci-builder' });
    assert.equal(same.status, 200, 'a client_id naming the mapped account is fine');
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'some-client', roles: ['viewer'] });
    const authenticated = await grant(await podToken('system:serviceaccount:ci:builder'), {}, basic('some-client', clientSecret));
    assert.equal(authenticated.status, 400);
    assert.equal(authenticated.body.error, 'invalid_grant');
    const jag = await grant(await podToken('system:serviceaccount:ci:builder', {}, { typ: 'oauth-id-jag+jwt' }));
    assert.equal(jag.status, 401);
    assert.equal(jag.body.error, 'invalid_client');
  });

  it('metadata lists the jwt-bearer grant when workload issuers are configured', async () => {
    const m = await (await fetch(`${t.url}/.well-known/oauth-authorization-server`)).json() as { grant_types_supported: string[] };
    assert.ok(m.grant_types_supported.includes(JWT_BEARER));
  });
});

describe('workload tokens are single use across instances (one Redis)', () => {
  it('a token used at one hub instance is invalid_grant at another', async () => {
    const k8s = await startJwtIssuer({ alg: 'ES256' });
    const file = issuersFile([{ issuer: k8s.issuer, jwksUri: k8s.jwksUri, audience: 'mimir', subject: 'system:serviceaccount:ci:*', serviceAccount: 'ci' }]);
    const redisPrefix = newRedisPrefix();
    // Instances of one deployment share the key that seals the signing keys.
    const env = { MIMIR_WORKLOAD_ISSUERS_FILE: file, MIMIR_JWT_SECRET: randomBytes(32).toString('base64url') };
    let a: TestHub | undefined;
    let b: TestHub | undefined;
    try {
      a = await startHub({ storage: 'redis', redisPrefix, env });
      b = await startHub({ storage: 'redis', redisPrefix, env });
      await a.hub.serviceAccounts.create({ clientId: 'ci', roles: ['viewer'] });
      const pod = await k8s.sign({ sub: 'system:serviceaccount:ci:runner', aud: 'mimir' });
      const first = await postForm(`${a.url}/auth/token`, { grant_type: JWT_BEARER, assertion: pod });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const replayed = await postForm(`${b.url}/auth/token`, { grant_type: JWT_BEARER, assertion: pod });
      assert.equal(replayed.status, 400);
      assert.equal(replayed.body.error, 'invalid_grant');
      const fresh = await postForm(`${b.url}/auth/token`, { grant_type: JWT_BEARER, assertion: await k8s.sign({ sub: 'system:serviceaccount:ci:runner', aud: 'mimir' }) });
      assert.equal(fresh.status, 200, 'the other instance knows the account and takes a fresh token');
    } finally {
      await a?.close();
      await b?.close();
      await k8s.close();
    }
  });
});

describe('workload subject patterns', () => {
  it('* stands for any run of characters, every other character for itself (no regular expression)', () => {
    const cases: Array<[string, string, boolean]> = [
      ['system:serviceaccount:ci:*', 'system:serviceaccount:ci:builder', true],
      ['system:serviceaccount:*:builder', 'system:serviceaccount:ci:builder', true],
      ['system:serviceaccount:ci:*', 'system:serviceaccount:cd:builder', false],
      ['spiffe://example.org/*/sa/api', 'spiffe://example.org/ns/prod/sa/api', true],
      ['a.b', 'axb', false], ['a.b', 'a.b', true], ['(a|b)', 'a', false],
      ['*', '', true], ['a*', 'a', true], ['*ab', 'aab', true], ['a*b', 'axxbc', false], ['exact', 'exact2', false],
    ];
    for (const [pattern, value, expected] of cases) assert.equal(subjectMatches(pattern, value), expected, `${pattern} ~ ${value}`);
  });
});

describe('MIMIR_WORKLOAD_ISSUERS_FILE is validated at start', () => {
  const good = { issuer: 'https://kubernetes.default.svc', jwksUri: 'https://k8s.example/openid/v1/jwks', audience: 'mimir', subject: 'system:serviceaccount:ci:*', serviceAccount: 'ci' };
  const problemsOf = async (content: unknown): Promise<string[]> => {
    const file = issuersFile(content);
    try {
      const t = await startHub({ storage: 'memory', env: { MIMIR_WORKLOAD_ISSUERS_FILE: file } });
      await t.close();
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      for (const p of e.problems) assert.ok(p.startsWith(`MIMIR_WORKLOAD_ISSUERS_FILE (${file}): `), p);
      return e.problems;
    }
    assert.fail('the hub started');
  };

  it('every problem names the file, the entry and the field', async () => {
    assert.match((await problemsOf('{not json'))[0]!, /cannot be read as JSON/);
    assert.match((await problemsOf({ issuers: [good] }))[0]!, /must be a JSON array/);
    const problems = await problemsOf([
      good,
      { ...good, serviceAccount: undefined },
      { ...good, jwksUri: 'http://k8s.example/jwks' },
      { ...good, audience: '' },
      { ...good, extra: true },
      { ...good, jwksUri: 'https://elsewhere.example/jwks' },
    ]);
    assert.ok(problems.some((p) => /: entry 1: serviceAccount: /.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /: entry 2: jwksUri: must use https/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /: entry 3: audience: /.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /: entry 4: .*extra/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /: entry 5: jwksUri: differs from an earlier entry/.test(p)), problems.join('\n'));
    assert.ok(!problems.some((p) => /: entry 0: /.test(p)), 'the good entry has no problem');
  });

  it('a missing file stops the start', async () => {
    await assert.rejects(startHub({ storage: 'memory', env: { MIMIR_WORKLOAD_ISSUERS_FILE: join(tmpdir(), 'no-such-dir-mimir', 'issuers.json') } }), (e: unknown) => e instanceof ConfigError && /MIMIR_WORKLOAD_ISSUERS_FILE/.test(e.message));
  });
});
