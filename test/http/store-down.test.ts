/**
 * Issue 18, item 4: a store that cannot be reached is a 503 with `Retry-After`, fast — never a
 * 500, never a crash — and the hub recovers by itself. Faults for real: the network between the
 * hub and Redis cut or silently blackholed (a TCP proxy), and a Redis process killed (and started
 * again on its append-only file) or paused (SIGSTOP).
 *
 * Measured before: refresh, key creation, introspection, the proxy and /auth/me answered 500
 * `server_error` after blocking 2.4–4 s each, with no Retry-After; /ready took ~4 s.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort, REDIS_URL, startHub, type TestHub } from '../helpers/hub.ts';
import { basic, get, login, postForm, postJson, type Reply } from '../helpers/http.ts';
import { startSlowUpstream, type SlowUpstream } from '../helpers/slow-upstream.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** The issue's bound is 1 s; the assertion leaves room for a loaded machine. */
const FAST_MS = 1500;

/** What a hub's credentials are, made before the fault; none of them used on the hub yet (nothing cached). */
interface Fixtures {
  admin: string;
  apiKey: string;
  refresh: string;
  introspector: { id: string; secret: string };
  issuer: { id: string; secret: string };
}

async function fixtures(t: TestHub): Promise<Fixtures> {
  const admin = (await t.hub.apiKeys.create({ name: 'admin', roles: ['admin'] })).key;
  const apiKey = (await t.hub.apiKeys.create({ name: 'reader', roles: ['admin'] })).key;
  const introspector = await t.hub.serviceAccounts.create({ clientId: 'introspector', roles: ['admin'] });
  const issuer = await t.hub.serviceAccounts.create({ clientId: 'issuer', roles: ['developer'] });
  return {
    admin, apiKey, refresh: await login(t),
    introspector: { id: 'introspector', secret: introspector.clientSecret },
    issuer: { id: 'issuer', secret: issuer.clientSecret },
  };
}

/** Every request of the issue's list, at once; each with how long it took. */
async function everyRequest(t: TestHub, f: Fixtures): Promise<Record<string, Reply & { ms: number }>> {
  const timed = async (p: () => Promise<Reply>) => { const start = performance.now(); const r = await p(); return { ...r, ms: performance.now() - start }; };
  const entries = await Promise.all(Object.entries({
    refresh: () => postJson(`${t.url}/auth/refresh`, { refresh_token: f.refresh }),
    'api key creation': () => postJson(`${t.url}/auth/admin/api-keys`, { name: 'during', roles: ['developer'] }, { 'x-api-key': f.admin }),
    introspection: () => postForm(`${t.url}/auth/introspect`, { token: f.refresh }, basic(f.introspector.id, f.introspector.secret)),
    'client credentials': () => postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials' }, basic(f.issuer.id, f.issuer.secret)),
    proxy: () => get(`${t.url}/api/nodes/n1`, { 'x-api-key': f.apiKey }),
    '/auth/me': () => get(`${t.url}/auth/me`, { 'x-api-key': f.apiKey }),
  }).map(async ([name, request]) => [name, await timed(request)] as const));
  return Object.fromEntries(entries);
}

