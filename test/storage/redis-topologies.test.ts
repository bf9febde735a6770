/**
 * Redis Sentinel and Cluster (issue 18, item 2): their configuration, refused clearly when wrong;
 * a Sentinel failover under two hubs (the master killed with SIGKILL: writes and readiness come back
 * within 10 s, no revocation is lost, revocations still cross hubs); and two hubs sharing a
 * three-master Cluster. Every server is a real redis-server process (test/helpers/redis-topologies.ts).
 * The hubs' MIMIR_REDIS_URL carries the servers' password and points at a port where nothing
 * listens: they can only work through the sentinels or the cluster nodes, which replace its host.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { ConfigError, loadConfig, redactedVariables } from '../../src/config/index.ts';
import { REVOKED_CHANNEL } from '../../src/revocation/index.ts';
import { createStore } from '../../src/storage/index.ts';
import { RedisStore } from '../../src/storage/redis.ts';
import { newRedisPrefix, serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { basic, get, login, postForm, postJson } from '../helpers/http.ts';
import { startCluster, startSentinel, type ClusterTopology, type SentinelTopology } from '../helpers/redis-topologies.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env, { dotenv: false });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  assert.fail('expected a ConfigError');
};

/** `mimir-auth serve` with only `env`: its exit code and the problem lines it printed. */
function serve(env: Record<string, string>): Promise<{ code: number; problems: string[]; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-topology-cli-'));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'serve'], { cwd: dir, timeout: 60_000, env: { PATH: process.env.PATH ?? '', HOME: dir, MIMIR_DATA_DIR: dir, MIMIR_AUTH_PORT: '0', ...env } }, (err, _stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, problems: stderr.split('\n').filter((l) => /^\s+MIMIR_/.test(l)).map((l) => l.trim()), stderr });
    });
  });
}

