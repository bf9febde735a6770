/**
 * The composition root: `openHub(config)` builds every part of a hub once and hands each its
 * collaborators through its constructor — storage, keys, credentials, the identity providers
 * (discovery, JWKS), sessions, the grants, refresh and revocation, the authenticator with all its
 * policies, the one authorization rule, audit and metrics. No part is registered by importing a
 * file and none is set after construction, so two hubs in one process share nothing. The HTTP
 * server (`buildServer(hub)`), the CLI and the library are surfaces over the same hub.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { AdminService } from './admin/service.ts';
import { ApiKeys } from './api-keys/index.ts';
import { createAudit, type Audit } from './audit/index.ts';
import { AuditStore } from './audit/store.ts';
import { Authenticator } from './authn/authenticate.ts';
import { Authorizer } from './authz/index.ts';
import { Identities } from './authz/identity.ts';
import { createAuthCaches, type AuthCaches } from './cache/index.ts';
import type { Config } from './config/index.ts';
import { createTokenSigner, type TokenSigner } from './jwt/access-token.ts';
import { KEYS_CHANNEL, KeyRing, signingSealKey } from './jwt/keys.ts';
import { DpopNonces } from './dpop/nonce.ts';
import { createLogger } from './logger.ts';
import { AuthMetrics } from './metrics/index.ts';
import { RefreshTokens } from './oauth/refresh/refresh-tokens.ts';
import { loadRbac, type Rbac } from './rbac/policy.ts';
import { RevocationContact } from './revocation/contact.ts';
import { RevocationList } from './revocation/index.ts';
import { accessTokenPolicy } from './revocation/policy.ts';
import { ServiceAccounts } from './service-accounts/index.ts';
import { loadProviders } from './oidc/providers.ts';
import { ProviderDirectory } from './oidc/discovery.ts';
import { IdpBearerVerifier, tokeninfoEndpoint } from './oidc/bearer.ts';
import { Sessions } from './sessions/sessions.ts';
import { sessionKey } from './sessions/key.ts';
import { ClientRegistry } from './oauth/clients/registry.ts';
import { createGrants, type Grants } from './oauth/token/grants.ts';
import { ClientKeys } from './oauth/token/client-keys.ts';
import { UpstreamAuth } from './proxy/upstream-auth.ts';
import { OpenStreams } from './proxy/open-streams.ts';
import type { Store } from './storage/adapter.ts';
import { createStore } from './storage/index.ts';

export interface Hub {
  readonly config: Config;
  readonly store: Store;
  readonly keys: KeyRing;
  readonly signer: TokenSigner;
  readonly apiKeys: ApiKeys;
  readonly serviceAccounts: ServiceAccounts;
  readonly refreshTokens: RefreshTokens;
  /** Revoked jti / sid / kid, mirrored locally from the Store's pub/sub (token lifecycle). */
  readonly revocations: RevocationList;
  /** Whether that mirror (and every cache fed by pub/sub) may be trusted now: MIMIR_REVOCATION_MAX_STALENESS. */
  readonly contact: RevocationContact;
  /** Where sign-in sessions live: `store` itself unless MIMIR_SESSION_STORAGE names another kind. */
  readonly sessionStore: Store;
  /** Prometheus registry and per-credential request counts. */
  readonly metrics: AuthMetrics;
  readonly rbac: Rbac;
  /** The one authorization rule (src/authz): every surface asks it. */
  readonly authorizer: Authorizer;
  /** The upstream identity of principals (X-User-ID and what is keyed on it). */
  readonly identities: Identities;
  /** The configured upstream identity providers (the first is the default one), discovered on first use. */
  readonly providers: ProviderDirectory;
  /** Verifies IdP access tokens presented as bearer tokens; undefined when no provider is configured. */
  readonly idp: IdpBearerVerifier | undefined;
  /** Sign-in sessions (server-side or sealed in the cookie, per MIMIR_SESSION_STORAGE). */
  readonly sessions: Sessions;
  /** OAuth clients of the authorization server: dynamic registrations, metadata documents, the CLI. */
  readonly clients: ClientRegistry;
  /** The grant types this hub's token endpoint serves, by `grant_type`. */
  readonly grants: Grants;
  /** The public keys clients authenticate with (private_key_jwt): inline, or fetched SSRF-safely and kept. */
  readonly clientKeys: ClientKeys;
  readonly authenticator: Authenticator;
  /** What the upstream Mimir gets to know who calls (MIMIR_UPSTREAM_AUTH). */
  readonly upstreamAuth: UpstreamAuth;
  /** Proxied event streams open now, closed when the credential that opened them stops. */
  readonly streams: OpenStreams;
  /** Hot-path caches of verified tokens, API keys and service accounts. */
  readonly caches: AuthCaches;
  /** RFC 9449 §8, §9 server nonces, when MIMIR_DPOP_REQUIRE_NONCE; stateless, shared by hubs with one MIMIR_JWT_SECRET. */
  readonly dpopNonces: DpopNonces | undefined;
  readonly audit: Audit;
  /** The audit log kept in the store (every instance's events), for the admin console; undefined when MIMIR_AUDIT_RETENTION_DAYS=0. */
  readonly auditLog: AuditStore | undefined;
  /** Every administrative change (CLI and admin HTTP API alike): authorized, validated, audited. */
  readonly admin: AdminService;
  readonly log: Logger;
  /** Audiences a Mimir JWT may carry to be accepted by the hub. */
  readonly audiences: string[];
  readonly now: () => number;
  close(): Promise<void>;
}