async function assertUnavailableFast(t: TestHub, f: Fixtures): Promise<void> {
  const answers = await everyRequest(t, f);
  for (const [name, r] of Object.entries(answers)) {
    assert.equal(r.status, 503, `${name}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, 'temporarily_unavailable', name);
    assert.equal(r.headers.get('retry-after'), '1', `${name} says when to retry`);
    assert.ok(r.ms < FAST_MS, `${name} answered in ${r.ms.toFixed(0)} ms`);
  }
  const readyStart = performance.now();
  const ready = await get(`${t.url}/ready`);
  const readyMs = performance.now() - readyStart;
  assert.equal(ready.status, 503);
  assert.equal(ready.body.error, 'storage_unreachable');
  assert.ok(ready.headers.get('retry-after'));
  assert.ok(readyMs < FAST_MS, `/ready answered in ${readyMs.toFixed(0)} ms`);
  assert.equal((await get(`${t.url}/health`)).status, 200, '/health is liveness: the process runs');
  console.log(`# store down: ${Object.entries(answers).map(([n, r]) => `${n} ${r.ms.toFixed(0)} ms`).join(', ')}, /ready ${readyMs.toFixed(0)} ms`);
}

/** Once /ready says so (no restart), everything works and what was there before the fault still is. */
async function assertRecovered(t: TestHub, f: Fixtures): Promise<void> {
  const start = performance.now();
  while ((await get(`${t.url}/ready`)).status !== 200) {
    assert.ok(performance.now() - start < 15_000, 'ready again within 15 s of the store coming back');
    await sleep(100);
  }
  console.log(`# store back: ready ${(performance.now() - start).toFixed(0)} ms after the store came back`);
  const answers = await everyRequest(t, f);
  assert.equal(answers.refresh!.status, 200, 'the refresh token issued before the outage still works (nothing lost, nothing burnt)');
  assert.equal(answers['api key creation']!.status, 201);
  assert.equal(answers.introspection!.status, 200);
  assert.equal(answers['client credentials']!.status, 200);
  assert.equal(answers.proxy!.status, 200);
  assert.equal(answers['/auth/me']!.status, 200);
  const rotated = answers.refresh!.body.refresh_token as string;
  const introspected = await postForm(`${t.url}/auth/introspect`, { token: rotated }, basic(f.introspector.id, f.introspector.secret));
  assert.equal(introspected.body.active, true);
}

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

describe('store down → 503 fast, and back without a restart (issue 18)', () => {
  let upstream: SlowUpstream;
  before(async () => { upstream = await startSlowUpstream(); });
  after(async () => { await upstream?.close(); });

  for (const fault of ['cut', 'blackhole'] as const) {
    it(`Redis behind a network ${fault === 'cut' ? 'cut' : 'partition that drops nothing and says nothing'}: every request that needs it is 503 + Retry-After within 1 s; /ready 503, /health 200; healed, all works`, async () => {
      const redis = new URL(REDIS_URL);
      const proxy: TcpProxy = await startTcpProxy(Number(redis.port || 6379), redis.hostname);
      const t = await startHub({ storage: 'redis', env: { MIMIR_REDIS_URL: withPort(REDIS_URL, proxy.port), MIMIR_UPSTREAM_URL: upstream.url } });
      try {
        const f = await fixtures(t);
        if (fault === 'cut') await proxy.cut();
        else proxy.blackhole();
        await assertUnavailableFast(t, f);
        await proxy.pass();
        await assertRecovered(t, f);
      } finally {
        await proxy.pass();
        await t.close();
        await proxy.close();
      }
    });
  }

  describe('a Redis process of the test\'s own', () => {
    let server: RedisProcess;
    before(async () => { server = await RedisProcess.start(); });
    after(async () => { await server?.stop(); });

    it('killed (kill -9) and started again: 503 fast meanwhile, then everything works, nothing lost', async () => {
      const t = await startHub({ storage: 'redis', env: { MIMIR_REDIS_URL: server.url, MIMIR_UPSTREAM_URL: upstream.url } });
      try {
        const f = await fixtures(t);
        await server.kill();
        await assertUnavailableFast(t, f);
        await server.restart();
        await assertRecovered(t, f);
      } finally {
        await t.close();
      }
    });

    it('paused (SIGSTOP: connections open, no answers) and resumed: 503 fast meanwhile, then everything works', async () => {
      const t = await startHub({ storage: 'redis', env: { MIMIR_REDIS_URL: server.url, MIMIR_UPSTREAM_URL: upstream.url } });
      try {
        const f = await fixtures(t);
        server.pause();
        try {
          await assertUnavailableFast(t, f);
        } finally {
          server.resume();
        }
        await assertRecovered(t, f);
      } finally {
        await t.close();
      }
    });
  });
});

/**
 * redis-server on a free port with an append-only file written on every command, so a kill -9
 * loses nothing (https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/).
 */
class RedisProcess {
  #child: ChildProcess | undefined;
  readonly #dir = mkdtempSync(join(tmpdir(), 'mimir-redis-'));
  readonly #port: number;
  readonly #binary: string;

  private constructor(port: number, binary: string) {
    this.#port = port;
    this.#binary = binary;
  }

  static async start(): Promise<RedisProcess> {
    const binary = onPath('redis-server');
    if (!binary) throw new Error('these tests start a redis-server of their own: install it (apt-get install redis-server); `npm test` does');
    const r = new RedisProcess(await freePort(), binary);
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  async restart(): Promise<void> {
    this.#child = spawn(this.#binary, [
      '--port', String(this.#port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
      '--dir', this.#dir, '--daemonize', 'no',
    ], { stdio: 'ignore' });
    for (let waited = 0; !(await answers(this.#port)); waited += 50) {
      if (waited > 10_000) throw new Error(`redis-server did not answer on port ${this.#port}`);
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    const child = this.#child!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  pause(): void { this.#child!.kill('SIGSTOP'); }

  resume(): void { this.#child!.kill('SIGCONT'); }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      await this.kill();
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => { reply += chunk.toString('latin1'); if (reply.includes('\r\n')) done(reply.startsWith('+PONG')); });
  });
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin', '/usr/sbin', '/usr/local/bin')) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch { /* not here */ }
  }
  return undefined;
}
