/** The parent side: forks a target, waits for it to listen, talks to it over IPC, stops it. */
import { execSync, fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface Target {
  readonly name: string;
  readonly url: string;
  readonly info: Record<string, unknown>;
  readonly pid: number;
  call<T>(op: string, args?: Record<string, unknown>): Promise<T>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
const TICKS = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;

/**
 * CPU seconds a process has used so far, user + system, all threads (/proc/<pid>/stat); undefined
 * where /proc is not there. A server's CPU per request, unlike its req/s, does not move with what
 * else the machine is doing.
 */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return undefined;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function startTarget(name: string, options: { env?: Record<string, string>; port?: number; execArgv?: string[] } = {}): Promise<Target> {
  const port = options.port ?? await freePort();
  const child = fork(join(import.meta.dirname, '..', 'targets', `${name}.ts`), [], {
    env: { ...process.env, NODE_ENV: 'production', BENCH_PORT: String(port), ...options.env },
    execArgv: options.execArgv ?? [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  running.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s: ${stderr}`)), 30_000);
    child.on('message', (msg: { ready?: boolean; id?: number; result?: unknown; error?: string }) => {
      if (msg.ready) { clearTimeout(timer); resolve(msg as Record<string, unknown>); return; }
      const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
      if (!p) return;
      pending.delete(msg.id!);
      if (msg.error !== undefined) p.reject(new Error(msg.error)); else p.resolve(msg.result);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      running.delete(child);
      const err = new Error(`${name} exited (${code}): ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
    });
  });
  return {
    name, info, url: String(info.url), pid: child.pid!,
    call<T>(op: string, args: Record<string, unknown> = {}) {
      return new Promise<T>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, op, args });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      running.delete(child);
    },
  };
}
