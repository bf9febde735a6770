/**
 * Runs the real Mimir (github.com/orneryd/Mimir) on loopback, beside the hub, so the hub can be
 * tried in front of it. Nothing of Mimir enters this repository: its sources are extracted, built
 * and run under ${MIMIR_REAL_DIR:-/tmp/mimir-real}. See scripts/real-mimir/README.md.
 *
 *   node scripts/real-mimir/run.ts [--port 3000] [--security on|off] [--rbac on|off] [--build-only]
 *                                  [--verbose] [-- NAME=VALUE ...]
 *
 * 1. Sources: commit MIMIR_REAL_COMMIT (default 01c0203, the commit fixtures/mimir-http-surface.json
 *    was read from) of the git directory MIMIR_REAL_GIT (default: the mirror
 *    /work/.mirror/orneryd+Mimir/repo when present, else a blob-less clone of MIMIR_REAL_REPO_URL,
 *    default GitHub, into $MIMIR_REAL_DIR/clone), without nornicdb/ (Go sources and prebuilt libraries Mimir's server
 *    does not use).
 * 2. Build once per commit: `npm ci --ignore-scripts --legacy-peer-deps`, `npm run build` and
 *    `npm run build:frontend` with this Node, in $MIMIR_REAL_DIR/<commit>/.
 * 3. Start the Bolt stub (bolt-stub.ts) and `node build/http-server.js` with a clean environment
 *    (the hub's own variables, such as MIMIR_JWT_SECRET or MIMIR_PORT, are not passed on), bound
 *    to 127.0.0.1 by loopback.ts; print when GET /health answers; stop both on exit.
 *
 * With --security on, Mimir needs MIMIR_JWT_SECRET: taken from MIMIR_REAL_JWT_SECRET, else a random
 * one is created once in $MIMIR_REAL_DIR/jwt-secret (mode 0600). It is never printed; Mimir's own
 * start-up line that shows its first 8 characters is redacted from the log.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { startBoltStub, type BoltStub } from './bolt-stub.ts';

const MIRROR = '/work/.mirror/orneryd+Mimir/repo';
const GITHUB = process.env.MIMIR_REAL_REPO_URL ?? 'https://github.com/orneryd/Mimir.git';
const DEFAULT_COMMIT = '01c0203';
const log = (message: string) => console.log(`[real-mimir] ${message}`);

export interface RealMimirOptions {
  /** Port Mimir listens on (passed as MIMIR_PORT and PORT). */
  port: number;
  /** MIMIR_ENABLE_SECURITY. */
  security: boolean;
  /** MIMIR_JWT_SECRET when security is on; default: MIMIR_REAL_JWT_SECRET or $dir/jwt-secret. */
  jwtSecret?: string;
  /** MIMIR_ENABLE_RBAC (only acts with security on). */
  rbac?: boolean;
  /** More variables for Mimir (MIMIR_MAX_TOKEN_AGE_SECONDS, MIMIR_OAUTH_USERINFO_URL, ...). */
  env?: Record<string, string>;
  /** Cache directory (default MIMIR_REAL_DIR or /tmp/mimir-real). */
  dir?: string;
  /** Commit to run (default MIMIR_REAL_COMMIT or 01c0203). */
  commit?: string;
  /** Receives Mimir's output and the stub's log, line by line (secret prefix redacted). */
  onLine?: (line: string) => void;
}

export interface RealMimir {
  /** http://127.0.0.1:<port> */
  url: string;
  commit: string;
  bolt: BoltStub;
  logFile: string;
  /** Resolves with Mimir's exit code (or signal) when it ends, whoever ended it. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

function cacheDir(dir?: string): string {
  return dir ?? process.env.MIMIR_REAL_DIR ?? '/tmp/mimir-real';
}

/** Runs a command to completion; throws with its output's tail when it fails. */
function sh(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const result = spawnSync(command, args, { ...options, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) {
    const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.split('\n').slice(-30).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`})\n${tail}`);
  }
  return result.stdout;
}

/** The git directory holding Mimir's history: MIMIR_REAL_GIT, the local mirror, or a fresh clone. */
function gitDir(dir: string, commit: string): string {
  const given = process.env.MIMIR_REAL_GIT;
  if (given) return given;
  if (existsSync(MIRROR)) return MIRROR;
  const clone = join(dir, 'clone');
  if (!existsSync(join(clone, '.git'))) {
    log(`cloning ${GITHUB} (without file contents) into ${clone}`);
    rmSync(clone, { recursive: true, force: true });
    sh('git', ['clone', '--filter=blob:none', '--no-checkout', GITHUB, clone]);
    // Only the files we extract are downloaded: everything but nornicdb/.
    sh('git', ['-C', clone, 'sparse-checkout', 'set', '--no-cone', '/*', '!/nornicdb/']);
  }
  const known = spawnSync('git', ['-C', clone, 'rev-parse', '--quiet', '--verify', `${commit}^{commit}`]).status === 0;
  if (!known) sh('git', ['-C', clone, 'fetch', '--quiet', '--filter=blob:none', 'origin']);
  // The checkout downloads, in one go, the contents of the files the sparse pattern keeps.
  sh('git', ['-C', clone, 'checkout', '--quiet', '--detach', commit]);
  return join(clone, '.git');
}

/** Environment for npm: this Node first on PATH, so npm and tsc run with it. */
function npmEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
}

