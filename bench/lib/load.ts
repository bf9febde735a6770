/**
 * One load run against one URL: wrk when it is on PATH (C, leaves more of the machine to the server),
 * autocannon otherwise. Fixed-rate runs (`rate`) are paced here (`paced`): open loop, latencies in
 * microseconds (autocannon's are whole milliseconds, too coarse for a 1 ms budget).
 */
import autocannon from 'autocannon';
import { execFile } from 'node:child_process';
import { Agent, request } from 'node:http';
import { accessSync, constants, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface LoadSpec {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  seconds: number;
  connections: number;
  /** Requests per second for a fixed-rate (latency) run. */
  rate?: number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Responses that were not 2xx, plus socket errors and timeouts. */
  failures: number;
  generator: 'wrk' | 'autocannon' | 'paced';
  /** CPU time the server process spent per request (user + system, all its threads), µs; when known. */
  cpuUs?: number;
}

export const WRK = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'wrk')).find((p) => {
  try { accessSync(p, constants.X_OK); return true; } catch { return false; }
});

export async function load(spec: LoadSpec, prefer: 'wrk' | 'autocannon' = WRK ? 'wrk' : 'autocannon'): Promise<LoadResult> {
  if (spec.rate !== undefined) return paced(spec, spec.rate);
  return prefer === 'wrk' && WRK ? wrk(spec, WRK) : cannon(spec);
}

/**
 * `rate` requests per second for `seconds`, sent on schedule whatever the answers (open loop) over
 * at most `connections` keep-alive sockets; each latency from sending the request to the end of
 * its answer, in µs resolution (reported in ms). `rps`: answers per second of the run.
 */
async function paced(spec: LoadSpec, rate: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const total = Math.round(rate * spec.seconds);
  const latencies: number[] = [];
  let failures = 0;
  const one = () => new Promise<void>((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = request(spec.url, { agent, method: spec.method ?? 'GET', headers: { ...spec.headers, ...(spec.body !== undefined ? { 'content-length': String(Buffer.byteLength(spec.body)) } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode! >= 300) failures++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        resolve();
      });
    });
    req.on('error', () => { failures++; resolve(); });
    req.end(spec.body);
  });
  const started = performance.now();
  const inFlight: Array<Promise<void>> = [];
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) inFlight.push(one());
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
  return { rps: latencies.length / elapsed, p50: at(50), p99: at(99), requests: latencies.length, failures, generator: 'paced' };
}

async function cannon(spec: LoadSpec): Promise<LoadResult> {
  const r = await autocannon({
    url: spec.url, method: spec.method ?? 'GET', connections: spec.connections, duration: spec.seconds,
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(spec.body !== undefined ? { body: spec.body } : {}),
  });
  return {
    rps: r.requests.total / spec.seconds, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total,
    failures: r.non2xx + r.errors + r.timeouts, generator: 'autocannon',
  };
}

let scriptDir: string | undefined;

function wrk(spec: LoadSpec, bin: string): Promise<LoadResult> {
  scriptDir ??= mkdtempSync(join(tmpdir(), 'mimir-bench-'));
  const script = join(scriptDir, `${Math.random().toString(36).slice(2)}.lua`);
  const lua = (s: string) => `[==[${s}]==]`;
  const lines = [`wrk.method = "${spec.method ?? 'GET'}"`];
  if (spec.body !== undefined) lines.push(`wrk.body = ${lua(spec.body)}`);
  for (const [k, v] of Object.entries(spec.headers ?? {})) lines.push(`wrk.headers[ ${lua(k)} ] = ${lua(v)}`);
  writeFileSync(script, lines.join('\n') + '\n', { mode: 0o600 });
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--latency', '-s', script, spec.url];
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: (spec.seconds + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(new Error(`wrk failed: ${err.message}`));
      const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? Number.NaN);
      const requests = num(/(\d+) requests in/);
      const sockets = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      resolve({
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        p50: ms(/\s50%\s+([\d.]+)(us|ms|s)/.exec(stdout)),
        p99: ms(/\s99%\s+([\d.]+)(us|ms|s)/.exec(stdout)),
        requests,
        failures: (num(/Non-2xx or 3xx responses: (\d+)/) || 0) + (sockets ? sockets.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
        generator: 'wrk',
      });
    });
  });
}

function ms(m: RegExpExecArray | null): number {
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}
