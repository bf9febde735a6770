/**
 * `mimir-auth`: the server and its admin. The command line is declared in program.ts (commander);
 * here it is run, unknown MIMIR_* variables are warned about once, and every refusal becomes one
 * line on stderr and an exit code: 64 for a bad command line or input (EX_USAGE), 78 for an
 * invalid configuration (EX_CONFIG), 1 for anything else that failed.
 */
import { CommanderError } from 'commander';
import { ConfigError } from '../config/index.ts';
import { describeUnknown, unknownVariables } from '../config/unknown.ts';
import { OAuthError } from '../errors.ts';
import { UsageError } from './usage-error.ts';
import { buildProgram } from './program.ts';

export { UsageError } from './usage-error.ts';

/** Commands that report unknown variables themselves (doctor), or read none. */
const NO_VARIABLE_WARNING = new Set(['doctor', 'version', 'help']);

export async function main(argv: string[]): Promise<number> {
  const version = (await import('../../package.json', { with: { type: 'json' } })).default.version;
  let code = 0;
  const program = buildProgram((c) => { code = c; }, version);
  // Once, before the command runs (never for --help, which runs nothing).
  program.hook('preAction', (_program, action) => {
    let top = action;
    while (top.parent && top.parent !== program) top = top.parent;
    if (NO_VARIABLE_WARNING.has(top.name())) return;
    for (const u of unknownVariables()) console.error(`mimir-auth: warning: ${describeUnknown(u)}`);
  });
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    return exitCode(e);
  }
}

function exitCode(e: unknown): number {
  if (e instanceof CommanderError) {
    // Help or the version was printed (0), or commander already said what is wrong with the command line.
    return e.exitCode === 0 ? 0 : 64;
  }
  if (e instanceof ConfigError) {
    console.error('mimir-auth: the configuration is not valid:');
    for (const line of e.problems) console.error(`  ${line}`);
    return 78; // EX_CONFIG
  }
  if (e instanceof UsageError) {
    console.error(`mimir-auth: ${e.message}`);
    return 64; // EX_USAGE
  }
  // The admin service's refusals: bad input is a usage error; unknown id, conflict, not allowed: a failure.
  if (e instanceof OAuthError && e.status < 500) {
    console.error(`mimir-auth: ${e.description}`);
    return e.error === 'invalid_request' ? 64 : 1;
  }
  console.error(`mimir-auth: ${e instanceof Error ? e.message : String(e)}`);
  return 1;
}
