/**
 * Issue 20, goal 6: growth with data. For each store, the store is filled step by step to 1 000,
 * 10 000, 100 000 and 1 000 000 API keys and refresh-token records and a tenth as many OAuth
 * clients (records shaped as the hub writes them); at each step `mimir-auth serve` is started on
 * it as users start it and asked, over HTTP, for /auth/me with 200 API keys it has never seen
 * (the uncached first check: a store read), then with the same keys again (cached), and its RSS
 * is read; three starts at each size, the median of each figure kept. Goals: first check at 1 M ≤ 2× at 1 k; cached unchanged (≤ 1.25×); RSS not growing
 * with the store (≤ 1.25× at 1 M what it is at 1 k).
 */
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKeys } from '../../src/api-keys/index.ts';
import { createStore, type Store } from '../../src/storage/index.ts';
import type { Upsert } from '../../src/storage/adapter.ts';
import type { Goal } from './report.ts';
import { freePort } from './targets.ts';
import { spawnServe, type StoreKind } from './serve.ts';
import { freshDatabase } from './postgres.ts';
import { dropRedisPrefix } from './redis.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');
const PROBES = 200;
/** Starts of the hub measured at each size (the median kept). */
const MEASURES = 3;

export interface GrowthOptions {
  sizes: number[];
  redisUrl: string;
  postgresUrl: string;
  log: (line: string) => void;
}

export interface CleanupPoint { store: StoreKind; size: number; expired: number; p99WithoutUs: number; p99WithUs: number; left: number }
export interface GrowthPoint { store: StoreKind; size: number; firstUs: { p50: number; p99: number }; cachedUs: { p50: number; p99: number }; rssMb: number }

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!; };
const sha = (s: string) => createHash('sha256').update(s).digest('base64url');

/**
 * Writes the records of indexes `from` to `to`, shaped as the hub writes them: a batch of `batch`
 * indexes at a time through Store.upsertMany (one transaction per 500 rows on SQLite: a commit per
 * record took 620 s for a million), `inFlight` batches at once.
 */
async function fill(store: Store, from: number, to: number, inFlight: number, batch = 1000): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const records = (start: number, end: number): Upsert[] => {
    const out: Upsert[] = [];
    for (let i = start; i < end; i++) {
      const id = `g${i.toString(36).padStart(15, '0')}`;
      out.push({ kind: 'api_key', id, payload: { id, name: `growth-${i}`, roles: ['viewer'], hash: sha(`k${i}`), createdAt: now } });
      out.push({ kind: 'refresh_token', id: sha(`r${i}`), payload: { familyId: `f${i}`, clientId: 'growth', sub: `user-${i}`, scope: 'nodes:read', createdAt: now, generation: 0 }, ttlSeconds: 30 * 86_400 });
      if (i % 10 === 0) out.push({ kind: 'oauth_client', id: `client-${i}`, payload: { client_id: `client-${i}`, client_name: `growth ${i}`, redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], created_at: now } });
    }
    return out;
  };
  let next = from;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < to) {
      const start = next;
      next = Math.min(to, next + batch);
      await store.upsertMany(records(start, next));
    }
  }));
}

function timed(agent: Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = request(url, { agent, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1000) : reject(new Error(`/auth/me answered ${res.statusCode} ${body.slice(0, 200)}`)));
    });
    req.on('error', reject);
    req.end();
  });
}

