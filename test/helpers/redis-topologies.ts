/**
 * Real Redis topologies for tests, each server a separate `redis-server` process on free loopback
 * ports in a private temporary directory, without persistence:
 * - {@link startSentinel}: a master, one replica and three sentinels (quorum 2, a master is down
 *   after 1 s of silence), returned once the sentinels agree on the master, its replica and each other;
 * - {@link startCluster}: a Redis Cluster of three masters (`redis-cli --cluster create`), returned
 *   once every node reports `cluster_state:ok`.
 * Every server requires a password (random, per topology) and the sentinels one of their own, so the
 * hub's use of the URL's password and of MIMIR_REDIS_SENTINEL_PASSWORD is exercised too.
 * Binaries: MIMIR_TEST_REDIS_SERVER and MIMIR_TEST_REDIS_CLI (scripts/test.ts sets them, installing
 * the packages when missing), else `redis-server` and `redis-cli` on PATH; a missing one fails loudly.
 * Sentinel mode is `redis-server <conf> --sentinel` (the same binary Debian links redis-sentinel to).
 * `stop()` kills every process and removes the directories; an exit hook kills what a crashed test left.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './hub.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface SentinelTopology {
  /** The master name the sentinels monitor (MIMIR_REDIS_SENTINEL_NAME). */
  name: string;
  master: HostPort;
  replica: HostPort;
  sentinels: HostPort[];
  /** The master's and replica's password, and the sentinels' own. */
  password: string;
  sentinelPassword: string;
  /** MIMIR_REDIS_URL for a hub: the password, and a host where nothing listens (the sentinels replace it). */
  url: string;
  /** What a hub needs: MIMIR_REDIS_URL, MIMIR_REDIS_SENTINELS, _SENTINEL_NAME and _SENTINEL_PASSWORD. */
  env: Record<string, string>;
  /** The master as the sentinels name it now. */
  currentMaster(): Promise<HostPort>;
  /** kill -9 of the master process; resolves once it is gone. */
  killMaster(): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterTopology {
  nodes: HostPort[];
  /** Every node's password. */
  password: string;
  /** MIMIR_REDIS_URL for a hub: the password, and a host where nothing listens (the nodes replace it). */
  url: string;
  /** What a hub needs: MIMIR_REDIS_URL and MIMIR_REDIS_CLUSTER_NODES. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
/** Port 1: nothing listens there. */
const UNUSED_HOST = '127.0.0.1:1';
const running = new Set<ChildProcess>();
/** The password each server we started wants, by port. */
const passwords = new Map<number, string>();
const newPassword = () => randomBytes(12).toString('hex');
process.on('exit', () => { for (const child of running) child.kill('SIGKILL'); });

function binary(variable: string, command: string, pkg: string): string {
  const preset = process.env[variable];
  if (preset) return preset;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch { /* not here */ }
  }
  throw new Error(`${command} is needed for the Redis Sentinel and Cluster tests and is not on PATH: install the ${pkg} package (npm test does, as root), or set ${variable}`);
}

const redisServer = () => binary('MIMIR_TEST_REDIS_SERVER', 'redis-server', 'redis-server');
const redisCli = () => binary('MIMIR_TEST_REDIS_CLI', 'redis-cli', 'redis-tools');

interface Server {
  port: number;
  child: ChildProcess;
  output(): string;
  kill(): Promise<void>;
}

/** A client that gives up at once instead of reconnecting (for probes and set-up commands). */
function probe(port: number): Redis {
  const password = passwords.get(port);
  return new Redis({ host: HOST, port, ...(password ? { password } : {}), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, enableOfflineQueue: false });
}

async function ask<T>(port: number, command: string, ...args: Array<string | number>): Promise<T> {
  const client = probe(port);
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(command, ...args) as T;
  } finally {
    client.disconnect();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 100 ms until it returns true; fails with `what` and the last error after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean>, logs: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${ms / 1000} s${last ? ` (last error: ${(last as Error).message})` : ''}\n${logs()}`);
    await sleep(100);
  }
}

/**
 * Starts one redis-server on a free port with `args` (a config file first when given), waiting for
 * PING. A port taken meanwhile by someone else (another test file) is retried on another one.
 */
async function startServer(dir: string, role: string, password: string, args: (port: number) => Promise<string[]> | string[]): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    passwords.set(port, password);
    let output = '';
    const child = spawn(redisServer(), await args(port), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => { running.delete(child); resolve(); }));
    const server: Server = {
      port, child, output: () => output,
      async kill() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        passwords.delete(port);
      },
    };
    try {
      await until(`${role} on port ${port} answering PING`, 10_000, async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited: ${output.slice(-2000)}`);
        return (await ask<string>(port, 'PING')) === 'PONG';
      });
      return server;
    } catch (err) {
      await server.kill();
      if (attempt < 3 && /Address already in use/i.test(output)) continue;
      throw new Error(`cannot start ${role} (redis-server): ${(err as Error).message}\n${output.slice(-2000)}`, { cause: err });
    }
  }
}

/** Common arguments: loopback only, no persistence, the working directory private. */
const plain = (port: number, dir: string) => ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir];