export interface OpenOptions {
  now?: () => number;
  logger?: Logger;
  /** Use this store instead of opening the configured one (tests). */
  store?: Store;
  /** File descriptor for audit lines bound for stdout (default 1). */
  auditFd?: number;
}

export async function openHub(config: Config, options: OpenOptions = {}): Promise<Hub> {
  const now = options.now ?? Date.now;
  const log = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? await createStore({
    kind: config.storage.kind, sqlitePath: config.storage.sqlitePath, redis: config.storage.redis, postgres: config.storage.postgres,
    onPermissionsFixed: (fixed) => log.warn({ fixed }, `permissions tightened (readable by others before): ${fixed.map((f) => `${f.path} ${f.from} -> ${f.to}`).join(', ')}`),
  });
  let sessionStore: Store = store;
  try {
    warnAboutSharedSecrets(config, store, log);
    sessionStore = await openSessionStore(config, store, log);
    const keys = await KeyRing.open(store, config, { now });
    await store.subscribe(KEYS_CHANNEL, () => { void keys.reload().catch((e: unknown) => log.error({ err: e }, 'reloading signing keys failed')); });
    const rbac = await loadRbac(config.rbacConfig);
    const authorizer = new Authorizer(rbac, { now });
    const providers = new ProviderDirectory(loadProviders(config));
    warnAboutProviders(providers, log);
    const identities = new Identities(providers.all.map((p) => p.id), authorizer);
    // The general audience, the origin root (every path) and /mcp (RFC 8707 resources of the hub).
    const audiences = [...new Set([config.jwt.audience, config.publicUrl, `${config.publicUrl}/mcp`])];
    const signer = createTokenSigner(keys, { issuer: config.jwt.issuer, audience: config.jwt.audience, now });
    const apiKeys = new ApiKeys(store, { now });
    const revocations = await RevocationList.open(store, { now, onError: (e) => log.error({ err: e }, 'revocation list resync failed') });
    // Wall-clock time, not the injectable clock: staleness is how long the channel has really been silent.
    const contact = new RevocationContact(store, {
      maxStalenessMs: config.revocation.maxStaleness * 1000,
      // After a gap: everything fed by pub/sub is brought back in line with the store before it is trusted again.
      resync: async () => {
        for (const cache of [caches.tokens, caches.apiKeys, caches.serviceAccounts, caches.sessions, caches.mcpSessions, caches.refreshFamilies]) cache.clear();
        await keys.reload();
        await revocations.resync();
        // What was published in the gap reached none of the watchers: requests under way since before it fail closed.
        streams.forgetBefore(performance.now());
      },
      onLost: () => {
        const closed = streams.closeAll();
        log.warn({ closed_streams: closed }, 'revocation channel lost: answering 503 until it is back and resynced');
      },
      onError: (e) => log.warn({ err: e }, 'resync after losing the revocation channel failed; trying again at the next heartbeat'),
    });
    const serviceAccounts = new ServiceAccounts(store, { now, secretGraceSeconds: config.serviceAccounts.secretGrace, contact });
    const caches = await createAuthCaches(store, config.cache, now, { apiKeys, serviceAccounts }, sessionStore);
    const refreshTokens = new RefreshTokens(store, {
      lifetimeSeconds: config.jwt.refreshTokenLifetime, now, revocations, contact, reuseIntervalSeconds: config.refresh.reuseInterval,
      accessTokenLifetime: Math.max(config.jwt.accessTokenLifetime, config.serviceAccounts.tokenLifetime),
      families: caches.refreshFamilies,
    });
    const metrics = new AuthMetrics({ store, now, revocationStaleness: () => contact.stalenessSeconds, onError: (e) => log.warn({ err: e }, 'writing request counts failed') });
    metrics.watchCache('tokens', () => caches.tokens.lookups);
    metrics.watchCache('api_keys', () => caches.apiKeys.lookups);
    metrics.watchCache('service_accounts', () => caches.serviceAccounts.lookups);
    metrics.watchCache('sessions', () => caches.sessions.lookups);
    metrics.watchCache('refresh_families', () => caches.refreshFamilies.lookups);
    const sessions = new Sessions(sessionStore, {
      mode: config.session.storage === 'cookie' ? 'cookie' : 'store',
      key: sessionKey(config), cookieName: config.session.cookie.name,
      idleSeconds: config.session.timeout, absoluteSeconds: config.session.absoluteTimeout, now,
      cache: caches.sessions, endedSeconds: config.jwt.refreshTokenLifetime,
    });
    // Counted when /metrics/auth is scraped (a store listing); cookie mode keeps no count.
    if (config.session.storage !== 'cookie') metrics.activeSessions = async () => (await sessions.count()) ?? 0;
    const idp = providers.all.length
      ? new IdpBearerVerifier(providers, { now, cacheSize: config.cache.tokens, onJwksFetch: (result) => metrics.jwksFetches.inc({ result }) })
      : undefined;
    if (idp) metrics.watchCache('idp_tokens', () => idp.lookups);
    // Keyed by the material that seals the signing keys: hubs that share MIMIR_JWT_SECRET (which
    // several hubs need anyway) accept each other's nonces, with nothing stored.
    const dpopNonces = config.security.dpopNonce ? new DpopNonces(signingSealKey(config.jwt.secret, config.dataDir), { now }) : undefined;
    const authenticator = new Authenticator({
      config, keys, apiKeys, serviceAccounts, audiences, now, caches, refreshTokens, sessions, contact,
      ...(idp ? { idp } : {}),
      // Revocation and DPoP checks on every Mimir JWT, for the server and library users alike.
      policy: accessTokenPolicy({ revocations, store, publicUrl: config.publicUrl, requireBinding: config.security.requireTokenBinding, now, nonces: dpopNonces }),
    });
    const { outboundCaFile: ca, cimdFetchTimeout, developmentMode } = config.authorizationServer;
    const clients = new ClientRegistry(store, {
      developmentMode, now, fetchLimits: { timeoutMs: cimdFetchTimeout * 1000, ...(ca ? { ca: readFileSync(ca, 'utf8') } : {}) },
    });
    const grants = createGrants(config);
    const clientKeys = new ClientKeys({ now, timeoutMs: cimdFetchTimeout * 1000, developmentMode, ...(ca ? { ca: readFileSync(ca, 'utf8') } : {}) });
    const upstreamAuth = new UpstreamAuth(config, { now });
    const streams = await OpenStreams.watch({ store, sessionStore, revocations, serviceAccounts, now });
    const auditLog = config.audit.retentionDays > 0
      ? new AuditStore(store, {
        retentionDays: config.audit.retentionDays, now, onError: (e) => log.warn({ err: e }, 'keeping audit events in the store failed'),
        onDropped: (reason, n) => metrics.auditDropped.inc({ reason }, n),
      })
      : undefined;
    const audit = createAudit(config, {
      ...(options.auditFd !== undefined ? { stdoutFd: options.auditFd } : {}),
      observers: [(e) => metrics.observe(e), ...(auditLog ? [(e: Parameters<AuditStore['record']>[0]) => auditLog.record(e)] : [])],
    });
    const admin = new AdminService({
      apiKeys, serviceAccounts, clients, refreshTokens, keys, revocations, authorizer, audit, now,
      sessions, listSessions: () => sessions.list(), activity: () => metrics.recent.lastHour(), ...(auditLog ? { auditLog } : {}),
      tokenLifetimeSeconds: Math.max(config.jwt.accessTokenLifetime, config.serviceAccounts.tokenLifetime),
    });
    await contact.start();
    return {
      caches, dpopNonces, config, store, sessionStore, keys, signer, apiKeys, serviceAccounts, refreshTokens, revocations, contact, metrics, rbac, authorizer, identities,
      providers, idp, sessions, clients, grants, clientKeys, authenticator, upstreamAuth, streams, audit, auditLog, admin, log, audiences, now,
      async close() {
        contact.close();
        revocations.close();
        await metrics.close();
        await audit.flush().catch(() => undefined);
        await auditLog?.close();
        if (sessionStore !== store) await sessionStore.close();
        await store.close();
      },
    };
  } catch (e) {
    if (sessionStore !== store) await sessionStore.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw e;
  }
}

