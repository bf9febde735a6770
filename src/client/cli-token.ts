/**
 * `mimir-auth token --service-account ID`: prints a valid access token and nothing else, for
 * scripts and for PCTX's `"token": "${command:mimir-auth token --service-account pctx-service}"`.
 * The secret comes from MIMIR_SERVICE_ACCOUNT_SECRET (never an argument: process lists are
 * public). A token that is still fresh is reused from `~/.mimir/service-tokens.json` (0600),
 * keyed by a hash of hub URL, account and secret, so a rotated secret never reuses an old token.
 */
import { decodeJwt } from 'jose';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clientOptionsFromEnv, mimirHome } from './config.ts';
import { createMimirClient, MimirClientError } from './index.ts';

export interface TokenCommandDeps {
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  now?: () => number;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

interface CacheEntry { token: string; expiresAt: number; issuedAt: number }
type CacheFile = Record<string, CacheEntry>;

const CACHE_FILE = 'service-tokens.json';

/** Exit code: 0, 64 (usage), 1 (the hub refused or could not be reached). */
export async function tokenCommand(args: string[], deps: TokenCommandDeps = {}): Promise<number> {
  const out = deps.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const err = deps.err ?? ((s: string) => process.stderr.write(`${s}\n`));
  const now = deps.now ?? Date.now;
  let values: { 'service-account'?: string; url?: string; 'no-cache'?: boolean };
  try {
    ({ values } = parseArgs({ args, strict: true, options: { 'service-account': { type: 'string' }, url: { type: 'string' }, 'no-cache': { type: 'boolean' } } }));
  } catch (e) {
    err(`mimir-auth token: ${(e as Error).message}`);
    return 64;
  }
  const env = clientOptionsFromEnv(deps.env);
  const id = values['service-account'] ?? env.serviceAccountId;
  const secret = env.serviceAccountSecret;
  const url = (values.url ?? env.url ?? 'http://localhost:9042').replace(/\/+$/, '');
  if (!id) {
    err('mimir-auth token: --service-account ID is required');
    return 64;
  }
  if (!secret) {
    err('mimir-auth token: set MIMIR_SERVICE_ACCOUNT_SECRET to the service account\'s secret');
    return 64;
  }

  const dir = mimirHome(deps.env) ?? join(homedir(), '.mimir');
  const file = join(dir, CACHE_FILE);
  const key = createHash('sha256').update(`${url}\0${id}\0${secret}`).digest('base64url');
  const cache = values['no-cache'] ? {} : readCache(file);
  const hit = cache[key];
  if (hit && isFresh(hit, now())) {
    out(hit.token);
    return 0;
  }
  try {
    const client = createMimirClient({ url, mode: 'service-account', serviceAccountId: id, serviceAccountSecret: secret, fromEnv: false, now, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
    const issuedAt = now();
    const token = await client.accessToken();
    const expiresAt = expiryOf(token) ?? issuedAt + 300_000;
    if (!values['no-cache']) {
      for (const [k, v] of Object.entries(cache)) if (v.expiresAt <= now()) delete cache[k];
      cache[key] = { token, expiresAt, issuedAt };
      writeCache(dir, file, cache);
    }
    out(token);
    return 0;
  } catch (e) {
    // An unreachable hub: where this command looked, and how to point it elsewhere.
    err(`mimir-auth token: ${(e as Error).message}${e instanceof MimirClientError && e.error === 'unreachable' ? ' Here: --url URL.' : ''}`);
    return 1;
  }
}

/** Fresh: at least half its lifetime, or five minutes, still ahead. */
function isFresh(entry: CacheEntry, nowMs: number): boolean {
  const left = entry.expiresAt - nowMs;
  return left > Math.min(300_000, (entry.expiresAt - entry.issuedAt) / 2);
}

/** The `exp` of our own JWT, read without verifying: only to decide when to ask again. */
function expiryOf(token: string): number | undefined {
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function readCache(file: string): CacheFile {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as CacheFile : {};
  } catch {
    return {};
  }
}

/** Written whole to a temporary file then renamed: a concurrent reader never sees half a file. */
function writeCache(dir: string, file: string, cache: CacheFile): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(cache), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
