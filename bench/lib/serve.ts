/**
 * Issue 20: the hub as users start it — `node --max-semi-space-size=8 --heap-growing-percent=50 bin/mimir-auth.js serve`, as
 * `npm start` runs it, on each store (the embedded default SQLite, Redis, PostgreSQL), its
 * credentials made with the CLI beforehand, its stdout (the audit log, on by default) to /dev/null.
 * Each /auth/me line is paired with the ceiling line answering that very response (bare node:http,
 * same headers and body, no authentication), at 32 and at 256 connections, in req/s and in server
 * CPU per request.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RefreshTokens } from '../../src/oauth/refresh/refresh-tokens.ts';
import { createStore } from '../../src/storage/index.ts';
import { freshDatabase } from './postgres.ts';
import { dropRedisPrefix } from './redis.ts';
import { load, type LoadResult, type LoadSpec } from './load.ts';
import type { Goal, Row } from './report.ts';
import { cpuSeconds, freePort, startTarget, type Target } from './targets.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'mimir-auth.js');
const run = promisify(execFile);

export type StoreKind = 'sqlite' | 'redis' | 'postgres';

export interface Served {
  store: StoreKind;
  url: string;
  pid: number;
  apiKey: string;
  /** Issued by client_credentials to `account` (role developer). */
  jwt: string;
  account: { clientId: string; clientSecret: string };
  /** With `extras`: a service account with role admin (it may introspect), and a refresh token of the hub for `account`. */
  resourceServer?: { clientId: string; clientSecret: string };
  refreshToken?: string;
  stop(): Promise<void>;
}

/** `env`: added to the hub's environment (MIMIR_JWT_ALGORITHM, MIMIR_UPSTREAM_URL, …). */
export interface ServeExtras { env?: Record<string, string>; extras?: boolean }

export interface ServeOptions {
  redisUrl: string;
  /** A server where this user may CREATE DATABASE. */
  postgresUrl: string;
  seconds: number;
  warmup: number;
  rounds: number;
  log: (line: string) => void;
}

/** `npm start`'s command line: node with the hub's V8 flags, the checkout's bin. */
export const NPM_START = [process.execPath, '--max-semi-space-size=8', '--heap-growing-percent=50', BIN];

/**
 * `mimir-auth serve` as `npm start` runs it (or as `command` starts the CLI: an installed bin), in
 * `dir` with `env` (which sets MIMIR_AUTH_PORT), its stdout to /dev/null; resolves once /ready
 * answers 200.
 */
export async function spawnServe(env: NodeJS.ProcessEnv, dir: string, label: string, command: readonly string[] = NPM_START): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const [exe, ...args] = command as [string, ...string[]];
  const child: ChildProcess = spawn(exe, [...args, 'serve'], { env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 12_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  const url = `http://127.0.0.1:${env.MIMIR_AUTH_PORT}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`serve on ${label} exited (${child.exitCode}): ${stderr}`);
    try { if ((await fetch(`${url}/ready`)).ok) break; } catch { /* not yet */ }
    if (i > 600) { await stop(); throw new Error(`serve on ${label} not ready after 60 s: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, pid: child.pid!, stop };
}