function parseInfo(text: string): Map<string, string> {
  return new Map(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
}

function pairs(flat: unknown): Map<string, string> {
  const out = new Map<string, string>();
  const list = flat as string[];
  for (let i = 0; i + 1 < list.length; i += 2) out.set(String(list[i]), String(list[i + 1]));
  return out;
}

/**
 * Master, replica and three sentinels. Sentinel timing is short so a failover takes seconds:
 * `down-after-milliseconds` 1000 (subjectively down after 1 s without a valid PING reply) and
 * `failover-timeout` 2000 (a failed election is retried after twice that).
 */
export async function startSentinel(name = 'mimir-test'): Promise<SentinelTopology> {
  const password = newPassword();
  const sentinelPassword = newPassword();
  const root = mkdtempSync(join(tmpdir(), 'mimir-sentinel-'));
  const servers: Server[] = [];
  const logs = () => servers.map((s) => `--- port ${s.port}\n${s.output().slice(-1500)}`).join('\n');
  const stop = async () => {
    await Promise.all(servers.map((s) => s.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const masterDir = mkdtempSync(join(root, 'master-'));
    // masterauth on both: after a failover the old master, back, would be the replica.
    const auth = ['--requirepass', password, '--masterauth', password];
    const master = await startServer(masterDir, 'Redis master', password, (port) => [...plain(port, masterDir), ...auth]);
    servers.push(master);
    const replicaDir = mkdtempSync(join(root, 'replica-'));
    const replica = await startServer(replicaDir, 'Redis replica', password, (port) => [...plain(port, replicaDir), ...auth, '--replicaof', HOST, String(master.port)]);
    servers.push(replica);
    await until('the replica in sync with the master', 15_000, async () => parseInfo(await ask<string>(replica.port, 'INFO', 'replication')).get('master_link_status') === 'up', logs);

    const sentinels: Server[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinelDir = mkdtempSync(join(root, `sentinel${i}-`));
      sentinels.push(await startServer(sentinelDir, `sentinel ${i + 1}`, sentinelPassword, (port) => {
        // Sentinel rewrites its configuration file, so each has its own, written for the port it got.
        const conf = join(sentinelDir, 'sentinel.conf');
        writeFileSync(conf, [
          `port ${port}`, `bind ${HOST}`, `dir ${sentinelDir}`,
          `sentinel monitor ${name} ${HOST} ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 2000`,
          `sentinel parallel-syncs ${name} 1`,
          // Clients and the other sentinels authenticate to it; it authenticates to the data nodes and to them.
          `requirepass ${sentinelPassword}`, `sentinel auth-pass ${name} ${password}`, `sentinel sentinel-pass ${sentinelPassword}`, '',
        ].join('\n'));
        return [conf, '--sentinel'];
      }));
      servers.push(sentinels.at(-1)!);
    }
    // Agreement: every sentinel monitors the master, knows its replica and the two other sentinels
    // (they find each other through hello messages on the master, every 2 s).
    await until('three sentinels agreeing on the master, its replica and each other', 30_000, async () => {
      for (const s of sentinels) {
        const m = pairs(await ask<unknown>(s.port, 'SENTINEL', 'MASTER', name));
        if (m.get('flags') !== 'master' || m.get('port') !== String(master.port) || m.get('num-slaves') !== '1' || m.get('num-other-sentinels') !== '2') return false;
      }
      return true;
    }, logs);

    const sentinelAddresses = sentinels.map((s) => ({ host: HOST, port: s.port }));
    const url = `redis://:${password}@${UNUSED_HOST}`;
    return {
      name,
      master: { host: HOST, port: master.port },
      replica: { host: HOST, port: replica.port },
      sentinels: sentinelAddresses,
      password, sentinelPassword, url,
      env: {
        MIMIR_REDIS_URL: url,
        MIMIR_REDIS_SENTINELS: sentinelAddresses.map((a) => `${a.host}:${a.port}`).join(','),
        MIMIR_REDIS_SENTINEL_NAME: name,
        MIMIR_REDIS_SENTINEL_PASSWORD: sentinelPassword,
      },
      async currentMaster() {
        let lastError: unknown;
        for (const s of sentinels) {
          if (s.child.exitCode !== null) continue;
          try {
            const [host, port] = await ask<[string, string]>(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name);
            return { host, port: Number(port) };
          } catch (err) {
            lastError = err;
          }
        }
        throw new Error(`no sentinel answers: ${(lastError as Error | undefined)?.message}`);
      },
      killMaster: () => master.kill(),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Three masters sharing the 16384 slots, no replicas. Each node gets its own cluster bus port. */
export async function startCluster(): Promise<ClusterTopology> {
  const password = newPassword();
  const root = mkdtempSync(join(tmpdir(), 'mimir-cluster-'));
  const servers: Server[] = [];
  const logs = () => servers.map((s) => `--- port ${s.port}\n${s.output().slice(-1500)}`).join('\n');
  const stop = async () => {
    await Promise.all(servers.map((s) => s.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(root, `node${i}-`));
      // The bus port defaults to port + 10000, which may be taken or above 65535: pick a free one.
      servers.push(await startServer(dir, `cluster node ${i + 1}`, password, async (port) => [
        ...plain(port, dir), '--requirepass', password, '--masterauth', password, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
        '--cluster-port', String(await freePort()), '--cluster-node-timeout', '2000',
      ]));
    }
    const create = spawnSync(redisCli(), ['--cluster', 'create', ...servers.map((s) => `${HOST}:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8', timeout: 60_000, env: { ...process.env, REDISCLI_AUTH: password }, // not on the command line
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed (${create.status ?? create.signal}): ${create.stdout}${create.stderr}${create.error?.message ?? ''}`);
    await until('every cluster node reporting cluster_state:ok with 3 known nodes', 30_000, async () => {
      for (const s of servers) {
        const info = parseInfo(await ask<string>(s.port, 'CLUSTER', 'INFO'));
        if (info.get('cluster_state') !== 'ok' || info.get('cluster_known_nodes') !== '3' || info.get('cluster_slots_ok') !== '16384') return false;
      }
      return true;
    }, logs);
    const nodes = servers.map((s) => ({ host: HOST, port: s.port }));
    const url = `redis://:${password}@${UNUSED_HOST}`;
    return { nodes, password, url, env: { MIMIR_REDIS_URL: url, MIMIR_REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(',') }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
