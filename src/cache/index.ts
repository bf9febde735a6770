/**
 * The hub's hot-path caches, wired to the store's revocation messages. One instance per hub.
 * What is cached, and what still runs on every request, is described in bench/README.md.
 */
import { API_KEY_REVOKED_CHANNEL, type ApiKeyRecord, type ApiKeys } from '../api-keys/index.ts';
import type { Config } from '../config/index.ts';
import type { ServiceAccountRecord, ServiceAccounts } from '../service-accounts/index.ts';
import { SERVICE_ACCOUNT_CHANNEL } from '../service-accounts/index.ts';
import { SESSION_ENDED_CHANNEL, type SessionData } from '../sessions/sessions.ts';
import { MCP_SESSION_ENDED_CHANNEL, type McpSessionCache } from '../proxy/mcp-sessions.ts';
import { FAMILY_REVOKED_CHANNEL, type FamilyRecord } from '../oauth/refresh/refresh-tokens.ts';
import type { Store } from '../storage/adapter.ts';
import { RecordCache } from './records.ts';
import { VerifiedTokenCache } from './verified-tokens.ts';

export { tokenKey } from './verified-tokens.ts';

export interface AuthCaches {
  /** Verified Mimir JWTs by SHA-256 of the token. */
  readonly tokens: VerifiedTokenCache;
  /** API key records by SHA-256 of the presented key. */
  readonly apiKeys: RecordCache<ApiKeyRecord>;
  /** Service account records by client_id. */
  readonly serviceAccounts: RecordCache<ServiceAccountRecord>;
  /** Server-side sign-in sessions by session id. */
  readonly sessions: RecordCache<SessionData>;
  /** MCP session bindings by the hash of the hub's session id (src/proxy/mcp-sessions.ts). */
  readonly mcpSessions: McpSessionCache;
  /** Refresh-token families by id, for introspection and revocation (src/oauth/refresh/refresh-tokens.ts). */
  readonly refreshFamilies: RecordCache<FamilyRecord>;
}

/**
 * @example
 * const caches = await createAuthCaches(store, config.cache);
 * new Authenticator({ ...deps, caches });
 */
export async function createAuthCaches(
  store: Store, sizes: Config['cache'], now: () => number = Date.now,
  writers?: { apiKeys: ApiKeys; serviceAccounts: ServiceAccounts },
  /** Where sessions live and announce their end (MIMIR_SESSION_STORAGE), when not `store`. */
  sessionStore: Store = store,
): Promise<AuthCaches> {
  const maxAgeMs = sizes.credentialMaxAge * 1000;
  // Every store carries revocations to every process on it: Redis and PostgreSQL through pub/sub
  // and LISTEN/NOTIFY, SQLite through its change feed (what the CLI revokes beside a running server
  // reaches it within one poll, src/storage/sqlite.ts); this process's own writes invalidate at once
  // (below). A record changed without a message is read again after MIMIR_CREDENTIAL_CACHE_MAX_AGE.
  const credentials = sizes.credentials;
  const caches: AuthCaches = {
    tokens: new VerifiedTokenCache(sizes.tokens, now),
    apiKeys: new RecordCache<ApiKeyRecord>({ maxEntries: credentials, maxAgeMs, now }),
    serviceAccounts: new RecordCache<ServiceAccountRecord>({ maxEntries: credentials, maxAgeMs, now }),
    sessions: new RecordCache<SessionData>({ maxEntries: credentials, maxAgeMs, now }),
    mcpSessions: new RecordCache({ maxEntries: credentials, maxAgeMs, now }),
    refreshFamilies: new RecordCache<FamilyRecord>({ maxEntries: credentials, maxAgeMs, now }),
  };
  // Revocation and disabling publish the record id; with Redis every instance hears it.
  await store.subscribe(API_KEY_REVOKED_CHANNEL, (id) => caches.apiKeys.invalidate((r) => r.id === id));
  await store.subscribe(SERVICE_ACCOUNT_CHANNEL, (clientId) => caches.serviceAccounts.invalidate((r) => r.clientId === clientId));
  await sessionStore.subscribe(SESSION_ENDED_CHANNEL, (sid) => caches.sessions.forget(sid));
  await store.subscribe(MCP_SESSION_ENDED_CHANNEL, (key) => caches.mcpSessions.forget(key));
  await store.subscribe(FAMILY_REVOKED_CHANNEL, (familyId) => caches.refreshFamilies.forget(familyId));
  // The message of a change made here comes back through Redis a little later; this instance must
  // not serve the old record meanwhile, so its own writes invalidate as soon as they are stored.
  if (writers) {
    const after = <A extends [string, ...unknown[]], R>(fn: (...args: A) => Promise<R>, invalidate: (id: string) => void) =>
      async (...args: A): Promise<R> => { try { return await fn(...args); } finally { invalidate(args[0]); } };
    const { apiKeys, serviceAccounts } = writers;
    const forKey = (id: string) => caches.apiKeys.invalidate((r) => r.id === id);
    const forAccount = (clientId: string) => caches.serviceAccounts.invalidate((r) => r.clientId === clientId);
    apiKeys.revoke = after(apiKeys.revoke.bind(apiKeys), forKey);
    serviceAccounts.setDisabled = after(serviceAccounts.setDisabled.bind(serviceAccounts), forAccount);
    serviceAccounts.delete = after(serviceAccounts.delete.bind(serviceAccounts), forAccount);
    // Client authentication reads cached records too: a rotated-out secret (no grace) must fail
    // at once here and, through the message, on every other instance.
    serviceAccounts.rotateSecret = after(serviceAccounts.rotateSecret.bind(serviceAccounts), (clientId) => {
      forAccount(clientId);
      void store.publish(SERVICE_ACCOUNT_CHANNEL, clientId).catch(() => undefined);
    });
  }
  return caches;
}

/**
 * Service-account records through the record cache: what client authentication (token endpoint,
 * introspection, revocation) and the authenticator read, so none of them costs a storage round trip.
 * Each read first asks the revocation contact (`ServiceAccounts.assertFresh`).
 *
 * @example
 * await hub.serviceAccounts.authenticate(id, secret, serviceAccountFinder(hub.caches, hub.serviceAccounts));
 */
export function serviceAccountFinder(caches: AuthCaches, accounts: ServiceAccounts): (clientId: string) => Promise<ServiceAccountRecord | null> {
  // Every path (secret, private_key_jwt, workload, introspection, revocation) reads through here:
  // the cached record is only as good as this hub's view of the revocation channel.
  return async (clientId) => {
    accounts.assertFresh();
    return caches.serviceAccounts.get(clientId, () => accounts.get(clientId));
  };
}
