/**
 * Issue 15, finding 17: the SQLite data directory was created 0755 and the database 0644, so any
 * local user could read hashed secrets, sealed tokens and sealed signing keys. A hub now creates
 * them 0700 and 0600, and tightens open ones at start, saying which in its log.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/hub.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));
const mode = (path: string) => `0${(statSync(path).mode & 0o777).toString(8)}`;

/**
 * `mimir-auth serve` until its banner; then `whileRunning`, then `signal` (SIGKILL leaves the -wal
 * and -shm files behind, as a crash does). Returns everything it printed.
 */
async function serve(cwd: string, env: Record<string, string>, whileRunning: () => void, signal: NodeJS.Signals = 'SIGTERM'): Promise<string> {
  const server = spawn(process.execPath, [BIN, 'serve'], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, MIMIR_LOG_LEVEL: 'warn', MIMIR_LOG_AUTH_EVENTS: 'false', ...env } });
  let out = '';
  server.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  server.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner: ${out}`)), 20_000);
      server.stdout.on('data', () => { if (out.includes('signing key:')) { clearTimeout(timer); resolve(); } });
      server.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}: ${out}`)); });
    });
    whileRunning();
  } finally {
    server.kill(signal);
    await exited;
  }
  return out;
}

describe('the SQLite data directory is 0700 and its files 0600 (issue 15, finding 17)', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mimir-perms-'));
  const data = join(cwd, 'data');
  const db = join(data, 'mimir-auth.db');
  const files = [db, `${db}-wal`, `${db}-shm`, join(data, 'signing-keys.key')];

  const env = async () => ({ MIMIR_DATA_DIR: data, MIMIR_TOKEN_STORAGE: 'sqlite', MIMIR_AUTH_PORT: String(await freePort()) });
  const assertPrivate = () => {
    assert.equal(mode(data), '0700', data);
    for (const file of files) {
      assert.ok(existsSync(file), `${file} exists`);
      assert.equal(mode(file), '0600', file);
    }
  };

  it('a hub started on a new data directory creates it 0700 and the database, -wal, -shm and key 0600', async () => {
    const out = await serve(cwd, await env(), assertPrivate, 'SIGKILL');
    assert.doesNotMatch(out, /permissions tightened/, 'nothing to tighten on a new directory');
  });

  it('opened up by hand (after a crash left -wal and -shm), they are tightened at the next start, and the log names each', async () => {
    chmodSync(data, 0o755);
    for (const file of files) chmodSync(file, 0o644);
    const out = await serve(cwd, await env(), assertPrivate);
    const line = out.split('\n').find((l) => l.includes('permissions tightened'));
    assert.ok(line, `a log line says what was tightened: ${out}`);
    for (const [path, from, to] of [[data, '0755', '0700'], [db, '0644', '0600'], [`${db}-wal`, '0644', '0600'], [`${db}-shm`, '0644', '0600']]) {
      assert.ok(line.includes(`${path} ${from} -> ${to}`), `${path} in ${line}`);
    }
  });
});