/**
 * Sessions live in the token store unless MIMIR_SESSION_STORAGE names another kind (e.g. tokens in
 * PostgreSQL, sessions in Redis): then a store of that kind of their own, with the same settings.
 * Cookie sessions keep only their tombstones (ended sessions) in the token store.
 */
/**
 * Several hubs share a Redis or PostgreSQL store, and each must open the signing keys and the
 * sessions' sealed IdP tokens: sealed under a key file of this host, a hub elsewhere cannot.
 */
function warnAboutSharedSecrets(config: Config, store: Store, log: Logger): void {
  if (store.kind !== 'redis' && store.kind !== 'postgres') return;
  if (!config.jwt.secret) {
    log.warn(`${store.kind} storage is shared by every hub on it, but MIMIR_JWT_SECRET is not set: the signing keys are sealed with ${config.dataDir}/signing-keys.key, which hubs on other hosts do not have. `
      + 'Set MIMIR_JWT_SECRET to the same value on every hub (`mimir-auth storage copy` re-seals keys already stored).'
      + (config.security.dpopNonce ? ' The DPoP nonces (MIMIR_DPOP_REQUIRE_NONCE) are keyed by it too: until then a nonce of one hub is refused by the others.' : ''));
  }
  if (!config.session.secret && config.session.storage !== 'memory' && config.session.storage !== 'sqlite') {
    log.warn(`sessions are shared by every hub, but MIMIR_SESSION_SECRET is not set: their IdP tokens are sealed with ${config.dataDir}/session.key; set MIMIR_SESSION_SECRET to the same value on every hub`);
  }
}