/** `cli`: also tried through `mimir-auth serve` (each start costs seconds, so not all of them). */
const BAD_SETTINGS: Array<{ rule: string; env: Record<string, string>; line: RegExp; cli?: boolean }> = [
  {
    rule: 'sentinels and cluster nodes both set',
    env: { MIMIR_REDIS_SENTINELS: '127.0.0.1:26379', MIMIR_REDIS_SENTINEL_NAME: 'mymaster', MIMIR_REDIS_CLUSTER_NODES: '127.0.0.1:7000' },
    line: /^MIMIR_REDIS_SENTINELS: and MIMIR_REDIS_CLUSTER_NODES are both set/,
    cli: true,
  },
  { rule: 'a database other than 0 with a Cluster (MIMIR_REDIS_DB)', env: { MIMIR_REDIS_CLUSTER_NODES: '127.0.0.1:7000', MIMIR_REDIS_DB: '2' }, line: /^MIMIR_REDIS_DB: is 2, but a Redis Cluster .* has only database 0/, cli: true },
  { rule: 'a database other than 0 with a Cluster (URL path)', env: { MIMIR_REDIS_CLUSTER_NODES: '127.0.0.1:7000', MIMIR_REDIS_URL: 'redis://:pw@127.0.0.1:6379/3' }, line: /^MIMIR_REDIS_URL: names database 3 in its path, but a Redis Cluster .* has only database 0/ },
  { rule: 'sentinels without the master name', env: { MIMIR_REDIS_SENTINELS: '127.0.0.1:26379' }, line: /^MIMIR_REDIS_SENTINEL_NAME: is required with MIMIR_REDIS_SENTINELS/, cli: true },
  { rule: 'a master name without sentinels', env: { MIMIR_REDIS_SENTINEL_NAME: 'mymaster' }, line: /^MIMIR_REDIS_SENTINEL_NAME: is set but MIMIR_REDIS_SENTINELS is not/ },
  { rule: 'a sentinel entry without a port', env: { MIMIR_REDIS_SENTINELS: '127.0.0.1:26379,redis-b', MIMIR_REDIS_SENTINEL_NAME: 'm' }, line: /^MIMIR_REDIS_SENTINELS: "redis-b" is not host:port; .*\[::1\]:26379/, cli: true },
  { rule: 'an IPv6 sentinel without brackets', env: { MIMIR_REDIS_SENTINELS: '::1:26379', MIMIR_REDIS_SENTINEL_NAME: 'm' }, line: /^MIMIR_REDIS_SENTINELS: "::1:26379" is not host:port/ },
  { rule: 'a cluster node with port 0', env: { MIMIR_REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:0' }, line: /^MIMIR_REDIS_CLUSTER_NODES: "127.0.0.1:0" is not host:port/ },
  { rule: 'an empty entry in the cluster node list', env: { MIMIR_REDIS_CLUSTER_NODES: '127.0.0.1:7000,,127.0.0.1:7001' }, line: /^MIMIR_REDIS_CLUSTER_NODES: "" is not host:port/ },
];

describe('Redis Sentinel and Cluster configuration', () => {
  for (const bad of BAD_SETTINGS) {
    it(`refuses ${bad.rule}, in one line naming the variable`, () => {
      const found = problems(bad.env);
      assert.equal(found.length, 1, found.join('\n'));
      assert.match(found[0]!, bad.line);
    });
  }

  it('mimir-auth serve refuses them: a non-zero exit and one line naming the variable', async () => {
    for (const bad of BAD_SETTINGS.filter((x) => x.cli)) {
      const result = await serve(bad.env);
      assert.notEqual(result.code, 0, `${bad.rule}: ${result.stderr}`);
      assert.equal(result.code, 78, `${bad.rule}: EX_CONFIG`);
      assert.equal(result.problems.length, 1, `${bad.rule}: ${result.stderr}`);
      assert.match(result.problems[0]!, bad.line, bad.rule);
    }
  });

  it('sentinels replace the URL\'s host; its credentials, database and scheme still apply; IPv6 in brackets', () => {
    const c = loadConfig({
      MIMIR_REDIS_URL: 'rediss://hub:pa%40ss@ignored.example:6379/4',
      MIMIR_REDIS_SENTINELS: '[::1]:26379, sentinel-b.internal:26380,10.0.0.3:26381',
      MIMIR_REDIS_SENTINEL_NAME: 'mimir',
      MIMIR_REDIS_SENTINEL_PASSWORD: 'sentinel-secret-value',
    }, { dotenv: false });
    assert.deepEqual(c.storage.redis.topology, {
      kind: 'sentinel', name: 'mimir', sentinelPassword: 'sentinel-secret-value',
      sentinels: [{ host: '::1', port: 26379 }, { host: 'sentinel-b.internal', port: 26380 }, { host: '10.0.0.3', port: 26381 }],
    });
    assert.equal(c.storage.redis.db, 4, 'the database in the URL\'s path');
    assert.equal(c.storage.redis.url, 'rediss://hub:pa%40ss@ignored.example:6379/4');
    assert.equal(redactedVariables(c).MIMIR_REDIS_SENTINEL_PASSWORD, '<redacted>');
    assert.equal(loadConfig({ MIMIR_REDIS_URL: 'redis://h:6379/4' }, { dotenv: false }).storage.redis.db, 4, 'a single server: the URL\'s database too');
    assert.equal(loadConfig({ MIMIR_REDIS_URL: 'redis://h:6379/4', MIMIR_REDIS_DB: '2' }, { dotenv: false }).storage.redis.db, 2, 'MIMIR_REDIS_DB wins over the path');
    const cluster = loadConfig({ MIMIR_REDIS_CLUSTER_NODES: 'a:7000,b:7001', MIMIR_REDIS_DB: '0' }, { dotenv: false });
    assert.deepEqual(cluster.storage.redis.topology, { kind: 'cluster', nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }] });
    assert.deepEqual(loadConfig({}, { dotenv: false }).storage.redis.topology, { kind: 'standalone' });
  });

  it('an unreachable Sentinel or Cluster fails the start at once, naming its variables and hiding the password', { timeout: 20_000 }, async () => {
    const nowhere = [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }];
    for (const [topology, variables] of [
      [{ kind: 'sentinel', sentinels: nowhere, name: 'mimir' }, /MIMIR_REDIS_SENTINELS, MIMIR_REDIS_SENTINEL_NAME/],
      [{ kind: 'cluster', nodes: nowhere }, /MIMIR_REDIS_CLUSTER_NODES/],
    ] as const) {
      await assert.rejects(createStore({ kind: 'redis', redis: { url: 'redis://u:s3cret-pw@127.0.0.1:6379', db: 0, keyPrefix: 'x:', topology } }), (err: Error) => {
        assert.match(err.message, variables);
        assert.match(err.message, /127\.0\.0\.1:1,127\.0\.0\.1:2/);
        assert.doesNotMatch(err.message, /s3cret-pw/);
        return true;
      });
    }
  });
});

/** The refresh's error code once it is no longer temporarily_unavailable (within 10 s). */
async function refreshSettled(url: string, refreshToken: string): Promise<unknown> {
  return waitFor(`a settled answer to a refresh at ${url}`, 10_000, async () => {
    const error = (await postJson(`${url}/auth/refresh`, { refresh_token: refreshToken })).body.error;
    return error === 'temporarily_unavailable' ? undefined : error ?? 'none';
  });
}

