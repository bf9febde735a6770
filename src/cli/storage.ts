/**
 * `mimir-auth storage copy --to URL`: moves a hub's durable state to another store (SQLite →
 * PostgreSQL or Redis, and back) without losing a key, account, client, signing key, refresh
 * family or revocation. The source is the configured store (MIMIR_TOKEN_STORAGE and friends).
 * Sealed fields are re-sealed for the hubs that will run on the target: signing keys under
 * MIMIR_JWT_SECRET (required when several hubs will share the target), sessions' IdP tokens under
 * MIMIR_SESSION_SECRET when set; for a SQLite target without them, under key files beside it.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../config/index.ts';
import { deriveKey, loadOrCreateKeyFile } from '../crypto/index.ts';
import { resealSigningKey, SIGNING_KEY_KIND, type SigningKeyRecord } from '../jwt/keys.ts';
import { resealSessionRecord } from '../sessions/sessions.ts';
import type { Store, StoredEntry } from '../storage/adapter.ts';
import { copyStore } from '../storage/copy.ts';
import { createStore, type CreateStoreOptions, type RedisTopology } from '../storage/index.ts';
import { describeLocation, parseStoreUrl, STORE_URL_FORMS, type StoreLocation } from '../storage/url.ts';

export class StorageUsageError extends Error {}

const USAGE = `usage: mimir-auth storage copy --to URL [--json]
  copies every record of the configured store into the store at URL, then reads each back
  URL: ${STORE_URL_FORMS}`;

export async function storageCommand(args: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { to: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (positionals[0] !== 'copy' || positionals.length !== 1) throw new StorageUsageError(USAGE);
  if (!values.to) throw new StorageUsageError(`--to is missing\n${USAGE}`);
  const config = loadConfig();
  let target: StoreLocation;
  try {
    target = parseStoreUrl(values.to, config.storage.redis.keyPrefix);
  } catch (e) {
    throw new StorageUsageError(`--to ${(e as Error).message}`);
  }
  const source = sourceLocation(config);
  if (sameStore(source, target)) throw new StorageUsageError(`--to names the configured store itself (${describeLocation(source)})`);
  const seals = sealKeys(config, target, err);

  err(`copying ${describeLocation(source)} → ${describeLocation(target)}`);
  const from = await createStore(config.storage.kind === 'redis'
    ? { kind: 'redis', redis: config.storage.redis }
    : { ...storeOptions(source), onPermissionsFixed: () => undefined });
  let to: Store | undefined;
  try {
    to = await createStore(storeOptions(target, config.variables.MIMIR_REDIS_SENTINEL_PASSWORD));
    const resealed = { signingKeys: 0, sessions: 0 };
    const report = await copyStore(from, to, {
      transform: (e) => reseal(e, seals, resealed),
      onProgress: (n) => err(`  … ${n} records copied`),
    });
    const total = Object.values(report.kinds).reduce((n, k) => n + k.copied, 0);
    if (values.json) {
      out(JSON.stringify({ source: describeLocation(source), target: describeLocation(target), ...report, resealed }, null, 2));
    } else {
      const width = Math.max(4, ...Object.keys(report.kinds).map((k) => k.length));
      for (const [kind, c] of Object.entries(report.kinds).sort(([a], [b]) => a.localeCompare(b))) {
        out(`  ${kind.padEnd(width)}  ${String(c.copied).padStart(6)} copied  ${String(c.verified).padStart(6)} verified`);
      }
      if (seals.signing.resealed) out(`signing keys re-sealed under ${seals.signing.under}: ${resealed.signingKeys}`);
      if (seals.session.resealed) out(`sessions re-sealed under ${seals.session.under}: ${resealed.sessions}`);
      if (report.expiredMeanwhile) out(`${report.expiredMeanwhile} records expired while being copied (not an error)`);
      for (const m of report.mismatches) out(`MISMATCH ${m}`);
      out(report.mismatches.length ? `${report.mismatches.length} of ${total} records did not read back the same` : `done: ${total} records in ${Object.keys(report.kinds).length} kinds, each read back the same`);
      for (const note of seals.notes) out(note);
    }
    return report.mismatches.length ? 1 : 0;
  } finally {
    await Promise.all([from.close(), to?.close()]);
  }
}

function sourceLocation(config: Config): StoreLocation {
  const s = config.storage;
  switch (s.kind) {
    case 'sqlite': return { kind: 'sqlite', path: s.sqlitePath };
    case 'redis': {
      const { url, db, keyPrefix, topology } = s.redis;
      if (topology.kind === 'standalone') return { kind: 'redis', url, db, keyPrefix };
      const u = new URL(url);
      const auth = { ...(u.username ? { username: decodeURIComponent(u.username) } : {}), ...(u.password ? { password: decodeURIComponent(u.password) } : {}), tls: u.protocol === 'rediss:', keyPrefix };
      return topology.kind === 'sentinel'
        ? { kind: 'redis-sentinel', sentinels: [...topology.sentinels], name: topology.name, db, ...auth }
        : { kind: 'redis-cluster', nodes: [...topology.nodes], ...auth };
    }
    case 'postgres': return { kind: 'postgres', url: s.postgres!.url };
    default: throw new StorageUsageError(`MIMIR_TOKEN_STORAGE=${s.kind} keeps nothing to copy`);
  }
}

/** `sentinelPassword`: MIMIR_REDIS_SENTINEL_PASSWORD, for a Sentinel target (a URL has no place for it). */
function storeOptions(l: StoreLocation, sentinelPassword?: string): CreateStoreOptions {
  switch (l.kind) {
    case 'sqlite': return { kind: 'sqlite', sqlitePath: l.path };
    case 'redis': return { kind: 'redis', redis: { url: l.url, db: l.db, keyPrefix: l.keyPrefix } };
    case 'postgres': return { kind: 'postgres', postgres: { url: l.url } };
    case 'redis-sentinel':
    case 'redis-cluster': {
      // The nodes come from the topology; the URL carries only what still applies to them.
      const auth = l.username || l.password ? `${encodeURIComponent(l.username ?? '')}${l.password ? `:${encodeURIComponent(l.password)}` : ''}@` : '';
      const db = l.kind === 'redis-sentinel' ? l.db : 0;
      const url = `${l.tls ? 'rediss' : 'redis'}://${auth}nodes-from-topology/${db}`;
      const topology: RedisTopology = l.kind === 'redis-sentinel'
        ? { kind: 'sentinel', sentinels: l.sentinels, name: l.name, ...(sentinelPassword ? { sentinelPassword } : {}) }
        : { kind: 'cluster', nodes: l.nodes };
      return { kind: 'redis', redis: { url, db, keyPrefix: l.keyPrefix, topology } };
    }
  }
}