async function openSessionStore(config: Config, store: Store, log: Logger): Promise<Store> {
  const kind = config.session.storage;
  if (kind === 'cookie' || kind === store.kind) return store;
  log.info({ sessions: kind, tokens: store.kind }, `sessions are kept in their own ${kind} store (MIMIR_SESSION_STORAGE)`);
  return createStore({ kind, sqlitePath: config.storage.sqlitePath, redis: config.storage.redis, postgres: config.storage.postgres });
}

/** Settings that work but leave a door open, said once at start. */
function warnAboutProviders(providers: ProviderDirectory, log: Logger): void {
  for (const p of providers.all) {
    if (p.issuerTemplate && p.allowedTenants.length === 0) {
      log.warn({ provider: p.id }, 'multi-tenant Azure provider without MIMIR_AZURE_ALLOWED_TENANTS: users of any Microsoft tenant can sign in');
    }
    if (p.kind === 'google' && p.opaqueTokens === 'userinfo' && !tokeninfoEndpoint(p)) {
      log.warn({ provider: p.id }, 'Google provider without a tokeninfo endpoint (endpoints.tokeninfo in the providers file, or MIMIR_OAUTH_TOKENINFO_ENDPOINT): '
        + 'its opaque access tokens are refused unless its discovery document publishes tokeninfo_endpoint');
    }
  }
}
