/**
 * A hub answers /health, /ready and requests as soon as it listens, so an orchestrator may stop it
 * from that moment on. Measured before the fix (issue 21, item 5, found by the deployment test):
 * SIGTERM sent right after the first /health answer, on PostgreSQL, ended 4 hubs of 5 by the signal
 * itself (no drain, exit by SIGTERM), because the drain took SIGTERM over only after the start
 * banner, which waits for a store read.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/hub.ts';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));

describe('SIGTERM at any time after the hub listens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-early-sigterm-'));
  let db: FreshDatabase | undefined;
  after(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a hub stopped the moment it first answers /health drains and exits 0 (5 starts on PostgreSQL)', async () => {
    db = await freshDatabase();
    for (let i = 0; i < 5; i++) {
      const port = await freePort();
      const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [BIN, 'serve'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir, MIMIR_DATA_DIR: join(dir, `data-${i}`), MIMIR_AUTH_PORT: String(port), MIMIR_TOKEN_STORAGE: 'postgres', MIMIR_DATABASE_URL: db.url, MIMIR_JWT_SECRET: 'x'.repeat(40), MIMIR_SESSION_SECRET: 'y'.repeat(40), MIMIR_LOG_AUTH_EVENTS: 'false' },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      const deadline = Date.now() + 30_000;
      for (;;) {
        assert.equal(child.exitCode, null, out);
        try {
          if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
        } catch { /* not yet */ }
        assert.ok(Date.now() < deadline, `no /health within 30 s:\n${out}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      child.kill('SIGTERM');
      assert.deepEqual(await exited, { code: 0, signal: null }, `start ${i + 1}:\n${out}`);
      assert.match(out, /drained; exiting/);
    }
  });
});
