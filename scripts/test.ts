/**
 * `npm test`: provides Redis, PostgreSQL and Chromium, type-checks, lints, then runs every test/**\/*.test.ts.
 *   npm test -- test/storage         only test files whose path contains one of the arguments
 * Environment:
 *   MIMIR_TEST_REDIS_URL=...         use this Redis as-is instead of looking for one
 *   MIMIR_TEST_FORCE_OWN_REDIS=1     always start a private redis-server on a free port
 *   MIMIR_TEST_POSTGRES_URL=...      use this PostgreSQL (its user may CREATE DATABASE) instead of looking for one
 *   MIMIR_TEST_FORCE_OWN_POSTGRES=1  always start a private PostgreSQL cluster on a free port
 *   MIMIR_TEST_POSTGRES_BIN=/dir     initdb and postgres from here (default /usr/lib/postgresql/<newest>/bin, PATH)
 *   MIMIR_TEST_CHROMIUM=/path        use this browser instead of /usr/bin/chromium
 *   MIMIR_TEST_REDIS_SERVER=/path    redis-server for the Sentinel and Cluster tests (default: on PATH)
 *   MIMIR_TEST_REDIS_CLI=/path       redis-cli that creates their Cluster (default: on PATH)
 *   MIMIR_TEST_CONCURRENCY=N         test files run in parallel (default 2)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, sep } from 'node:path';
import { findPostgresBin, postgresAnswers, privateCluster, type PrivateCluster } from '../test/helpers/postgres.ts';
import { dropRedisPrefix } from '../bench/lib/redis.ts';

const root = join(import.meta.dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const log = (message: string) => console.log(`[test] ${message}`);
const isRoot = process.getuid?.() === 0;

let ownRedis: ChildProcess | undefined;
let ownPostgres: PrivateCluster | undefined;
// Whatever way we leave, the Redis we started goes with us (the 'exit' hook is the last resort; the
// PostgreSQL cluster has its own, in test/helpers/postgres.ts).
process.on('exit', () => ownRedis?.kill('SIGTERM'));
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => void Promise.all([stopOwnRedis(), ownPostgres?.cleanup()]).finally(() => process.exit(code)));
}

class Fatal extends Error {}

/** Stops our Redis and waits for it, so it is reaped here rather than left to init. */
async function stopOwnRedis(): Promise<void> {
  const child = ownRedis;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
}

function fail(message: string): never {
  throw new Fatal(message);
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env, stdio: 'inherit' });
    child.on('error', (err) => {
      console.error(`[test] cannot run ${command}: ${err.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Raw RESP inline command, so no client library is needed: a Redis without auth answers `+PONG`. */
function redisAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

let aptUpdated = false;
async function aptInstall(pkg: string): Promise<boolean> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    log('apt-get update');
    if ((await run('apt-get', ['update'], env)) !== 0) return false;
    aptUpdated = true;
  }
  log(`apt-get install -y ${pkg}`);
  return (await run('apt-get', ['install', '-y', pkg], env)) === 0;
}

const canApt = () => isRoot && onPath('apt-get') !== undefined;

async function startOwnRedis(server: string): Promise<string> {
  const port = await freePort();
  log(`starting ${server} on port ${port}`);
  let output = '';
  const child = spawn(
    server,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', tmpdir()],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  ownRedis = child;
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  for (let waited = 0; waited < 10_000; waited += 100) {
    if (await redisAnswers(port)) return `redis://127.0.0.1:${port}`;
    if (await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(r, 100, false))])) {
      fail(`redis-server exited before answering PING:\n${output}`);
    }
  }
  fail(`redis-server did not answer PING on port ${port} within 10 s:\n${output}`);
}

async function ensureRedis(): Promise<string> {
  const preset = process.env.MIMIR_TEST_REDIS_URL;
  const forceOwn = process.env.MIMIR_TEST_FORCE_OWN_REDIS === '1';
  if (preset && !forceOwn) {
    log(`using Redis from MIMIR_TEST_REDIS_URL`);
    return preset;
  }
  if (!forceOwn && (await redisAnswers(6379))) {
    log('using the Redis answering on 127.0.0.1:6379');
    return 'redis://127.0.0.1:6379';
  }
  let server = onPath('redis-server');
  if (!server && canApt()) {
    log('redis-server not found; installing it');
    if (!(await aptInstall('redis-server'))) fail('apt-get could not install redis-server');
    server = onPath('redis-server') ?? '/usr/bin/redis-server';
  }
  if (!server) {
    fail('the tests need Redis: install redis-server (e.g. `apt-get install redis-server`), or run one on 127.0.0.1:6379, or set MIMIR_TEST_REDIS_URL');
  }
  return startOwnRedis(server);
}

