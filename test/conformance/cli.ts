/**
 * Runs the `@modelcontextprotocol/conformance` CLI (0.1.16) as a child process and reads its
 * results: `-o <dir>` makes it write `<dir>/server-<scenario>-<timestamp>/checks.json` per scenario.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLI = createRequire(import.meta.url).resolve('@modelcontextprotocol/conformance/dist/index.js');
const CREDENTIAL = join(import.meta.dirname, 'credential.ts');

export interface Check {
  id: string;
  name: string;
  description: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
  errorMessage?: string;
  details?: Record<string, unknown>;
}

export interface SuiteRun {
  /** Scenario name → the checks it recorded. */
  results: Map<string, Check[]>;
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Tally { passed: number; failed: number; warnings: number }

/** `conformance <args>`, its output and exit code; killed after `timeoutMs`. */
export async function conformance(args: string[], options: { env?: Record<string, string>; preload?: boolean; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...(options.preload ? ['--import', CREDENTIAL] : []), CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...options.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * The server scenarios (`--suite all`: active and pending) against `url`, or only `scenario`.
 * `apiKey`: every request to `url`'s origin carries it (test/conformance/credential.ts).
 */
export async function runServerSuite(url: string, options: { apiKey?: string; scenario?: string } = {}): Promise<SuiteRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-conformance-'));
  try {
    const selection = options.scenario ? ['--scenario', options.scenario] : ['--suite', 'all'];
    const env: Record<string, string> = options.apiKey ? { MIMIR_CONFORMANCE_ORIGIN: new URL(url).origin, MIMIR_CONFORMANCE_API_KEY: options.apiKey } : {};
    const run = await conformance(['server', '--url', url, ...selection, '-o', dir], { env, preload: options.apiKey !== undefined });
    const results = new Map<string, Check[]>();
    for (const entry of readdirSync(dir)) {
      const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry);
      if (!m) continue;
      results.set(m[1]!, JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8')) as Check[]);
    }
    return { results, ...run };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Scenario → how many of its checks passed, failed and warned (the CLI's own counts). */
export function tally(run: SuiteRun): Record<string, Tally> {
  const out: Record<string, Tally> = {};
  for (const [scenario, checks] of [...run.results].sort(([a], [b]) => a.localeCompare(b))) {
    const count = (s: Check['status']) => checks.filter((c) => c.status === s).length;
    out[scenario] = { passed: count('SUCCESS'), failed: count('FAILURE'), warnings: count('WARNING') };
  }
  return out;
}

/** Every failed or warning check, one line each, for the assertion message. */
export function explain(run: SuiteRun): string {
  const lines: string[] = [];
  for (const [scenario, checks] of run.results) {
    for (const c of checks) {
      if (c.status === 'FAILURE' || c.status === 'WARNING') lines.push(`${c.status} ${scenario} / ${c.id}: ${c.errorMessage ?? c.description}`);
    }
  }
  if (run.results.size === 0) lines.push(`no results; exit ${run.code}; stderr: ${run.stderr.slice(-2000)}`);
  return lines.join('\n');
}

/** The server scenario names `conformance list` prints. */
export async function listedServerScenarios(): Promise<string[]> {
  const { stdout } = await conformance(['list']);
  const section = stdout.split(/^Client scenarios/m)[0]!;
  return [...section.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1]!).sort();
}
