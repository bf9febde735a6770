/**
 * Issue 18, item 5: graceful drain of a real `mimir-auth serve` process. Measured before: the
 * process exited only after 72.8 s, with code 1, held by idle keep-alive connections (node:http
 * keeps them open after server.close() until their keep-alive timeout).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/hub.ts';
import { startSlowUpstream } from '../helpers/slow-upstream.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));
const SLOW_MS = 1500;

function cli(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A served hub in front of an upstream double, with an admin API key; `exit` resolves to the exit code and when it came. */
async function servedHub(extraEnv: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-drain-'));
  const upstream = await startSlowUpstream(SLOW_MS);
  const port = await freePort();
  const env = { MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_LOG_AUTH_EVENTS: 'false', MIMIR_UPSTREAM_URL: upstream.url, MIMIR_AUTH_PORT: String(port), ...extraEnv };
  const created = await cli(['keys', 'create', '--name', 'admin', '--roles', 'admin', '--json'], env, dir);
  assert.equal(created.code, 0, created.stderr);
  const key = (JSON.parse(created.stdout) as { key: string }).key;
  const child = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, MIMIR_LOG_LEVEL: 'warn', ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exit = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: performance.now() })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${out}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`serve did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port, key, upstream, child, exit, output: () => out,
    async cleanup() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exit;
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A GET through `agent` (keep-alive), resolved with the response as soon as its headers arrive. */
function open(port: number, path: string, headers: Record<string, string>, agent: Agent): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent }, resolve);
    req.once('error', reject);
    req.end();
  });
}

/** The whole body and how the response ended: 'end' (complete) or 'aborted' (cut off). */
function finish(res: IncomingMessage): Promise<{ body: string; ending: 'end' | 'aborted' }> {
  return new Promise((resolve) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => { body += chunk; });
    res.once('end', () => resolve({ body, ending: 'end' }));
    res.once('aborted', () => resolve({ body, ending: 'aborted' }));
    res.once('error', () => resolve({ body, ending: 'aborted' }));
  });
}

describe('graceful drain on SIGTERM (issue 18)', () => {
  it('with an idle keep-alive connection, a slow request in flight and an open event stream: the request completes, the stream ends cleanly, exit 0 promptly', async () => {
    const hub = await servedHub();
    try {
      const agent = new Agent({ keepAlive: true, maxSockets: 10 });
      const auth = { 'x-api-key': hub.key };
      // An idle keep-alive connection: one request answered, its socket kept by an agent of its own.
      const idleAgent = new Agent({ keepAlive: true });
      const idle = await open(hub.port, '/health', {}, idleAgent);
      const idleSocket = idle.socket;
      await finish(idle);
      const idleClosed = new Promise<number>((resolve) => idleSocket.once('close', () => resolve(performance.now())));
      // An open event stream through the proxy.
      const eventsArrived = hub.upstream.arrived('events');
      const stream = await open(hub.port, '/api/events', auth, agent);
      assert.equal(stream.statusCode, 200);
      await eventsArrived;
      const streamDone = finish(stream);
      // A slow request in flight upstream.
      const slowArrived = hub.upstream.arrived('slow');
      const slow = open(hub.port, '/api/slow', auth, agent).then(async (res) => ({ status: res.statusCode, ...(await finish(res)) }));
      await slowArrived;

      const signalled = performance.now();
      hub.child.kill('SIGTERM');
      const [answer, events, exit] = await Promise.all([slow, streamDone, hub.exit]);
      const idleClosedAfter = (await idleClosed) - signalled;
      // At once: long before the request in flight is done (it was what held the process for 72 s).
      assert.ok(idleClosedAfter < SLOW_MS / 2, `the idle connection was closed ${idleClosedAfter.toFixed(0)} ms after SIGTERM`);
      assert.equal(answer.status, 200, 'the request in flight completes');
      assert.equal(answer.ending, 'end');
      assert.deepEqual(JSON.parse(answer.body), { slow: 'done' });
      assert.equal(events.ending, 'end', 'the event stream ends cleanly, not cut off');
      assert.match(events.body, /data: hello/);
      assert.equal(exit.code, 0, hub.output());
      const took = exit.at - signalled;
      // Well below MIMIR_SHUTDOWN_TIMEOUT (10 s): the slow request's remaining time and a little.
      assert.ok(took < SLOW_MS + 3000, `exited ${took.toFixed(0)} ms after SIGTERM`);
      console.log(`# drain: exit ${exit.code} after ${took.toFixed(0)} ms (the request in flight needed up to ${SLOW_MS} ms)`);
      agent.destroy();
      idleAgent.destroy();
    } finally {
      await hub.cleanup();
    }
  });

  it('a request that never finishes is cut off at MIMIR_SHUTDOWN_TIMEOUT, and the process exits 1', async () => {
    const hub = await servedHub({ MIMIR_SHUTDOWN_TIMEOUT: '2' });
    try {
      const agent = new Agent({ keepAlive: true });
      const arrived = hub.upstream.arrived('hang');
      const hanging = new Promise<string>((resolve) => {
        const req = request({ host: '127.0.0.1', port: hub.port, path: '/api/hang', headers: { 'x-api-key': hub.key }, agent }, (res) => {
          res.resume();
          res.once('end', () => resolve('answered'));
        });
        req.once('error', () => resolve('cut off'));
        req.end();
      });
      await arrived;
      const signalled = performance.now();
      hub.child.kill('SIGTERM');
      const exit = await hub.exit;
      const took = exit.at - signalled;
      assert.equal(exit.code, 1, hub.output());
      assert.equal(await hanging, 'cut off');
      assert.ok(took >= 2000 && took < 5000, `exited ${took.toFixed(0)} ms after SIGTERM (timeout 2 s)`);
      console.log(`# drain timeout: exit ${exit.code} after ${took.toFixed(0)} ms (MIMIR_SHUTDOWN_TIMEOUT=2)`);
      agent.destroy();
    } finally {
      await hub.cleanup();
    }
  });
});