async function waitFor<T>(what: string, ms: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await attempt().catch(() => undefined);
    if (result !== undefined) return result;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fetch that gives up after 2 s (a request may hang while the hub's Redis connection is down). */
async function status(url: string, init: RequestInit = {}): Promise<number> {
  return (await fetch(url, { ...init, signal: AbortSignal.timeout(2000) })).status;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Two hubs sharing one topology: the same key prefix, issuer and MIMIR_JWT_SECRET (which seals the signing keys). */
function sharedEnv(topologyEnv: Record<string, string>): { prefix: string; env: Record<string, string> } {
  const prefix = newRedisPrefix();
  return {
    prefix,
    env: { ...topologyEnv, MIMIR_JWT_SECRET: randomBytes(32).toString('base64url'), MIMIR_JWT_ISSUER: 'http://mimir-hub.test' },
  };
}

describe('Redis Sentinel: the master killed under two hubs', { timeout: 120_000 }, () => {
  let sentinel: SentinelTopology;
  let a: TestHub;
  let b: TestHub;
  let c: TestHub | undefined;
  let shared: ReturnType<typeof sharedEnv>;

  before(async () => {
    sentinel = await startSentinel();
    shared = sharedEnv(sentinel.env);
    a = await startHub({ storage: 'redis', redisPrefix: shared.prefix, env: shared.env });
    b = await startHub({ storage: 'redis', redisPrefix: shared.prefix, env: shared.env });
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close(), c?.close()]);
    await sentinel?.stop();
  });

  it('a write returns once a replica holds it (WAIT 1), so a failover right after cannot lose it', async () => {
    const topology = { kind: 'sentinel', sentinels: sentinel.sentinels, name: sentinel.name, sentinelPassword: sentinel.sentinelPassword } as const;
    const store = new RedisStore({ url: sentinel.url, keyPrefix: `${shared.prefix}wait:`, topology });
    await store.connect();
    const master = new Redis({ ...sentinel.master, password: sentinel.password, lazyConnect: true, maxRetriesPerRequest: 1 });
    const replica = new Redis({ ...sentinel.replica, password: sentinel.password, lazyConnect: true, maxRetriesPerRequest: 1 });
    await Promise.all([master.connect(), replica.connect()]);
    const waits = async () => Number(/cmdstat_wait:calls=(\d+)/.exec(await master.info('commandstats'))?.[1] ?? 0);
    try {
      const before = await waits();
      for (let i = 0; i < 3; i++) {
        await store.upsert('revoked', `jti.${i}`, { i }, 600);
        // Read from the replica itself, the moment the write returned.
        assert.equal(await replica.hget(`${shared.prefix}wait:revoked:jti.${i}`, 'payload'), JSON.stringify({ i }));
      }
      assert.ok((await waits()) - before >= 3, 'each write asked the master to wait for a replica');
    } finally {
      await Promise.all([store.close(), master.quit(), replica.quit()]);
    }
  });

  it('writes and /ready come back within 10 s, no revocation made before is lost, and revocations still cross hubs', async (t) => {
    // Before the failover: an admin, a revoked access token, a revoked refresh family, a revoked API key.
    const admin = (await a.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
    const revoked = await serviceAccountToken(a, ['developer']);
    assert.equal((await postForm(`${a.url}/auth/revoke`, { token: revoked.token, token_type_hint: 'access_token' }, basic(revoked.clientId, revoked.secret))).status, 200);
    const family = await login(a);
    assert.equal((await postForm(`${a.url}/auth/revoke`, { token: family, token_type_hint: 'refresh_token' })).status, 200);
    const key = await postJson(`${a.url}/auth/admin/api-keys`, { name: 'before', roles: ['developer'] }, { 'x-api-key': admin });
    assert.equal(key.status, 201);
    assert.equal((await fetch(`${a.url}/auth/admin/api-keys/${key.body.id}`, { method: 'DELETE', headers: { 'x-api-key': admin } })).status, 200);
    await waitFor('B refusing the revoked token before the failover', 2000, async () => ((await get(`${b.url}/auth/me`, bearer(revoked.token))).status === 401 ? true : undefined));
    const later = await serviceAccountToken(a, ['developer']); // revoked after the failover
    assert.equal((await get(`${b.url}/auth/me`, bearer(later.token))).status, 200);

    const oldMaster = sentinel.master;
    const killedAt = performance.now();
    await sentinel.killMaster();

    const switched = waitFor('the sentinels naming a new master', 15_000, async () => {
      const m = await sentinel.currentMaster();
      return m.port !== oldMaster.port ? performance.now() - killedAt : undefined;
    });
    const written = waitFor('an API key created on A (201)', 15_000, async () => {
      const res = await fetch(`${a.url}/auth/admin/api-keys`, {
        method: 'POST', headers: { 'x-api-key': admin, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'after-failover', roles: ['developer'] }), signal: AbortSignal.timeout(2000),
      });
      return res.status === 201 ? { at: performance.now() - killedAt, key: (await res.json() as { key: string }).key } : undefined;
    });
    const ready = waitFor('/ready 200 on both hubs', 15_000, async () =>
      (await status(`${a.url}/ready`)) === 200 && (await status(`${b.url}/ready`)) === 200 ? performance.now() - killedAt : undefined);
    const [switchMs, write, readyMs] = await Promise.all([switched, written, ready]);
    const newMaster = await sentinel.currentMaster();
    assert.deepEqual(newMaster, sentinel.replica, 'the replica was promoted');

    // Both hubs' subscriber connections are back on the new master (seen from Redis itself).
    const probe = new Redis({ ...newMaster, password: sentinel.password, lazyConnect: true, maxRetriesPerRequest: 1 });
    await probe.connect();
    const subscribedMs = await waitFor('both hubs subscribed to revocations on the new master', 15_000, async () => {
      const [, count] = await probe.pubsub('NUMSUB', shared.prefix + REVOKED_CHANNEL) as [string, number];
      return count >= 2 ? performance.now() - killedAt : undefined;
    });
    await probe.quit();

    const report = `failover: sentinels switched after ${(switchMs / 1000).toFixed(2)} s; first write (201) after ${(write.at / 1000).toFixed(2)} s; ` +
      `/ready 200 on both hubs after ${(readyMs / 1000).toFixed(2)} s; both subscribers back after ${(subscribedMs / 1000).toFixed(2)} s`;
    t.diagnostic(report);
    console.log(`[redis-topologies] ${report}`);
    assert.ok(write.at < 10_000, `writes came back after ${write.at} ms`);
    assert.ok(readyMs < 10_000, `/ready came back after ${readyMs} ms`);

    // The key written after the failover works on the other hub.
    assert.equal((await get(`${b.url}/auth/me`, { 'x-api-key': write.key })).status, 200);
    // No revocation made before the failover is lost: refused on both hubs...
    for (const hub of [a, b]) assert.equal((await get(`${hub.url}/auth/me`, bearer(revoked.token))).status, 401, `${hub.url} accepts the token revoked before the failover`);
    // A hub that saw its revocation channel drop reads the revocations again before it decides on
    // a refresh (temporarily_unavailable meanwhile, with /ready 503): under load that can come
    // after /ready was first seen 200. Its answer once settled is what counts.
    assert.equal(await refreshSettled(b.url, family), 'invalid_grant');
    assert.equal((await get(`${b.url}/auth/me`, { 'x-api-key': key.body.key as string })).status, 401);
    // ...and in the store itself: a hub started now, which knows only what the new master holds, refuses them too.
    c = await startHub({ storage: 'redis', redisPrefix: shared.prefix, env: shared.env });
    assert.equal((await get(`${c.url}/auth/me`, bearer(revoked.token))).status, 401, 'the revocation survived on the new master');
    assert.equal((await get(`${c.url}/auth/me`, { 'x-api-key': key.body.key as string })).status, 401, 'the API key deletion survived');
    assert.equal(await refreshSettled(c.url, family), 'invalid_grant');
    assert.equal((await get(`${c.url}/auth/me`, bearer(later.token))).status, 200, 'a token not revoked still works');

    // Revocations still cross hubs: revoked on A after the failover, refused on B within 1 s.
    assert.equal((await postForm(`${a.url}/auth/revoke`, { token: later.token, token_type_hint: 'access_token' }, basic(later.clientId, later.secret))).status, 200);
    await waitFor('B refusing the token revoked on A after the failover', 1000, async () => ((await get(`${b.url}/auth/me`, bearer(later.token))).status === 401 ? true : undefined));
  });
});

describe('Redis Cluster: two hubs on three masters', { timeout: 120_000 }, () => {
  let cluster: ClusterTopology;
  let a: TestHub;
  let b: TestHub;
  let admin: string;

  before(async () => {
    cluster = await startCluster();
    const shared = sharedEnv(cluster.env);
    a = await startHub({ storage: 'redis', redisPrefix: shared.prefix, env: shared.env });
    b = await startHub({ storage: 'redis', redisPrefix: shared.prefix, env: shared.env });
    admin = (await a.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await cluster?.stop();
  });

  it('an API key created on A works on B', async () => {
    const created = await postJson(`${a.url}/auth/admin/api-keys`, { name: 'pctx', roles: ['developer'] }, { 'x-api-key': admin });
    assert.equal(created.status, 201);
    const me = await get(`${b.url}/auth/me`, { 'x-api-key': created.body.key as string });
    assert.equal(me.status, 200);
  });

  it('an access token revoked on A is refused by B within 1 s', async () => {
    const svc = await serviceAccountToken(a, ['developer']);
    assert.equal((await get(`${b.url}/auth/me`, bearer(svc.token))).status, 200, 'B accepts it before');
    assert.equal((await postForm(`${a.url}/auth/revoke`, { token: svc.token, token_type_hint: 'access_token' }, basic(svc.clientId, svc.secret))).status, 200);
    await waitFor('B refusing the revoked token', 1000, async () => ((await get(`${b.url}/auth/me`, bearer(svc.token))).status === 401 ? true : undefined));
  });

  it('a refresh rotation race over both hubs has exactly one winner', async () => {
    const refresh = await login(a);
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => postJson(`${i % 2 ? b.url : a.url}/auth/refresh`, { refresh_token: refresh })));
    const wins = results.filter((r) => r.status === 200);
    assert.equal(wins.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`);
    for (const r of results.filter((x) => x.status !== 200)) assert.equal(r.body.error, 'invalid_grant');
    // The losers' attempts were reuse of a rotated-out token: the family is revoked, the winner's successor with it.
    const next = await postJson(`${b.url}/auth/refresh`, { refresh_token: wins[0]!.body.refresh_token as string });
    assert.equal(next.body.error, 'invalid_grant', 'the losers\' reuse revoked the family');
  });

  it('a signing key rotated on A is honoured by B, at once', async () => {
    // Many other keys, as a production Redis holds: B's reload of the key set (a SCAN of every
    // master) then takes a while, and a token signed with the new key may reach B during it.
    const filler = new Cluster(cluster.nodes.map((n) => ({ ...n })), { lazyConnect: true, redisOptions: { password: cluster.password } });
    await filler.connect();
    for (let batch = 0; batch < 30; batch++) {
      const pipeline = filler.pipeline(); // one slot per pipeline: the hash tag
      for (let i = 0; i < 1000; i++) pipeline.set(`{filler-${batch}}:${i}`, '1', 'EX', 600);
      await pipeline.exec();
    }
    await filler.quit();
    const rotated = await postJson(`${a.url}/auth/admin/signing-keys/rotate`, {}, { 'x-api-key': admin });
    assert.equal(rotated.status, 200);
    const kid = rotated.body.kid as string;
    const svc = await serviceAccountToken(a, ['developer']);
    const header = JSON.parse(Buffer.from(svc.token.split('.')[0]!, 'base64url').toString()) as { kid: string };
    assert.equal(header.kid, kid, 'A signs with the new key');
    assert.equal((await get(`${b.url}/auth/me`, bearer(svc.token))).status, 200);
    const jwks = await get(`${b.url}/.well-known/jwks.json`);
    assert.ok((jwks.body.keys as Array<{ kid: string }>).some((k) => k.kid === kid), 'B publishes the new key');
  });

  it('records are spread over the masters, and list finds them on every one', async () => {
    const prefix = newRedisPrefix();
    const store = new RedisStore({ url: cluster.url, keyPrefix: prefix, topology: { kind: 'cluster', nodes: cluster.nodes } });
    await store.connect();
    try {
      const ids = Array.from({ length: 30 }, (_, i) => `r${i}`);
      await Promise.all(ids.map((id) => store.upsert('spread', id, { id }, 600)));
      const perNode = await Promise.all(cluster.nodes.map(async ({ host, port }) => {
        const node = new Redis({ host, port, password: cluster.password, lazyConnect: true, maxRetriesPerRequest: 1 });
        await node.connect();
        let [cursor, count] = ['0', 0];
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          [cursor, count] = [next, count + keys.length];
        } while (cursor !== '0');
        await node.quit();
        return count;
      }));
      assert.ok(perNode.filter((n) => n > 0).length >= 2, `keys per master: ${perNode.join(',')}`);
      assert.deepEqual((await store.list('spread')).map((r) => r.id), [...ids].sort());
    } finally {
      await store.close();
    }
  });
});