/**
 * PostgreSQL: initdb/postgres are needed in any case (fault tests start clusters of their own, to
 * kill them); the shared server is the one on 127.0.0.1:5432 when its user (postgres, else ours)
 * may create databases, else a private cluster on a free port.
 */
async function ensurePostgres(): Promise<{ url: string; bin: string }> {
  let bin = findPostgresBin();
  if (!bin && process.env.MIMIR_TEST_POSTGRES_BIN) fail(`MIMIR_TEST_POSTGRES_BIN=${process.env.MIMIR_TEST_POSTGRES_BIN} holds no initdb and postgres`);
  if (!bin && canApt()) {
    log('PostgreSQL (initdb, postgres) not found; installing it');
    if (!(await aptInstall('postgresql'))) fail('apt-get could not install postgresql');
    bin = findPostgresBin();
  }
  if (!bin) {
    fail('the tests need PostgreSQL\'s server binaries (initdb, postgres): install postgresql (e.g. `apt-get install postgresql`), '
      + 'or set MIMIR_TEST_POSTGRES_BIN to the directory holding them');
  }
  log(`PostgreSQL binaries: ${bin}`);
  const preset = process.env.MIMIR_TEST_POSTGRES_URL;
  const forceOwn = process.env.MIMIR_TEST_FORCE_OWN_POSTGRES === '1';
  if (preset && !forceOwn) {
    log('using PostgreSQL from MIMIR_TEST_POSTGRES_URL');
    return { url: preset, bin };
  }
  if (!forceOwn) {
    const users = [...new Set(['postgres', process.env.USER ?? (isRoot ? 'root' : '')].filter(Boolean))];
    for (const user of users) {
      const url = `postgres://${user}@127.0.0.1:5432/postgres`;
      if (await postgresAnswers(url)) {
        log(`using the PostgreSQL answering on 127.0.0.1:5432 as ${user}`);
        return { url, bin };
      }
    }
  }
  log('starting a private PostgreSQL cluster');
  process.env.MIMIR_TEST_POSTGRES_BIN = bin;
  ownPostgres = await privateCluster();
  log(`PostgreSQL on port ${ownPostgres.port}`);
  return { url: ownPostgres.url, bin };
}

/**
 * The Sentinel and Cluster tests start their own servers, whatever Redis answers on 6379: sentinels
 * are `redis-server --sentinel` (Debian's redis-sentinel is a link to the same binary), the cluster
 * is created with redis-cli (package redis-tools), and each node's bus port is set with
 * `--cluster-port`, which needs Redis 7.
 */
async function ensureRedisBinaries(): Promise<{ server: string; cli: string }> {
  const find = async (variable: string, command: string, pkg: string): Promise<string> => {
    const preset = process.env[variable];
    if (preset) {
      if (!existsSync(preset)) fail(`${variable}=${preset} does not exist`);
      return preset;
    }
    let found = onPath(command);
    if (!found && canApt()) {
      log(`${command} not found; installing ${pkg}`);
      if (!(await aptInstall(pkg))) fail(`apt-get could not install ${pkg}`);
      found = onPath(command);
    }
    if (!found) fail(`the Redis Sentinel and Cluster tests need ${command}: install ${pkg} (as root: apt-get install ${pkg}), or set ${variable}`);
    return found;
  };
  const server = await find('MIMIR_TEST_REDIS_SERVER', 'redis-server', 'redis-server');
  const cli = await find('MIMIR_TEST_REDIS_CLI', 'redis-cli', 'redis-tools');
  const version = spawnSync(server, ['--version'], { encoding: 'utf8' }).stdout ?? '';
  const major = Number(/v=(\d+)\./.exec(version)?.[1]);
  if (!(major >= 7)) fail(`${server} is not Redis 7 or newer (${version.trim() || 'no version'}); the Sentinel and Cluster tests need it`);
  return { server, cli };
}

/** The deployment test checks the systemd unit with systemd-analyze and systemd-sysusers (package systemd). */
async function ensureSystemdTools(): Promise<void> {
  if (onPath('systemd-analyze') && onPath('systemd-sysusers')) return;
  if (!canApt()) fail('the deployment test needs systemd-analyze and systemd-sysusers: install systemd (as root: apt-get install systemd)');
  log('systemd-analyze not found; installing systemd');
  if (!(await aptInstall('systemd')) || !onPath('systemd-analyze')) fail('apt-get could not install systemd (systemd-analyze, systemd-sysusers)');
}

