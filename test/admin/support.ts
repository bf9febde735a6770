/** Helpers of the admin tests: the real CLI as a child process, and the audit file it writes. */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `mimir-auth ARGS` in `cwd` with only `env` (plus PATH and HOME) in its environment. */
export function cli(args: string[], env: Record<string, string>, cwd: string): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The operating-system user the CLI runs as here: its audit actor is `cli:<this>`. */
export const OS_USER = userInfo().username;

export type AuditLine = Record<string, any>;

/** Every line of an audit log file, parsed. */
export function auditLines(file: string): AuditLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

/** The audit events an admin change writes (not the authentications around it). */
export const CHANGE_TYPES = new Set(['admin', 'signing_key_rotated', 'revocation']);