/**
 * Makes sure $dir/<commit>/build/http-server.js exists: extract and build when it does not.
 * Returns the built checkout and the full commit hash.
 */
export function prepareMimir(options: { dir?: string; commit?: string } = {}): { root: string; commit: string } {
  const dir = cacheDir(options.dir);
  const wanted = options.commit ?? process.env.MIMIR_REAL_COMMIT ?? DEFAULT_COMMIT;
  mkdirSync(dir, { recursive: true });
  const git = gitDir(dir, wanted);
  const commit = sh('git', ['--git-dir', git, 'rev-parse', '--verify', `${wanted}^{commit}`]).trim();
  const root = join(dir, commit.slice(0, 12));
  const stamp = join(root, '.mimir-real-built');
  if (existsSync(stamp)) return { root, commit };

  const started = Date.now();
  const work = `${root}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  log(`extracting ${commit.slice(0, 12)} from ${git} (without nornicdb/) into ${root}`);
  // The mirror may lack nornicdb/'s large blobs; the exclusion keeps git archive from needing them.
  sh('sh', ['-c', `git --git-dir="$0" archive "$1" -- . ':(exclude)nornicdb' | tar -x -C "$2"`, git, commit, work]);
  log(`npm ci --ignore-scripts --legacy-peer-deps (Node ${process.version}; about 30-60 s)`);
  sh('npm', ['ci', '--ignore-scripts', '--legacy-peer-deps', '--no-audit', '--no-fund'], { cwd: work, env: npmEnv() });
  log('npm run build (tsc; about 15-30 s)');
  sh('npm', ['run', 'build'], { cwd: work, env: npmEnv() });
  // Mimir's Docker image ships frontend/dist; without it the SPA catch-all answers 500.
  log('npm run build:frontend (vite; about 15 s)');
  sh('npm', ['run', 'build:frontend'], { cwd: work, env: npmEnv() });
  writeFileSync(join(work, '.mimir-real-built'), `${commit}\nnode ${process.version}\n${new Date().toISOString()}\n`);
  rmSync(root, { recursive: true, force: true });
  renameSync(work, root);
  log(`built in ${Math.round((Date.now() - started) / 1000)} s`);
  return { root, commit };
}

function secretFor(options: RealMimirOptions, dir: string): string {
  if (options.jwtSecret) return options.jwtSecret;
  if (process.env.MIMIR_REAL_JWT_SECRET) return process.env.MIMIR_REAL_JWT_SECRET;
  const file = join(dir, 'jwt-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
  log(`MIMIR_JWT_SECRET read from ${file}`);
  return readFileSync(file, 'utf8').trim();
}

/** Mimir prints the first 8 characters of its JWT secret at start-up; not in our logs. */
function redact(line: string): string {
  return line.replace(/(JWT_SECRET configured: )\S*/, '$1[redacted]');
}

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Mimir exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Mimir did not answer GET /health within ${timeoutMs / 1000} s`);
}

/**
 * Builds if needed, then starts the Bolt stub and Mimir; resolves when GET /health answers 200.
 *
 * @example
 * const mimir = await startRealMimir({ port: 3000, security: true, jwtSecret: 's'.repeat(32) });
 * await fetch(`${mimir.url}/api/nodes/types`, { headers: { authorization: `Bearer ${jwt}` } });
 * await mimir.stop();
 */
