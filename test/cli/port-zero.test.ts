/**
 * MIMIR_AUTH_PORT=0 picks a free port (the port-in-use error offers it): the default public URL,
 * and with it the issuer and every metadata endpoint, name the port bound, not :0, which no client
 * can reach. Found by a new user's review; failed at 8f29cfc.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));

it('MIMIR_AUTH_PORT=0: the default public URL names the port bound, not :0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-port0-'));
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, MIMIR_AUTH_PORT: '0', MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_LEVEL: 'silent', MIMIR_LOG_AUTH_EVENTS: 'false' },
  });
  try {
    let out = '';
    const bound = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner: ${out}`)), 20_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      });
      child.on('exit', () => reject(new Error(`exited: ${out}`)));
    });
    const meta = await (await fetch(`${bound}/.well-known/oauth-authorization-server`)).json() as { issuer: string };
    const port = new URL(bound).port;
    assert.doesNotMatch(meta.issuer, /:0$/, `issuer ${meta.issuer}`);
    assert.equal(new URL(meta.issuer).port, port);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