async function measure(env: Record<string, string>, dir: string, keys: string[]): Promise<Omit<GrowthPoint, 'store' | 'size'>> {
  const port = await freePort();
  const served = await spawnServe({ ...env, MIMIR_AUTH_PORT: String(port), MIMIR_PUBLIC_URL: `http://127.0.0.1:${port}`, MIMIR_AUTH_HOST: '127.0.0.1' }, dir, 'the filled store');
  const url = `${served.url}/auth/me`;
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    // Warm the process (JIT, connection) on a key the probes do not use.
    for (let i = 0; i < 200; i++) await timed(agent, url, { 'x-api-key': keys[0]! });
    const first: number[] = [];
    for (const key of keys.slice(1)) first.push(await timed(agent, url, { 'x-api-key': key }));
    const cached: number[] = [];
    for (const key of keys.slice(1)) cached.push(await timed(agent, url, { 'x-api-key': key }));
    agent.destroy();
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${served.pid}/status`, 'utf8'))?.[1]) / 1024;
    return { firstUs: { p50: pct(first, 50), p99: pct(first, 99) }, cachedUs: { p50: pct(cached, 50), p99: pct(cached, 99) }, rssMb: rss };
  } finally {
    await served.stop();
  }
}

/**
 * Goal 6's cleanup clause, at the largest size: `expired` refresh-token records past their expiry
 * are added, then `/auth/me` (a cached API key, 4 requests in flight, for `seconds`) is timed on a
 * hub with the cleanup job off and on a hub whose job runs every second (MIMIR_CLEANUP_INTERVAL=1,
 * the purge running during the measurement). That hub then stays up until no expired record is
 * left (counted in the database: the job did purge), or two minutes. Returns p99 in µs without
 * and with, what was left, and how long after its start the hub had purged everything.
 */
async function cleanupLatency(env: Record<string, string>, dir: string, store: Store, key: string, expired: number, seconds: number, left: () => Promise<number>): Promise<{ withoutUs: number; withUs: number; left: number; doneS: number }> {
  let next = 0;
  await Promise.all(Array.from({ length: store.kind === 'sqlite' ? 1 : 64 }, async () => {
    while (next < expired) {
      const i = next++;
      await store.insert('refresh_token', sha(`expired-${i}`), { familyId: `x${i}`, clientId: 'growth', sub: `gone-${i}`, scope: 'nodes:read', createdAt: 0, generation: 0 }, 1);
    }
  }));
  await new Promise((r) => setTimeout(r, 1500)); // every one of them is now past its expiry
  let doneS = Number.NaN;
  const run = async (interval: string) => {
    const port = await freePort();
    const started = performance.now();
    const served = await spawnServe({ ...env, MIMIR_CLEANUP_INTERVAL: interval, MIMIR_AUTH_PORT: String(port), MIMIR_PUBLIC_URL: `http://127.0.0.1:${port}`, MIMIR_AUTH_HOST: '127.0.0.1' }, dir, 'the filled store');
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      const url = `${served.url}/auth/me`;
      for (let i = 0; i < 200; i++) await timed(agent, url, { 'x-api-key': key });
      const times: number[] = [];
      const end = performance.now() + seconds * 1000;
      await Promise.all(Array.from({ length: 4 }, async () => { while (performance.now() < end) times.push(await timed(agent, url, { 'x-api-key': key })); }));
      agent.destroy();
      // The job purges in the background at its own pace (SQLite: a worker that rests half the
      // time): the hub stays up until it has removed every expired record, or two minutes.
      if (interval !== '0') {
        for (const until = performance.now() + 120_000; performance.now() < until && await left() > 0;) await new Promise((r) => setTimeout(r, 500));
        doneS = (performance.now() - started) / 1000;
      }
      return pct(times, 99);
    } finally {
      await served.stop();
    }
  };
  const withoutUs = await run('0');
  const withUs = await run('1');
  const remaining = await left();
  await store.purgeExpired();
  return { withoutUs, withUs, left: remaining, doneS };
}

/** Expired records still in the store (SQLite and PostgreSQL: the rows the cleanup job removes). */
async function expiredLeft(kind: StoreKind, where: { sqlitePath?: string; postgresUrl?: string | undefined }): Promise<number> {
  const now = Math.floor(Date.now() / 1000);
  if (kind === 'sqlite') {
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(where.sqlitePath!, { readOnly: true, timeout: 5000 });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?').get(now) as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: where.postgresUrl });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>('SELECT COUNT(*) AS n FROM mimir_auth.records WHERE expires_at IS NOT NULL AND expires_at <= $1', [now])).rows[0]!.n);
  } finally {
    await client.end();
  }
}

