/**
 * PostgreSQL for tests, real servers only.
 * - `freshDatabase()`: a database of the test's own on MIMIR_TEST_POSTGRES_URL (scripts/test.ts
 *   provides that server: the one on 127.0.0.1:5432, or a private cluster), so test files running in
 *   parallel never share one. Dropped by `drop()`.
 * - `privateCluster()`: a PostgreSQL of the test's own (initdb into a temporary directory, on a free
 *   port) that the test may kill -9, pause (SIGSTOP) and restart; removed by `cleanup()` or at exit.
 * As root (CI), initdb and postgres refuse to run: they run as the `postgres` OS user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chownSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { freePort } from './port.ts';

export const POSTGRES_URL = process.env.MIMIR_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const TO_FIX = 'Run `npm test` (scripts/test.ts provides PostgreSQL), or set MIMIR_TEST_POSTGRES_URL to a server where this user may CREATE DATABASE.';

export interface FreshDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database with a unique name on the test server. */
export async function freshDatabase(): Promise<FreshDatabase> {
  const name = `mimir_test_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    // FORCE (PostgreSQL 13+): a store a failed test left open must not keep the database alive.
    drop: async () => void await admin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
  };
}

/** One statement on the test server's maintenance database; unreachable fails loudly with what to do. */
export async function admin(sql: string, values: unknown[] = [], url = POSTGRES_URL): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is required for this test and ${redact(url)} is unreachable (${describe(err)}). ${TO_FIX}`, { cause: err });
  }
  try {
    return await client.query(sql, values);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether `url` answers and its user may create databases (what the tests need). */
export async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ ok: boolean }>('SELECT rolsuper OR rolcreatedb AS ok FROM pg_roles WHERE rolname = current_user');
    return rows[0]?.ok === true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The directory holding initdb and postgres: MIMIR_TEST_POSTGRES_BIN, else Debian's
 * /usr/lib/postgresql/<newest>/bin, else wherever initdb is on PATH; undefined when none.
 */
export function findPostgresBin(): string | undefined {
  const usable = (dir: string) => ['initdb', 'postgres'].every((b) => executable(join(dir, b)));
  const preset = process.env.MIMIR_TEST_POSTGRES_BIN;
  if (preset) return usable(preset) ? preset : undefined;
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (usable(join(debian, v, 'bin'))) return join(debian, v, 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'initdb'))) return usable(dir) ? dir : undefined;
  }
  return undefined;
}

export interface PrivateCluster {
  /** Superuser `postgres`, trust authentication, database `postgres`. */
  readonly url: string;
  readonly port: number;
  /** Whether the server is running (started and not killed or stopped). */
  readonly running: boolean;
  /** kill -9 of the postmaster and every backend: the server is gone at once, nothing shut down cleanly. */
  kill(): Promise<void>;
  /** SIGSTOP of every process: connections stay open and nothing answers (a blackhole). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Starts it again on the same port and data (after kill() or stop()). */
  start(): Promise<void>;
  /** Fast shutdown. */
  stop(): Promise<void>;
  /** Stops it and removes its directory. */
  cleanup(): Promise<void>;
}

/** initdb into a temporary directory and start it on a free port; `onOutput` gets the server's log. */
export async function privateCluster(options: { onOutput?: (text: string) => void } = {}): Promise<PrivateCluster> {
  const bin = findPostgresBin();
  if (!bin) {
    throw new Error('this test starts a PostgreSQL of its own and finds no initdb/postgres (looked in MIMIR_TEST_POSTGRES_BIN, '
      + '/usr/lib/postgresql/*/bin and PATH). Run `npm test`, which installs Debian\'s postgresql when it can, or install it (apt-get install postgresql).');
  }
  const owner = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'mimir-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const asOwner = { cwd: dir, env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' }, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) };
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], { ...asOwner, encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (exit ${init.status ?? init.signal}${init.error ? `, ${init.error.message}` : ''}):\n${init.stdout}${init.stderr}`);
  }
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let output = '';
  const exitHook = () => {
    for (const pid of clusterPids(child)) signal(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', exitHook);

  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) return;
    const server = spawn(join(bin, 'postgres'), [
      '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
      // No fsync (the OS keeps what a killed server wrote); commits are still written at once, so a
      // kill -9 loses nothing committed, as on a real server.
      '-c', 'fsync=off', '-c', 'full_page_writes=off',
    ], { ...asOwner, stdio: ['ignore', 'pipe', 'pipe'] });
    child = server;
    for (const stream of [server.stdout, server.stderr]) {
      stream.on('data', (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-20_000);
        options.onOutput?.(chunk.toString());
      });
    }
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (server.exitCode !== null || server.signalCode !== null) throw new Error(`postgres exited (${server.exitCode ?? server.signalCode}) before accepting connections:\n${output}`);
      if (await postgresAnswers(url)) return;
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections on port ${port} within 20 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const exited = async (timeoutMs: number) => {
    const server = child;
    if (!server || server.exitCode !== null || server.signalCode !== null) return true;
    return Promise.race([
      new Promise<boolean>((resolve) => server.once('exit', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(resolve, timeoutMs, false)),
    ]);
  };

  const cluster: PrivateCluster = {
    url,
    port,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async kill() {
      // The postmaster first, so it restarts nothing; then each backend (every one is a process
      // group of its own, so a group signal would miss them).
      const pids = clusterPids(child);
      for (const pid of pids) signal(pid, 'SIGKILL');
      await exited(10_000);
      for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
    },
    pause() {
      for (const pid of clusterPids(child)) signal(pid, 'SIGSTOP');
    },
    resume() {
      for (const pid of clusterPids(child).reverse()) signal(pid, 'SIGCONT');
    },
    start,
    async stop() {
      if (!cluster.running) return;
      for (const pid of clusterPids(child)) signal(pid, 'SIGCONT');
      child!.kill('SIGINT'); // fast shutdown: backends end, clients get a clean error
      if (!(await exited(10_000))) await cluster.kill();
    },
    async cleanup() {
      await cluster.stop().catch(() => cluster.kill());
      process.off('exit', exitHook);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (e) {
    await cluster.kill();
    process.off('exit', exitHook);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return cluster;
}

/** The postmaster and its children (backends and auxiliary processes), postmaster first. */
function clusterPids(child: ChildProcess | undefined): number[] {
  const root = child?.pid;
  if (root === undefined || child!.exitCode !== null || child!.signalCode !== null) return [];
  const pids = [root];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === root) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'; // a zombie holds nothing
  } catch {
    return false;
  }
}

/** As root, the `postgres` OS user the server must run as (initdb refuses root); undefined otherwise. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) {
    throw new Error('running as root, PostgreSQL must run as the `postgres` OS user, which does not exist: install Debian\'s postgresql package (it creates the user) or `useradd --system postgres`');
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return err.errors.map((e) => describe(e)).join('; ');
  return err instanceof Error ? err.message || String((err as NodeJS.ErrnoException).code) : String(err);
}
