/**
 * Issue 20, goal 7: the hub's RSS after 200 000 distinct tokens verified, with default cache sizes,
 * on the hub as it is deployed: the package packed (`npm pack`, which compiles src/ to dist/) and
 * installed into an empty app, started by its own bin (`mimir-auth serve`, the shebang's V8 flags
 * included: what the Dockerfile, the systemd unit and `npx mimir-auth serve` run) on its embedded
 * default store (SQLite in a fresh data directory). The same run on a checkout (`npm start`: the
 * .ts sources, which also load Node's TypeScript stripper) is printed beside it as a reference.
 *
 * Tokens are signed here with HS256 (the hub started with MIMIR_JWT_ALGORITHM=HS256 and a known
 * MIMIR_JWT_SECRET) so 200 000 of them take seconds to make; a cache entry's size does not depend
 * on the algorithm. Each is sent once, 32 in flight over keep-alive connections, and RSS is read
 * from /proc after every 10 000 (the largest is reported, with the last).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { childEnv, installInto, packTarball, root } from '../../test/helpers/packed.ts';
import type { Goal } from './report.ts';
import { spawnServe } from './serve.ts';
import { cpuSeconds, freePort } from './targets.ts';

const run = promisify(execFile);

export interface MemoryRun {
  form: 'installed' | 'checkout';
  tokens: number;
  accepted: number;
  rssStartMb: number;
  rssMb: number;
  rssPeakMb: number;
  /** Server CPU per token verified (each token new: signature check, cache fill, eviction). */
  cpuUs: number | undefined;
}

