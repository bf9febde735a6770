/**
 * The hub's parts wired together once: storage, keys, credentials, authenticator, audit.
 * Used by the HTTP server, the CLI (which works on the store directly, no server needed)
 * and the library.
 */
import type { Logger } from 'pino';
import { AdminService } from './admin/service.ts';
import { ApiKeys } from './api-keys/index.ts';
import { createAudit, type Audit } from './audit/index.ts';
import { Authenticator } from './authn/authenticate.ts';
import { Authorizer } from './authz/index.ts';
import { Identities } from './authz/identity.ts';
import { createAuthCaches, type AuthCaches } from './cache/index.ts';
import type { Config } from './config/index.ts';
import { createTokenSigner, type TokenSigner } from './jwt/access-token.ts';
import { KEYS_CHANNEL, KeyRing } from './jwt/keys.ts';
import { createLogger } from './logger.ts';
import { AuthMetrics } from './metrics/index.ts';
import { clientsOf } from './oauth/clients/registry.ts';
import { RefreshTokens } from './oauth/refresh/refresh-tokens.ts';
import { loadRbac, type Rbac } from './rbac/policy.ts';
import { RevocationList } from './revocation/index.ts';
import { accessTokenPolicy } from './revocation/policy.ts';
import { ServiceAccounts } from './service-accounts/index.ts';
import { loadProviders, type ProviderSettings } from './oidc/providers.ts';
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
  /** Prometheus registry and per-credential request counts. */
  readonly metrics: AuthMetrics;
  readonly rbac: Rbac;
  /** The one authorization rule (src/authz): every surface asks it. */
  readonly authorizer: Authorizer;
  /** The upstream identity of principals (X-User-ID and what is keyed on it). */
  readonly identities: Identities;
  /** The configured upstream identity providers (the first is the default one). */
  readonly providers: readonly ProviderSettings[];
  readonly authenticator: Authenticator;
  /** Hot-path caches of verified tokens, API keys and service accounts. */
  readonly caches: AuthCaches;
  readonly audit: Audit;
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
  /** File descriptor for audit lines bound for stdout (the CLI uses 2). */
  auditFd?: number;
}

export async function openHub(config: Config, options: OpenOptions = {}): Promise<Hub> {
  const now = options.now ?? Date.now;
  const log = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? await createStore({
    kind: config.storage.kind, sqlitePath: config.storage.sqlitePath, redis: config.storage.redis,
    onPermissionsFixed: (fixed) => log.warn({ fixed }, `permissions tightened (readable by others before): ${fixed.map((f) => `${f.path} ${f.from} -> ${f.to}`).join(', ')}`),
  });
  try {
    const keys = await KeyRing.open(store, config, { now });
    await store.subscribe(KEYS_CHANNEL, () => { void keys.reload().catch((e: unknown) => log.error({ err: e }, 'reloading signing keys failed')); });
    const rbac = await loadRbac(config.rbacConfig);
    const authorizer = new Authorizer(rbac);
    const providers = loadProviders(config);
    const identities = new Identities(providers.map((p) => p.id), authorizer);
    // The general audience, the origin root (every path) and /mcp (RFC 8707 resources of the hub).
    const audiences = [...new Set([config.jwt.audience, config.publicUrl, `${config.publicUrl}/mcp`])];
    const signer = createTokenSigner(keys, { issuer: config.jwt.issuer, audience: config.jwt.audience, now });
    const apiKeys = new ApiKeys(store, { now });
    const serviceAccounts = new ServiceAccounts(store, { now, secretGraceSeconds: config.serviceAccounts.secretGrace });
    const revocations = await RevocationList.open(store, { now, onError: (e) => log.error({ err: e }, 'revocation list resync failed') });
    const refreshTokens = new RefreshTokens(store, {
      lifetimeSeconds: config.jwt.refreshTokenLifetime, now, revocations,
      accessTokenLifetime: Math.max(config.jwt.accessTokenLifetime, config.serviceAccounts.tokenLifetime),
    });
    const metrics = new AuthMetrics({ store, onError: (e) => log.warn({ err: e }, 'writing request counts failed') });
    const caches = await createAuthCaches(store, config.cache, now, { apiKeys, serviceAccounts });
    metrics.watchCache('tokens', () => caches.tokens.lookups);
    metrics.watchCache('api_keys', () => caches.apiKeys.lookups);
    metrics.watchCache('service_accounts', () => caches.serviceAccounts.lookups);
    metrics.watchCache('sessions', () => caches.sessions.lookups);
    const authenticator = new Authenticator({ config, keys, apiKeys, serviceAccounts, audiences, now, caches });
    // Revocation and DPoP checks on every Mimir JWT, for the server and library users alike.
    authenticator.policy = accessTokenPolicy({ revocations, store, publicUrl: config.publicUrl, requireBinding: config.security.requireTokenBinding, now });
    const audit = createAudit(config, { ...(options.auditFd !== undefined ? { stdoutFd: options.auditFd } : {}), observers: [(e) => metrics.observe(e)] });
    const admin = new AdminService({
      apiKeys, serviceAccounts, clients: clientsOf({ store, now, config }), refreshTokens, keys, revocations, authorizer, audit, now,
      sessions: () => authenticator.sessions,
      tokenLifetimeSeconds: Math.max(config.jwt.accessTokenLifetime, config.serviceAccounts.tokenLifetime),
    });
    return {
      caches, config, store, keys, signer, apiKeys, serviceAccounts, refreshTokens, revocations, metrics, rbac, authorizer, identities, providers, authenticator, audit, admin, log, audiences, now,
      async close() {
        revocations.close();
        await metrics.close();
        await audit.flush().catch(() => undefined);
        await store.close();
      },
    };
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
}