function sameStore(a: StoreLocation, b: StoreLocation): boolean {
  return describeLocation(a) === describeLocation(b) && JSON.stringify(a) === JSON.stringify(b);
}

const MULTI_INSTANCE: ReadonlySet<StoreLocation['kind']> = new Set(['redis', 'redis-sentinel', 'redis-cluster', 'postgres']);

interface SealPlan {
  /** Keys that may open what the source holds, the configured one first. */
  from: Buffer[];
  to: Buffer;
  resealed: boolean;
  under: string;
}

function sealKeys(config: Config, target: StoreLocation, err: (line: string) => void): { signing: SealPlan; session: SealPlan; notes: string[] } {
  const notes: string[] = [];
  const beside = target.kind === 'sqlite' ? dirname(target.path) : undefined;
  if (target.kind === 'sqlite' && basename(target.path) !== 'mimir-auth.db') {
    notes.push(`note: a hub opens <MIMIR_DATA_DIR>/mimir-auth.db; rename ${target.path} or point MIMIR_DATA_DIR at a directory holding it under that name`);
  } else if (beside) {
    notes.push(`a hub on the target runs with MIMIR_DATA_DIR=${beside}`);
  }
  const plan = (secret: string | undefined, purpose: string, file: string, variable: string, required: boolean): SealPlan => {
    const from: Buffer[] = [];
    if (secret) from.push(deriveKey(secret, purpose));
    const sourceFile = join(config.dataDir, file);
    if (existsSync(sourceFile)) from.push(loadOrCreateKeyFile(sourceFile));
    if (secret) return { from, to: deriveKey(secret, purpose), resealed: true, under: variable };
    if (beside) {
      const targetFile = join(beside, file);
      return { from, to: loadOrCreateKeyFile(targetFile), resealed: true, under: targetFile };
    }
    if (required) {
      throw new StorageUsageError(`${variable}: is required to copy into ${describeLocation(target)}, which several hubs share: `
        + `every hub must open the signing keys, so they are sealed under ${variable} rather than ${sourceFile}; `
        + 'set it to a random value of at least 32 bytes (e.g. `openssl rand -base64 48`), the value every hub on the target will run with');
    }
    err(`warning: ${variable} is not set: sessions keep their IdP tokens sealed under ${sourceFile}; hubs without that file cannot renew those sign-ins (users sign in again). Set ${variable} to re-seal them.`);
    return { from, to: from[0] ?? loadOrCreateKeyFile(sourceFile), resealed: false, under: sourceFile };
  };
  return {
    signing: plan(config.jwt.secret, 'signing-key-encryption', 'signing-keys.key', 'MIMIR_JWT_SECRET', MULTI_INSTANCE.has(target.kind)),
    session: plan(config.session.secret, 'sessions', 'session.key', 'MIMIR_SESSION_SECRET', false),
    notes,
  };
}

function reseal(e: StoredEntry, seals: { signing: SealPlan; session: SealPlan }, count: { signingKeys: number; sessions: number }): StoredEntry {
  if (e.kind === SIGNING_KEY_KIND) {
    const record = e.payload as unknown as SigningKeyRecord;
    if (!record.privateSealed || !seals.signing.resealed) return e;
    const next = resealSigningKey(record, seals.signing.from, seals.signing.to);
    if (!next) throw new StorageUsageError(`signing key ${record.kid} does not open with MIMIR_JWT_SECRET nor the key file in MIMIR_DATA_DIR: run the copy with the settings the source hub runs with`);
    count.signingKeys++;
    return { ...e, payload: next as unknown as Record<string, unknown> };
  }
  if (!seals.session.resealed) return e;
  const next = resealSessionRecord(e.kind, e.id, e.payload, seals.session.from, seals.session.to);
  if (next === undefined) return e;
  if (next === null) return e; // a session whose IdP tokens no key opens stays as it was: its holder signs in again
  if (e.kind === 'session') count.sessions++;
  return { ...e, payload: next };
}