/** Packs and installs the package once; the bin of the installed copy. */
export async function installedBin(log: (line: string) => void): Promise<{ bin: string; cleanup(): void }> {
  const work = mkdtempSync(join(tmpdir(), 'mimir-bench-installed-'));
  log('goal 7: packing the package and installing it into an empty app (npm pack, npm install)');
  const tarball = await packTarball(work);
  await installInto(join(work, 'app'), join(work, tarball));
  return { bin: join(work, 'app', 'node_modules', '.bin', 'mimir-auth'), cleanup: () => rmSync(work, { recursive: true, force: true }) };
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

/**
 * `mimir-auth serve` started by `command` (the installed bin, run directly so its shebang applies;
 * or the checkout's `npm start` line), `count` distinct tokens through it.
 */
export async function memoryRun(form: MemoryRun['form'], command: string[], count: number, log: (line: string) => void): Promise<MemoryRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-bench-memory-'));
  const port = await freePort();
  const secret = randomBytes(48).toString('base64url');
  const env = childEnv({
    NODE_ENV: 'production', MIMIR_DATA_DIR: dir, MIMIR_AUTH_PORT: String(port), MIMIR_AUTH_HOST: '127.0.0.1',
    MIMIR_PUBLIC_URL: `http://127.0.0.1:${port}`, MIMIR_JWT_ALGORITHM: 'HS256', MIMIR_JWT_SECRET: secret, MIMIR_LOG_LEVEL: 'warn',
  });
  const [exe, ...args] = command as [string, ...string[]];
  const account = JSON.parse((await run(exe, [...args, 'service-accounts', 'create', '--id', 'bench-memory', '--roles', 'developer', '--json'], { env, cwd: dir })).stdout) as { client_id: string; client_secret: string };
  const served = await spawnServe(env, dir, `serve (${form})`, command);
  const url = served.url;
  try {
    const pid = served.pid;
    const rssStartMb = rssOf(pid);
    // One token of the hub's own, for the claims and key id every bench token must carry.
    const issued = await fetch(`${url}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: account.client_id, client_secret: account.client_secret }).toString(),
    });
    const sample = String(((await issued.json()) as { access_token?: string }).access_token);
    const claims = decodeJwt(sample);
    const { kid } = decodeProtectedHeader(sample);
    const key = new TextEncoder().encode(secret);
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    let accepted = 0;
    let peak = rssStartMb;
    const cpu0 = cpuSeconds(pid);
    const batch = 10_000;
    for (let from = 0; from < count; from += batch) {
      const tokens = await Promise.all(Array.from({ length: Math.min(batch, count - from) }, (_, i) => new SignJWT({
        sub: `user-${from + i}`, client_id: 'bench', roles: ['developer'], email: `user-${from + i}@example.com`, scope: 'nodes:read nodes:write',
      }).setProtectedHeader({ alg: 'HS256', kid: kid!, typ: 'at+jwt' }).setIssuer(claims.iss!).setAudience(claims.aud!)
        .setIssuedAt().setNotBefore('0s').setExpirationTime('1h').setJti(randomBytes(16).toString('base64url')).sign(key)));
      let next = 0;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (next < tokens.length) {
          const token = tokens[next++]!;
          // Awaited first, then added: `accepted += await …` would add to the value read before the wait.
          const ok = await new Promise<number>((resolve, reject) => {
            const req = request(`${url}/auth/me`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode === 200 ? 1 : 0));
            });
            req.on('error', reject);
            req.end();
          });
          accepted += ok;
        }
      }));
      peak = Math.max(peak, rssOf(pid));
      if ((from + batch) % 50_000 === 0) log(`  ${form}: ${(from + batch).toLocaleString('en')} tokens sent, ${accepted.toLocaleString('en')} accepted, RSS ${rssOf(pid).toFixed(0)} MB`);
    }
    const cpu1 = cpuSeconds(pid);
    agent.destroy();
    const rssMb = rssOf(pid);
    return { form, tokens: count, accepted, rssStartMb, rssMb, rssPeakMb: Math.max(peak, rssMb), cpuUs: cpu0 !== undefined && cpu1 !== undefined ? ((cpu1 - cpu0) * 1e6) / count : undefined };
  } finally {
    await served.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The checkout's `npm start` line: the V8 flags package.json's start script gives node. */
export function checkoutCommand(): string[] {
  const start = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const flags = start.split(/\s+/).filter((w) => w.startsWith('--'));
  return [process.execPath, ...flags, join(root, 'bin', 'mimir-auth.js')];
}

/**
 * Goal 7's lines: the installed package (the goal) and the checkout's `npm start` (a reference),
 * each a fresh hub on a fresh SQLite data directory, `count` distinct tokens through it.
 */
export async function memoryLines(count: number, log: (line: string) => void): Promise<{ runs: MemoryRun[]; goals: Goal[] }> {
  const runs: MemoryRun[] = [];
  const goals: Goal[] = [];
  const what = (form: string) => `${form}: RSS after ${count.toLocaleString('en')} distinct tokens (SQLite)`;
  let installed: Awaited<ReturnType<typeof installedBin>> | undefined;
  try {
    installed = await installedBin(log);
  } catch (e) {
    goals.push({ n: 7, what: what('installed package'), value: undefined, unit: 'MB', na: `n/a — could not pack and install the package: ${(e as Error).message.split('\n')[0]!.slice(0, 160)}` });
  }
  try {
    const forms: Array<[MemoryRun['form'], string[] | undefined]> = [['installed', installed ? [installed.bin] : undefined], ['checkout', checkoutCommand()]];
    for (const [form, command] of forms) {
      if (!command) continue;
      const label = form === 'installed' ? 'installed package' : 'checkout, npm start (reference)';
      try {
        const r = await memoryRun(form, command, count, log);
        runs.push(r);
        log(`  ${label}: RSS ${r.rssMb.toFixed(0)} MB after ${r.accepted.toLocaleString('en')} of ${count.toLocaleString('en')} tokens accepted (at start ${r.rssStartMb.toFixed(0)} MB, peak ${r.rssPeakMb.toFixed(0)} MB), CPU ${r.cpuUs?.toFixed(0) ?? '?'} µs per new token`);
        if (r.accepted !== count) throw new Error(`only ${r.accepted} of ${count} tokens were accepted`);
        goals.push({ n: 7, what: what(label), value: r.rssMb, max: 160, unit: 'MB', ...(form === 'checkout' ? { reference: true } : {}) });
      } catch (e) {
        goals.push({ n: 7, what: what(label), value: undefined, unit: 'MB', na: `n/a — ${(e as Error).message.split('\n')[0]!.slice(0, 160)}` });
      }
    }
  } finally {
    installed?.cleanup();
  }
  return { runs, goals };
}
