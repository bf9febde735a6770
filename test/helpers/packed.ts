/**
 * The package as users get it, for the tests of test/package/: `npm pack` (prepack compiles src/
 * to dist/), then `npm install <tarball>` into an empty app. Node strips types only outside
 * node_modules, so nothing installed may reach a .ts file.
 *
 * prepack empties and rebuilds the repository's dist/: two test files packing at once would tar
 * each other's half-built dist/, so `packTarball` holds a lock (a directory, created atomically)
 * while it packs, and a test that reads dist/ itself does so under `withPackLock`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

export const root = join(import.meta.dirname, '..', '..');
export const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; devDependencies: Record<string, string> };

/** The version the repository has installed, so `--prefer-offline` finds it in npm's cache. */
export const installedVersion = (pkg: string) =>
  (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Children get the project's Node first on PATH (the bin's `#!/usr/bin/env node` and npx find it),
 * and none of the variables an enclosing `npm test` sets for its own package: npm would read
 * npm_config_local_prefix and friends as if the repository were the project being installed to.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(npm_(package|lifecycle)_|npm_config_(local_prefix|prefix|global_prefix)$|npm_command$|npm_execpath$|npm_node_execpath$|INIT_CWD$)/i.test(name)) continue;
    if (/^MIMIR_/.test(name)) continue; // the app's configuration is what each case gives it
    env[name] = value;
  }
  env.PATH = [dirname(process.execPath), env.PATH ?? ''].join(delimiter);
  return { ...env, ...extra };
}

export interface Result { code: number | null; stdout: string; stderr: string }

export function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = childEnv()): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export const show = (r: Result) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

const LOCK = join(tmpdir(), `mimir-auth-hub-pack-${createHash('sha256').update(root).digest('hex').slice(0, 12)}.lock`);

/** Waits for the pack lock of this repository; a lock whose holder died is taken over. */
async function acquirePackLock(timeoutMs = 10 * 60_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      return () => rmSync(LOCK, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = NaN;
    try { holder = Number(readFileSync(join(LOCK, 'pid'), 'utf8')); } catch { /* being written or removed */ }
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) rmSync(LOCK, { recursive: true, force: true });
    assert.ok(Date.now() < deadline, `another npm pack of ${root} held ${LOCK} for ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` while no other test packs this repository (so its dist/ is whole and stays put). */
export async function withPackLock<T>(fn: () => Promise<T>): Promise<T> {
  const release = await acquirePackLock();
  try {
    return await fn();
  } finally {
    release();
  }
}

/** `npm pack` of the repository into `destination`; resolves to the tarball's file name. */
export async function packTarball(destination: string): Promise<string> {
  const packed = await withPackLock(() => run('npm', ['pack', '--pack-destination', destination], root));
  assert.equal(packed.code, 0, show(packed));
  const tarball = readdirSync(destination).find((f) => f.startsWith(`${manifest.name}-`) && f.endsWith('.tgz'));
  assert.ok(tarball, `npm pack left a ${manifest.name}-*.tgz in ${destination}`);
  return tarball;
}

/** An empty app in `app` (created) with the tarball and `alongside` installed, offline from npm's cache where it can. */
export async function installInto(app: string, tarballPath: string, alongside: string[] = []): Promise<void> {
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'empty-app', version: '1.0.0', private: true, type: 'module' }, null, 2));
  const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarballPath, ...alongside], app);
  assert.equal(installed.code, 0, show(installed));
}
