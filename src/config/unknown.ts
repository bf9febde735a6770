/**
 * MIMIR_* names in the environment or `.env` that nothing reads: a misspelt variable is silently
 * ignored otherwise (`MIMIR_AUTH_PROT=8080` and the hub starts on 9042). Known are the hub's own
 * variables (variables.ts), those of its client and CLI (`MIMIR_URL`, `MIMIR_HOME`…) and Mimir's
 * own (mimir-variables.ts), since the hub often shares Mimir's environment.
 */
import { readDotenv, type LoadOptions } from './index.ts';
import { MIMIR_OWN_VARIABLES, MIMIR_VARIABLE_PREFIXES } from './mimir-variables.ts';
import { didYouMean } from './suggest.ts';
import { VARIABLE_NAMES } from './variables.ts';

/** Read by the client library and the CLI's user commands (src/client/config.ts), not the server. */
const CLIENT_VARIABLES = [
  'MIMIR_URL', 'MIMIR_AUTH_MODE', 'MIMIR_API_KEY', 'MIMIR_SERVICE_ACCOUNT_ID', 'MIMIR_SERVICE_ACCOUNT_SECRET',
  'MIMIR_FORWARD_USER_CONTEXT', 'MIMIR_USER_CONTEXT_HEADER', 'MIMIR_TOKEN_HEADER', 'MIMIR_ALLOW_INSECURE_HTTP', 'MIMIR_HOME',
];

const KNOWN: ReadonlySet<string> = new Set([...VARIABLE_NAMES, ...CLIENT_VARIABLES, ...MIMIR_OWN_VARIABLES]);

export interface UnknownVariable {
  name: string;
  /** Where it was set. */
  source: 'environment' | '.env';
  /** The known name it is closest to, if it looks like a slip. */
  suggestion: string | undefined;
}

export function isKnownVariable(name: string): boolean {
  return KNOWN.has(name) || MIMIR_VARIABLE_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Every MIMIR_* name set in `env` or `.env` that neither the hub nor Mimir knows.
 *
 * @example
 * unknownVariables({ MIMIR_AUTH_PROT: '8080' }, { dotenv: false })
 * // [{ name: 'MIMIR_AUTH_PROT', source: 'environment', suggestion: 'MIMIR_AUTH_PORT' }]
 */
export function unknownVariables(env: Record<string, string | undefined> = process.env, options: LoadOptions = {}): UnknownVariable[] {
  const fromFile = options.dotenv === false ? {} : readDotenv(options.cwd ?? process.cwd());
  const seen = new Map<string, UnknownVariable['source']>();
  for (const name of Object.keys(env)) if (name.startsWith('MIMIR_')) seen.set(name, 'environment');
  for (const name of Object.keys(fromFile)) if (name.startsWith('MIMIR_') && !seen.has(name)) seen.set(name, '.env');
  const out: UnknownVariable[] = [];
  for (const [name, source] of [...seen].sort(([a], [b]) => a.localeCompare(b))) {
    if (isKnownVariable(name)) continue;
    // The hub's own names first: a slip is likelier in the variables of the program being run.
    out.push({ name, source, suggestion: didYouMean(name, VARIABLE_NAMES) ?? didYouMean(name, KNOWN) });
  }
  return out;
}

/** One line for an unknown variable: what it is, that it is ignored, and the likely intended name. */
export function describeUnknown(u: UnknownVariable): string {
  return `${u.name}${u.source === '.env' ? ' (in .env)' : ''} is not a variable of the hub or of Mimir and is ignored`
    + (u.suggestion ? `; did you mean ${u.suggestion}?` : '; see `mimir-auth config --example` for every variable');
}