export async function startRealMimir(options: RealMimirOptions): Promise<RealMimir> {
  const dir = cacheDir(options.dir);
  const { root, commit } = prepareMimir({ dir, ...(options.commit ? { commit: options.commit } : {}) });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const logFile = join(dir, 'logs', `mimir-${options.port}.log`);
  const out = createWriteStream(logFile);
  const emit = (line: string) => {
    const safe = redact(line);
    out.write(`${safe}\n`);
    options.onLine?.(safe);
  };

  const bolt = await startBoltStub({ log: (line) => emit(`[bolt] ${line}`) });
  const secret = options.security ? secretFor(options, dir) : undefined;
  // A clean environment: Mimir shares variable names with the hub (MIMIR_JWT_SECRET, MIMIR_PORT).
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    TMPDIR: process.env.TMPDIR ?? '/tmp',
    MIMIR_REAL_BIND: '127.0.0.1',
    // As Mimir's Docker image runs it.
    NODE_ENV: 'production',
    MIMIR_PORT: String(options.port),
    PORT: String(options.port),
    NEO4J_URI: bolt.url,
    NEO4J_USER: 'neo4j',
    NEO4J_PASSWORD: 'stub',
    MIMIR_ENABLE_SECURITY: options.security ? 'true' : 'false',
    MIMIR_ENABLE_RBAC: options.rbac ? 'true' : 'false',
    MIMIR_EMBEDDINGS_ENABLED: 'false',
    MIMIR_AUTO_INDEX_DOCS: 'false',
    ...(secret ? { MIMIR_JWT_SECRET: secret } : {}),
    ...options.env,
  };
  const preload = pathToFileURL(join(import.meta.dirname, 'loopback.ts')).href;
  const child = spawn(process.execPath, ['--import', preload, 'build/http-server.js'], {
    cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', emit);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  // Last resort: Mimir never outlives the process that started it.
  process.once('exit', () => child.kill('SIGKILL'));

  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= (async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await bolt.close();
    await new Promise((resolve) => out.end(resolve));
  })());

  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitForHealth(url, child, 120_000);
  } catch (error) {
    await stop();
    const tail = readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n');
    throw new Error(`${(error as Error).message}; last lines of ${logFile}:\n${tail}`, { cause: error });
  }
  return { url, commit, bolt, logFile, exited, stop };
}

function parseArgs(argv: string[]) {
  const args = { port: Number(process.env.MIMIR_REAL_PORT ?? 3000), security: process.env.MIMIR_REAL_SECURITY === 'on',
    rbac: process.env.MIMIR_REAL_RBAC === 'on', buildOnly: false, verbose: false, env: {} as Record<string, string> };
  const onOff = (value: string | undefined, flag: string) => {
    if (value !== 'on' && value !== 'off') throw new Error(`${flag} takes on or off`);
    return value === 'on';
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') args.port = Number(argv[++i]);
    else if (arg === '--security') args.security = onOff(argv[++i], arg);
    else if (arg === '--rbac') args.rbac = onOff(argv[++i], arg);
    else if (arg === '--build-only') args.buildOnly = true;
    else if (arg === '--verbose') args.verbose = true;
    else if (arg === '--') {
      for (const pair of argv.slice(i + 1)) {
        const at = pair.indexOf('=');
        if (at < 1) throw new Error(`expected NAME=VALUE after --, got ${pair}`);
        args.env[pair.slice(0, at)] = pair.slice(at + 1);
      }
      break;
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (!Number.isInteger(args.port) || args.port < 1 || args.port > 65535) throw new Error('--port takes a port number');
  return args;
}

if (import.meta.main) {
  try {
    const args = parseArgs(process.argv.slice(2));
    if (args.buildOnly) {
      const { root, commit } = prepareMimir();
      log(`Mimir ${commit.slice(0, 12)} is built in ${root}`);
    } else {
      const mimir = await startRealMimir({
        port: args.port, security: args.security, rbac: args.rbac, env: args.env,
        ...(args.verbose ? { onLine: (line: string) => console.log(line) } : {}),
      });
      let stopping = false;
      const shutdown = (code: number) => {
        stopping = true;
        void mimir.stop().then(() => process.exit(code));
      };
      process.on('SIGINT', () => shutdown(130));
      process.on('SIGTERM', () => shutdown(143));
      log(`ready: ${mimir.url} (commit ${mimir.commit.slice(0, 12)}, security ${args.security ? 'on' : 'off'}` +
        `${args.security ? `, rbac ${args.rbac ? 'on' : 'off'}` : ''}, Neo4j = Bolt stub ${mimir.bolt.url}, log ${mimir.logFile})`);
      log('Ctrl-C stops Mimir and the stub');
      const code = await mimir.exited;
      if (!stopping) {
        log(`Mimir exited by itself (${code}); stopping the stub`);
        await mimir.stop();
        process.exit(1);
      }
    }
  } catch (error) {
    console.error(`[real-mimir] ${(error as Error).message}`);
    process.exit(1);
  }
}
