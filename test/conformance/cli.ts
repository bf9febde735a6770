/**
 * Runs the `@modelcontextprotocol/conformance` CLI as a child process and reads its results:
 * `-o <dir>` makes it write `<dir>/<command>-<scenario>-<timestamp>/checks.json` per scenario
 * (`server-…` for server scenarios, `authorization-server-…` for authorization server ones).
 * Two versions are installed: 0.1.16 (`CLI`, the `latest` release) and 0.2.0-alpha.12 (`CLI_NEXT`,
 * under the npm alias `conformance-next`), the first with authorization server scenarios.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
export const CLI = require.resolve('@modelcontextprotocol/conformance/dist/index.js');
export const CLI_NEXT = require.resolve('conformance-next/dist/index.js');
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
  /** Scenarios whose result directory the CLI made but wrote no checks.json into (it failed to run them). */
  unreported: string[];
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Tally { passed: number; failed: number; warnings: number }

export interface CliOptions {
  /** Which installed version: `CLI` (default) or `CLI_NEXT`. */
  cli?: string;
  env?: Record<string, string>;
  preload?: boolean;
  timeoutMs?: number;
  /** Called with everything printed so far on stdout, after each chunk (to answer interactive steps). */
  onStdout?: (stdout: string) => void;
  /** Aborting it ends the CLI (SIGTERM): an interactive step that failed need not wait for `timeoutMs`. */
  signal?: AbortSignal;
}

/** `conformance <args>`, its output and exit code; killed after `timeoutMs`. */
export async function conformance(args: string[], options: CliOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...(options.preload ? ['--import', CREDENTIAL] : []), options.cli ?? CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  child.on('error', () => undefined); // an abort; 'close' still comes
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; options.onStdout?.(stdout); });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * `conformance <command> … -o <dir>` and the checks each scenario wrote, by scenario name.
 * `prefix`: the directory prefix of the command's results (`server`, `authorization-server`).
 */
export async function runSuite(args: string[], prefix: string, options: CliOptions = {}): Promise<SuiteRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-conformance-'));
  try {
    const run = await conformance([...args, '-o', dir], options);
    const results = new Map<string, Check[]>();
    const unreported: string[] = [];
    const name = new RegExp(`^${prefix}-(.+)-\\d{4}-\\d{2}-\\d{2}T[\\d-]+Z$`);
    for (const entry of readdirSync(dir)) {
      const m = name.exec(entry);
      if (!m) continue;
      const file = join(dir, entry, 'checks.json');
      if (existsSync(file)) results.set(m[1]!, JSON.parse(readFileSync(file, 'utf8')) as Check[]);
      else unreported.push(m[1]!);
    }
    return { results, unreported: unreported.sort(), ...run };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The server scenarios against `url`: `--suite all` (active and pending), only `scenario`, or
 * the `selection` arguments given. `apiKey`: every request to `url`'s origin carries it
 * (test/conformance/credential.ts). `cli`: the version to run (default 0.1.16).
 */
export async function runServerSuite(url: string, options: { apiKey?: string; scenario?: string; selection?: string[]; cli?: string } = {}): Promise<SuiteRun> {
  const selection = options.selection ?? (options.scenario ? ['--scenario', options.scenario] : ['--suite', 'all']);
  const env: Record<string, string> = options.apiKey ? { MIMIR_CONFORMANCE_ORIGIN: new URL(url).origin, MIMIR_CONFORMANCE_API_KEY: options.apiKey } : {};
  return runSuite(['server', '--url', url, ...selection], 'server', { env, preload: options.apiKey !== undefined, ...(options.cli ? { cli: options.cli } : {}) });
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

/** The scenario names `conformance list [--server|--authorization]` prints (its first section). */
export async function listedScenarios(cli = CLI, which: '--server' | '--authorization' = '--server'): Promise<string[]> {
  const { stdout } = await conformance(['list', which], { cli });
  const section = stdout.split(/^\S.*scenarios \(test against/m)[1] ?? '';
  return [...section.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1]!).sort();
}

/** The server scenario names of 0.1.16. */
export async function listedServerScenarios(): Promise<string[]> {
  return listedScenarios(CLI, '--server');
}