export async function growth(stores: StoreKind[], o: GrowthOptions): Promise<{ points: GrowthPoint[]; goals: Goal[] }> {
  const points: GrowthPoint[] = [];
  const goals: Goal[] = [];
  const cleanups: CleanupPoint[] = [];
  for (const kind of stores) {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-bench-growth-'));
    const env: Record<string, string> = { ...process.env as Record<string, string>, NODE_ENV: 'production', MIMIR_DATA_DIR: dir, MIMIR_LOG_LEVEL: 'warn' };
    let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;
    let store: Store | undefined;
    try {
      if (kind === 'sqlite') {
        store = await createStore({ kind, sqlitePath: join(dir, 'mimir-auth.db') });
      } else if (kind === 'redis') {
        const keyPrefix = `mimir-bench-growth:${randomBytes(4).toString('hex')}:`;
        Object.assign(env, { MIMIR_TOKEN_STORAGE: 'redis', MIMIR_REDIS_URL: o.redisUrl, MIMIR_REDIS_KEY_PREFIX: keyPrefix, MIMIR_JWT_SECRET: randomBytes(48).toString('base64url'), MIMIR_SESSION_SECRET: randomBytes(48).toString('base64url') });
        store = await createStore({ kind, redis: { url: o.redisUrl, db: 0, keyPrefix } });
      } else {
        database = await freshDatabase(o.postgresUrl, 'mimir_bench_growth');
        Object.assign(env, { MIMIR_TOKEN_STORAGE: 'postgres', MIMIR_DATABASE_URL: database.url, MIMIR_JWT_SECRET: randomBytes(48).toString('base64url'), MIMIR_SESSION_SECRET: randomBytes(48).toString('base64url') });
        store = await createStore({ kind, postgres: { url: database.url } });
      }
      // The probes: real keys, made by the hub's own code, present at every size.
      const apiKeys = new ApiKeys(store);
      const keys: string[] = [];
      for (let i = 0; i <= PROBES; i++) keys.push((await apiKeys.create({ name: `probe-${i}`, roles: ['viewer'] })).key);
      let filled = 0;
      for (const size of o.sizes) {
        const t0 = performance.now();
        await fill(store, filled, size, kind === 'sqlite' ? 1 : 8);
        filled = size;
        o.log(`growth ${kind}: ${size.toLocaleString('en')} API keys and refresh tokens, ${(size / 10).toLocaleString('en')} clients (filled in ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        // Three starts of the hub, each with its caches empty: the median of each figure (one start's
        // 200 probes on a shared 2-core VM moved by 2-4x from one run to the next).
        const runs: Array<Awaited<ReturnType<typeof measure>>> = [];
        for (let r = 0; r < MEASURES; r++) runs.push(await measure(env, dir, keys));
        const mid = (f: (x: Awaited<ReturnType<typeof measure>>) => number) => pct(runs.map(f), 50);
        const m = {
          firstUs: { p50: mid((x) => x.firstUs.p50), p99: mid((x) => x.firstUs.p99) },
          cachedUs: { p50: mid((x) => x.cachedUs.p50), p99: mid((x) => x.cachedUs.p99) },
          rssMb: mid((x) => x.rssMb),
        };
        points.push({ store: kind, size, ...m });
        o.log(`  first check p50 ${m.firstUs.p50.toFixed(0)} µs p99 ${m.firstUs.p99.toFixed(0)} µs; cached p50 ${m.cachedUs.p50.toFixed(0)} µs; RSS ${m.rssMb.toFixed(0)} MB`);
      }
      const at = (size: number) => points.find((p) => p.store === kind && p.size === size)!;
      const small = at(o.sizes[0]!);
      const large = at(o.sizes.at(-1)!);
      const span = `${large.size.toLocaleString('en')} vs ${small.size.toLocaleString('en')} records`;
      goals.push({ n: 6, what: `${kind}: uncached first check p50, ${span}`, value: large.firstUs.p50 / small.firstUs.p50, max: 2, unit: '×' });
      goals.push({ n: 6, what: `${kind}: cached check p50, ${span}`, value: large.cachedUs.p50 / small.cachedUs.p50, max: 1.25, unit: '×' });
      goals.push({ n: 6, what: `${kind}: hub RSS, ${span}`, value: large.rssMb / small.rssMb, max: 1.25, unit: '×' });
      const expired = Math.max(1_000, Math.round(large.size / 10));
      const what = `${kind}: p99 while cleanup purges ${expired.toLocaleString('en')} expired records, vs without`;
      if (kind === 'redis') {
        goals.push({ n: 6, what, value: undefined, unit: '×', na: 'n/a — Redis expires records itself; the hub runs no cleanup job on it' });
      } else {
        const c = await cleanupLatency(env, dir, store, keys[0]!, expired, 8, () => expiredLeft(kind, { sqlitePath: join(dir, 'mimir-auth.db'), postgresUrl: database?.url }));
        o.log(`  cleanup of ${expired.toLocaleString('en')} expired records: /auth/me p99 ${c.withUs.toFixed(0)} µs while it runs, ${c.withoutUs.toFixed(0)} µs without; all purged ${c.doneS.toFixed(0)} s after the hub started, ${c.left} left`);
        cleanups.push({ store: kind, size: large.size, expired, p99WithoutUs: c.withoutUs, p99WithUs: c.withUs, left: c.left });
        goals.push({
          n: 6, what, value: c.left === 0 ? c.withUs / c.withoutUs : undefined, max: 2, unit: '×',
          ...(c.left === 0 ? {} : { na: `n/a — the hub's cleanup job left ${c.left} expired records 2 minutes after it started` }),
        });
      }
    } catch (e) {
      o.log(`growth ${kind}: n/a — ${(e as Error).message.split('\n')[0]}`);
      goals.push({ n: 6, what: `${kind}: growth with data`, value: undefined, unit: '×', na: `n/a — ${(e as Error).message.split('\n')[0]!.slice(0, 120)}` });
    } finally {
      await store?.close().catch(() => undefined);
      await database?.drop().catch(() => undefined);
      if (kind === 'redis' && env.MIMIR_REDIS_KEY_PREFIX) await dropRedisPrefix(o.redisUrl, env.MIMIR_REDIS_KEY_PREFIX).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  writeGrowth(points, cleanups);
  return { points, goals };
}


/** bench/results/growth.json, and growth.svg: first-check p50 against the store's size, one line per store (log x). */
function writeGrowth(points: GrowthPoint[], cleanups: CleanupPoint[]): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'growth.json'), JSON.stringify({ timestamp: new Date().toISOString(), points, cleanups }, null, 2) + '\n');
  const W = 720, H = 360, left = 70, right = 150, top = 40, bottom = 50;
  const sizes = [...new Set(points.map((p) => p.size))].sort((a, b) => a - b);
  const maxY = Math.max(1, ...points.map((p) => Math.max(p.firstUs.p50, p.cachedUs.p50))) * 1.15;
  const x = (s: number) => left + (sizes.length <= 1 ? 0 : (Math.log10(s) - Math.log10(sizes[0]!)) / (Math.log10(sizes.at(-1)!) - Math.log10(sizes[0]!))) * (W - left - right);
  const y = (v: number) => H - bottom - (v / maxY) * (H - top - bottom);
  const colours: Record<string, string> = { sqlite: '#1565c0', redis: '#c62828', postgres: '#2e7d32' };
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold">/auth/me with an API key: p50 µs (client side, one connection) against records in the store</text>`];
  for (const s of sizes) out.push(`<line x1="${x(s)}" y1="${top}" x2="${x(s)}" y2="${H - bottom}" stroke="#eee"/>`, `<text x="${x(s)}" y="${H - bottom + 18}" text-anchor="middle">${s.toLocaleString('en')}</text>`);
  for (let v = 0; v <= maxY; v += Math.max(50, Math.round(maxY / 5 / 50) * 50)) out.push(`<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end" fill="#555">${v}</text>`, `<line x1="${left}" y1="${y(v)}" x2="${W - right}" y2="${y(v)}" stroke="#f3f3f3"/>`);
  let legend = top;
  for (const store of [...new Set(points.map((p) => p.store))]) {
    const mine = points.filter((p) => p.store === store);
    for (const [which, dash] of [['firstUs', ''], ['cachedUs', ' stroke-dasharray="4 3"']] as const) {
      out.push(`<polyline fill="none" stroke="${colours[store]}" stroke-width="2"${dash} points="${mine.map((p) => `${x(p.size).toFixed(1)},${y(p[which].p50).toFixed(1)}`).join(' ')}"/>`);
      out.push(`<text x="${W - right + 10}" y="${legend += 16}" fill="${colours[store]}">${store} ${which === 'firstUs' ? 'first check' : 'cached'}</text>`);
    }
  }
  out.push('</svg>');
  writeFileSync(join(RESULTS, 'growth.svg'), out.join('\n') + '\n');
}