export async function serve(store: StoreKind, o: Pick<ServeOptions, 'redisUrl' | 'postgresUrl'>, x: ServeExtras = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-bench-serve-'));
  const port = await freePort();
  const env: Record<string, string> = {
    ...process.env as Record<string, string>, NODE_ENV: 'production', MIMIR_DATA_DIR: dir, MIMIR_AUTH_PORT: String(port),
    MIMIR_PUBLIC_URL: `http://127.0.0.1:${port}`, MIMIR_AUTH_HOST: '127.0.0.1', ...x.env,
  };
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  const keyPrefix = `mimir-bench-serve:${randomBytes(4).toString('hex')}:`;
  if (store === 'redis') Object.assign(env, { MIMIR_TOKEN_STORAGE: 'redis', MIMIR_REDIS_URL: o.redisUrl, MIMIR_REDIS_KEY_PREFIX: keyPrefix, MIMIR_JWT_SECRET: randomBytes(48).toString('base64url'), MIMIR_SESSION_SECRET: randomBytes(48).toString('base64url') });
  if (store === 'postgres') {
    database = await freshDatabase(o.postgresUrl);
    Object.assign(env, { MIMIR_TOKEN_STORAGE: 'postgres', MIMIR_DATABASE_URL: database.url, MIMIR_JWT_SECRET: randomBytes(48).toString('base64url'), MIMIR_SESSION_SECRET: randomBytes(48).toString('base64url') });
  }
  const cli = async (args: string[]) => JSON.parse((await run(process.execPath, [BIN, ...args, '--json'], { env, cwd: dir })).stdout) as Record<string, string>;
  const key = (await cli(['keys', 'create', '--name', 'bench', '--roles', 'viewer'])).key!;
  const account = await cli(['service-accounts', 'create', '--id', 'bench-svc', '--roles', 'developer']);
  let resourceServer: Served['resourceServer'];
  let refreshToken: string | undefined;
  if (x.extras) {
    // RFC 7662 §2.1: the introspecting caller; the hub asks it for the `introspect` permission (admin holds `*`).
    const rs = await cli(['service-accounts', 'create', '--id', 'bench-resource-server', '--roles', 'admin']);
    resourceServer = { clientId: rs.client_id!, clientSecret: rs.client_secret! };
    refreshToken = await issueRefreshToken(store, { dir, redisUrl: o.redisUrl, keyPrefix, postgresUrl: database?.url });
  }
  const served = await spawnServe(env, dir, store);
  const { url } = served;
  const issued = await fetch(`${url}/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: account.client_id!, client_secret: account.client_secret! }).toString(),
  });
  const jwt = String(((await issued.json()) as { access_token?: string }).access_token);
  return {
    store, url, pid: served.pid, apiKey: key, jwt, account: { clientId: account.client_id!, clientSecret: account.client_secret! },
    ...(resourceServer ? { resourceServer } : {}), ...(refreshToken ? { refreshToken } : {}),
    async stop() {
      await served.stop();
      await database?.drop().catch(() => undefined);
      if (env.MIMIR_REDIS_KEY_PREFIX) await dropRedisPrefix(o.redisUrl, env.MIMIR_REDIS_KEY_PREFIX).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A refresh token of the hub, made by the hub's own code (RefreshTokens.issue, as a sign-in starts a
 * family) on the store `serve` will open, before it starts: no second process holds the store.
 */
async function issueRefreshToken(kind: StoreKind, where: { dir: string; redisUrl: string; keyPrefix: string; postgresUrl: string | undefined }): Promise<string> {
  const store = await createStore(kind === 'sqlite' ? { kind, sqlitePath: join(where.dir, 'mimir-auth.db') }
    : kind === 'redis' ? { kind, redis: { url: where.redisUrl, db: 0, keyPrefix: where.keyPrefix } } : { kind, postgres: { url: where.postgresUrl! } });
  try {
    const issued = await new RefreshTokens(store, { lifetimeSeconds: 30 * 86_400 }).issue({ sub: 'bench-user', clientId: 'bench-svc', scope: 'nodes:read', roles: ['developer'], email: 'bench@example.com' });
    return issued.token;
  } finally {
    await store.close();
  }
}

/**
 * The ceiling for one answer: bare node:http writing exactly the response the hub gave to this
 * request (`init`: a POST's method, headers and body), whatever request it is then sent.
 */
export async function ceilingFor(url: string, headers: Record<string, string>, init: { method?: string; body?: string } = {}): Promise<Target> {
  const answer = await fetch(url, { headers, ...init });
  if (!answer.ok) throw new Error(`${init.method ?? 'GET'} ${new URL(url).pathname} answered ${answer.status} ${(await answer.text()).slice(0, 160)}`);
  const kept = [...answer.headers].filter(([k]) => !['date', 'connection', 'keep-alive', 'content-length', 'x-request-id'].includes(k)).flat();
  return startTarget('node-http', { env: { BENCH_RESPONSE: JSON.stringify({ headers: kept, body: await answer.json() }) } });
}

/** A warm-up, then one measured run; `cpuUs` from the server process `pid`'s CPU time over it. */
export async function measured(spec: Omit<LoadSpec, 'seconds'> & { pid: number }, o: Pick<ServeOptions, 'seconds' | 'warmup'>): Promise<LoadResult> {
  const { pid, ...load1 } = spec;
  await load({ ...load1, seconds: o.warmup });
  const before = cpuSeconds(pid);
  const r = await load({ ...load1, seconds: o.seconds });
  const after = cpuSeconds(pid);
  if (before !== undefined && after !== undefined && r.requests > 0) r.cpuUs = ((after - before) * 1e6) / r.requests;
  return r;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Goal 1 of issue 20 for each store and both connection counts: rows (median-throughput run of
 * each line) and goals (median of the rounds' paired ratios: req/s ≥ 0.90× the ceiling, CPU per
 * request ≤ 1.15× the ceiling's).
 */
export async function servedLines(stores: StoreKind[], o: ServeOptions): Promise<{ rows: Row[]; goals: Goal[] }> {
  const rows: Row[] = [];
  const goals: Goal[] = [];
  for (const store of stores) {
    let served: Served;
    try {
      served = await serve(store, o);
    } catch (e) {
      const na = `n/a — ${(e as Error).message.split('\n')[0]!.slice(0, 160)}`;
      o.log(`serve on ${store}: ${na}`);
      rows.push({ id: `serve-${store}`, label: `mimir-auth serve (${store})`, na });
      continue;
    }
    const ceilings: Target[] = [];
    try {
      for (const [credential, headers] of [['API key', { 'x-api-key': served.apiKey }], ['hub JWT', { authorization: `Bearer ${served.jwt}` }]] as const) {
        const me = `${served.url}/auth/me`;
        const ceiling = await ceilingFor(me, headers);
        ceilings.push(ceiling);
        for (const connections of [32, 256]) {
          const label = `serve (${store}) /auth/me, ${credential}, ${connections} conn`;
          const hubRuns: LoadResult[] = [];
          const ceilRuns: LoadResult[] = [];
          for (let round = 0; round < o.rounds; round++) {
            ceilRuns.push(await measured({ url: `${ceiling.url}/auth/me`, headers: {}, connections, pid: ceiling.pid }, o));
            hubRuns.push(await measured({ url: me, headers, connections, pid: served.pid }, o));
            const [c, h] = [ceilRuns.at(-1)!, hubRuns.at(-1)!];
            o.log(`${label}: ${Math.round(h.rps)} req/s, CPU ${h.cpuUs?.toFixed(1) ?? '?'} µs/req; ceiling ${Math.round(c.rps)} req/s, CPU ${c.cpuUs?.toFixed(1) ?? '?'} µs/req${h.failures ? `; ${h.failures} failed` : ''}`);
          }
          const pick = (rs: LoadResult[]) => [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!;
          rows.push({ id: `ceiling-${store}-${credential}-${connections}`, label: `ceiling for ${label.replace('serve ', '')}`, result: pick(ceilRuns) });
          rows.push({ id: `serve-${store}-${credential}-${connections}`, label, result: pick(hubRuns) });
          const rps = median(hubRuns.map((h, i) => h.rps / ceilRuns[i]!.rps));
          const cpu = hubRuns.every((h, i) => h.cpuUs !== undefined && ceilRuns[i]!.cpuUs !== undefined)
            ? median(hubRuns.map((h, i) => h.cpuUs! / ceilRuns[i]!.cpuUs!)) : undefined;
          goals.push({ n: 1, what: `${label}: req/s vs ceiling`, value: rps, min: 0.9, unit: '×' });
          goals.push({ n: 1, what: `${label}: CPU/req vs ceiling`, value: cpu, max: 1.15, unit: '×' });
        }
      }
    } finally {
      await Promise.all(ceilings.map((c) => c.stop()));
      await served.stop();
    }
  }
  return { rows, goals };
}