async function ensureChromium(): Promise<string> {
  const chromium = process.env.MIMIR_TEST_CHROMIUM ?? '/usr/bin/chromium';
  if (existsSync(chromium)) return chromium;
  if (chromium !== '/usr/bin/chromium') fail(`MIMIR_TEST_CHROMIUM=${chromium} does not exist`);
  if (!canApt()) fail('the browser tests need Chromium at /usr/bin/chromium: install the `chromium` package (as root: apt-get install chromium), or set MIMIR_TEST_CHROMIUM');
  log('Chromium not found; installing it');
  if (!(await aptInstall('chromium')) || !existsSync(chromium)) fail('apt-get could not install chromium; install it by hand or set MIMIR_TEST_CHROMIUM');
  return chromium;
}

function testFiles(filters: string[]): string[] {
  const dir = join(root, 'test');
  const all = existsSync(dir)
    ? readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .filter((file) => file.endsWith('.test.ts'))
        .map((file) => relative(root, join(dir, file)).split(sep).join('/'))
        .sort()
    : [];
  const wanted = filters.map((f) => f.replace(/^\.\//, '').replace(/\/+$/, ''));
  return wanted.length === 0 ? all : all.filter((file) => wanted.some((f) => file.includes(f)));
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = testFiles(filters);
  if (files.length === 0) fail(filters.length ? `no test file matches ${filters.join(' ')}` : 'no test/**/*.test.ts files');

  log('checking Redis');
  const redisUrl = await ensureRedis();
  const redisBinaries = await ensureRedisBinaries();
  log(`Sentinel and Cluster tests: ${redisBinaries.server}, ${redisBinaries.cli}`);
  log('checking PostgreSQL');
  const postgres = await ensurePostgres();
  log('checking Chromium');
  const chromium = await ensureChromium();
  log(`Chromium: ${chromium}`);
  if (files.some((file) => file.includes('test/package/deploy'))) {
    log('checking systemd-analyze');
    await ensureSystemdTools();
  }

  log('tsc --noEmit');
  if ((await run(bin('tsc'), ['--noEmit'])) !== 0) fail('type check failed');
  log('eslint .');
  if ((await run(bin('eslint'), ['.'])) !== 0) fail('lint failed');
  // No import cycles among src/ files (value imports; type-only imports do not load a module).
  log('dpdm: import cycles');
  if ((await run(bin('dpdm'), ['--no-warning', '--no-tree', '--transform', '--exit-code', 'circular:1', 'src/**/*.ts'])) !== 0) fail('an import cycle among src/ files (see above)');

  const concurrency = process.env.MIMIR_TEST_CONCURRENCY ?? '2';
  const masked = (url: string) => url.replace(/\/\/([^@/:]*):[^@/]*@/, '//$1:***@');
  // This run's tests' Redis keys (test/helpers/hub.ts newRedisPrefix): dropped when it ends, and
  // only they (another run, or a single test file, may be using the same Redis meanwhile).
  const namespace = `mimir-test:run-${randomBytes(6).toString('hex')}:`;
  log(`running ${files.length} test file(s), concurrency ${concurrency}, Redis ${redisUrl.replace(/\/\/[^@/]*@/, '//***@')}, PostgreSQL ${masked(postgres.url)}`);
  const code = await run(
    process.execPath,
    ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
    {
      ...process.env, MIMIR_TEST_REDIS_URL: redisUrl, MIMIR_TEST_CHROMIUM: chromium,
      MIMIR_TEST_POSTGRES_URL: postgres.url, MIMIR_TEST_POSTGRES_BIN: postgres.bin,
      MIMIR_TEST_REDIS_SERVER: redisBinaries.server, MIMIR_TEST_REDIS_CLI: redisBinaries.cli,
      MIMIR_TEST_REDIS_NAMESPACE: namespace,
    },
  );
  log(code === 0 ? 'all tests passed' : `tests failed (exit ${code})`);
  // What this run's hubs left in a Redis they share with others (the machine's) goes: hubs sharing a
  // prefix across instances cannot drop it themselves, and every SCAN of the next run pays for it.
  // Only this run's namespace: all of mimir-test:* took the keys of tests running meanwhile elsewhere.
  if (!ownRedis) {
    await dropRedisPrefix(redisUrl, namespace).then(
      () => log(`removed this run's ${namespace}* keys from Redis`),
      (e: unknown) => log(`could not remove this run's ${namespace}* keys from Redis: ${(e as Error).message}`),
    );
  }
  return code;
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`[test] FAILED: ${err instanceof Fatal ? err.message : (err as Error).stack}`);
  process.exitCode = 1;
} finally {
  await Promise.all([stopOwnRedis(), ownPostgres?.cleanup()]);
}
process.exit();
