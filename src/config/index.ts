/**
 * Configuration once: every variable read, typed and validated here (zod), then frozen.
 * No other module reads `process.env`. A bad or insecure setting stops the start with one
 * line per variable naming it, the value's problem and what would be accepted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { VARIABLES, type Variable } from './variables.ts';
import { redactUrl, type AuthMethod, type LOG_LEVELS, type ProviderKind, type SigningAlgorithm, type StorageKind } from './values.ts';
import type { RedisTopology } from '../storage/redis-topology.ts';

export { PROVIDER_KINDS, SIGNING_ALGORITHMS, redactUrl, type AuthMethod, type ProviderKind, type SigningAlgorithm, type StorageKind } from './values.ts';

/** Placeholders from the seed document that must never sign a production token. */
const PLACEHOLDER_SECRETS = new Set([
  'your-jwt-secret-key', 'change-me-in-production', 'your-session-secret', 'your-secret',
  'your-service-secret', 'your-client-secret', 'changeme', 'secret',
]);

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** One parser per variable, as variables.ts describes it. */
const schema = z.object(Object.fromEntries(VARIABLES.map((d) => [d.name, d.parse])) as { [V in Variable as V['name']]: V['parse'] });

type Raw = z.infer<typeof schema>;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly publicUrl: string;
  readonly dataDir: string;
  readonly upstreamUrl: string | undefined;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** false, true, or a list of trusted proxy addresses (fastify `trustProxy`). */
  readonly trustProxy: boolean | string[];
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly maxHeaderBytes: number;
  readonly authMethods: ReadonlySet<AuthMethod>;
  readonly defaultAuthMethod: AuthMethod;
  readonly legacyApiKeys: ReadonlyArray<{ readonly key: string; readonly roles: readonly string[] }>;
  readonly provider: {
    readonly kind: ProviderKind | undefined;
    readonly providersFile: string | undefined;
    readonly issuer: string | undefined;
    readonly authorizationEndpoint: string | undefined;
    readonly tokenEndpoint: string | undefined;
    readonly jwksUri: string | undefined;
    readonly userinfoEndpoint: string | undefined;
    readonly revocationEndpoint: string | undefined;
    readonly tokeninfoEndpoint: string | undefined;
    readonly clientId: string | undefined;
    readonly clientSecret: string | undefined;
    readonly redirectUri: string;
    /** MIMIR_OAUTH_SCOPE; unset: each provider kind's default (src/oidc/providers.ts `defaultScope`). */
    readonly scope: string | undefined;
    readonly audience: string | undefined;
    readonly trustEmail: boolean;
    readonly okta: { readonly domain: string | undefined; readonly authorizationServer: string | undefined };
    readonly auth0: { readonly domain: string | undefined; readonly audience: string | undefined };
    readonly azure: { readonly tenantId: string | undefined; readonly tenantName: string | undefined; readonly allowedTenants: readonly string[] };
    readonly google: { readonly hostedDomain: string | undefined };
    readonly keycloak: { readonly realm: string | undefined; readonly serverUrl: string | undefined };
  };
  readonly storage: {
    readonly kind: StorageKind;
    readonly sqlitePath: string;
    readonly redis: {
      readonly url: string; readonly db: number; readonly keyPrefix: string;
      /** The URL's host, a Sentinel-managed master (MIMIR_REDIS_SENTINELS) or a Cluster (MIMIR_REDIS_CLUSTER_NODES). */
      readonly topology: RedisTopology;
    };
    /** MIMIR_DATABASE_URL, when set. */
    readonly postgres: { readonly url: string } | undefined;
  };
  readonly jwt: {
    readonly secret: string | undefined;
    readonly algorithm: SigningAlgorithm;
    readonly issuer: string;
    readonly audience: string;
    readonly accessTokenLifetime: number;
    readonly refreshTokenLifetime: number;
    readonly idTokenLifetime: number;
    readonly signingKeyOverlap: number;
  };
  readonly refresh: {
    readonly enabled: boolean; readonly rotation: boolean;
    /** Seconds the token just rotated out stays usable (MIMIR_REFRESH_REUSE_INTERVAL); 0 = off. */
    readonly reuseInterval: number;
  };
  readonly authorizationServer: {
    readonly developmentMode: boolean; readonly codeLifetime: number;
    readonly dynamicRegistration: boolean; readonly registrationRateLimit: number; readonly parRateLimit: number;
    readonly outboundCaFile: string | undefined;
    /** Seconds for the whole fetch of a client ID metadata document, body included. */
    readonly cimdFetchTimeout: number;
    /** draft-ietf-oauth-identity-assertion-authz-grant: ID-JAGs accepted at the token endpoint. */
    readonly idJag: boolean;
    /** RFC 9126 §5: only pushed authorization requests are accepted at the authorization endpoint. */
    readonly requirePar: boolean;
    /** RFC 7523 §2.1 workload identity federation: the issuers file, resolved. */
    readonly workloadIssuersFile: string | undefined;
  };
  /** `maxStaleness`: seconds after the last confirmed contact with the revocation channel that cached decisions may still be used. */
  readonly revocation: { readonly enabled: boolean; readonly endpoint: string; readonly maxStaleness: number };
  /** Seconds a stopping server waits for in-flight requests before it closes what is left. */
  readonly shutdownTimeout: number;
  readonly session: {
    readonly storage: 'redis' | 'memory' | 'sqlite' | 'postgres' | 'cookie';
    readonly secret: string | undefined;
    readonly timeout: number;
    readonly absoluteTimeout: number;
    readonly cookie: {
      /** The effective session cookie name: `__Host-` + MIMIR_SESSION_COOKIE_NAME when secure (see {@link sessionCookieNames}). */
      readonly name: string;
      /** The sign-in binding cookie (Path=/auth/callback), `__Secure-` when secure. */
      readonly loginName: string;
      readonly secure: boolean; readonly httpOnly: boolean; readonly sameSite: 'strict' | 'lax' | 'none';
    };
  };
  readonly serviceAccounts: { readonly enabled: boolean; readonly tokenLifetime: number; readonly secretGrace: number };
  readonly forwarding: { readonly enabled: boolean; readonly header: string };
  /** How the upstream learns who calls (MIMIR_UPSTREAM_AUTH), and Mimir's secret for `mimir-jwt`. */
  readonly upstreamAuth: { readonly mode: 'none' | 'forward' | 'mimir-jwt'; readonly jwtSecret: string | undefined };
  readonly tokenExchange: { readonly maxDepth: number };
  readonly userContext: { readonly enabled: boolean; readonly idHeader: string; readonly emailHeader: string; readonly rolesHeader: string };
  readonly rbacConfig: string | undefined;
  /** Origins (scheme://host[:port]) accepted in an Origin header on /mcp, besides the public URL's. */
  readonly mcpAllowedOrigins: readonly string[];
  readonly security: {
    readonly pkce: boolean; readonly state: boolean; readonly stateTimeout: number; readonly nonce: boolean;
    readonly tokenBinding: boolean; readonly requireTokenBinding: boolean;
    /** RFC 9449 §8, §9: DPoP proofs must carry a nonce of the hub (MIMIR_DPOP_REQUIRE_NONCE). */
    readonly dpopNonce: boolean;
  };
  readonly audit: { readonly enabled: boolean; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly destination: 'stdout' | 'file' | 'both'; readonly file: string; readonly retentionDays: number };
  readonly metrics: { readonly enabled: boolean; readonly endpoint: string };
  /** The pages' product name, logo (https URL or same-origin path) and accent colour (MIMIR_BRAND_*). */
  readonly brand: { readonly name: string; readonly logoUrl: string | undefined; readonly accent: string };
  readonly cleanup: { readonly intervalSeconds: number };
  /** Hot-path caches (bench/README.md "Performance"): entry bounds and the credential max age in seconds. */
  readonly cache: { readonly tokens: number; readonly credentials: number; readonly credentialMaxAge: number };
  /** The effective variables (defaults applied), for `mimir-auth config`. Secrets included: redact before showing. */
  readonly variables: Readonly<Record<string, string | undefined>>;
}

export interface LoadOptions {
  /** Directory whose `.env` is loaded when present (default: the working directory). */
  cwd?: string;
  /** Skip `.env` loading (tests). */
  dotenv?: boolean;
  /** Values that win over the environment and `.env` (the port `serve` chose for MIMIR_AUTH_PORT=0). */
  overrides?: Record<string, string>;
}

/** Reads, validates and freezes the configuration. Throws {@link ConfigError} listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env, options: LoadOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const fromFile = options.dotenv === false ? {} : readDotenv(cwd);
  const effective: Record<string, string | undefined> = {};
  for (const doc of VARIABLES) {
    const given = options.overrides?.[doc.name] ?? env[doc.name] ?? fromFile[doc.name];
    // An empty value means "unset", as most .env users expect.
    effective[doc.name] = given === undefined || given.trim() === '' ? doc.default : given;
  }

  const parsed = schema.safeParse(effective);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0] ?? 'configuration')}: ${issue.message}`);
    throw new ConfigError(dedupe(problems));
  }
  const raw = parsed.data;
  const config = build(raw, effective, cwd);
  const problems = [...insecure(config, raw), ...redisProblems(raw)];
  if (problems.length) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** The variables of `cwd`'s `.env`, when there is one. */
export function readDotenv(cwd: string): Record<string, string> {
  const file = resolve(cwd, '.env');
  if (!existsSync(file)) return {};
  return parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
}

function build(raw: Raw, variables: Record<string, string | undefined>, cwd: string): Config {
  const port = raw.MIMIR_AUTH_PORT;
  const tlsOn = Boolean(raw.MIMIR_TLS_CERT_FILE && raw.MIMIR_TLS_KEY_FILE);
  const publicUrl = raw.MIMIR_PUBLIC_URL ?? `${tlsOn ? 'https' : 'http'}://localhost:${port}`;
  const dataDir = resolve(cwd, raw.MIMIR_DATA_DIR);
  // The seed's `database`: PostgreSQL when a PostgreSQL URL is configured, the embedded SQLite otherwise.
  const database = raw.MIMIR_DATABASE_URL ? 'postgres' : 'sqlite';
  const storageKind: StorageKind = raw.MIMIR_TOKEN_STORAGE === 'database' ? database : raw.MIMIR_TOKEN_STORAGE;
  const sessionStorage = raw.MIMIR_SESSION_STORAGE === 'database' ? database : (raw.MIMIR_SESSION_STORAGE ?? storageKind);
  const longest = Math.max(raw.MIMIR_ACCESS_TOKEN_LIFETIME, raw.MIMIR_SERVICE_ACCOUNT_TOKEN_LIFETIME, raw.MIMIR_ID_TOKEN_LIFETIME);

  return {
    port,
    host: raw.MIMIR_AUTH_HOST,
    publicUrl,
    dataDir,
    upstreamUrl: raw.MIMIR_UPSTREAM_URL,
    tls: tlsOn ? { certFile: resolve(cwd, raw.MIMIR_TLS_CERT_FILE!), keyFile: resolve(cwd, raw.MIMIR_TLS_KEY_FILE!) } : undefined,
    trustProxy: raw.MIMIR_TRUST_PROXY,
    logLevel: raw.MIMIR_LOG_LEVEL,
    maxHeaderBytes: raw.MIMIR_MAX_HEADER_BYTES,
    authMethods: new Set(raw.MIMIR_AUTH_METHODS),
    defaultAuthMethod: raw.MIMIR_DEFAULT_AUTH_METHOD,
    legacyApiKeys: (raw.MIMIR_API_KEYS ?? []).map(parseLegacyKey),
    provider: {
      kind: raw.MIMIR_AUTH_PROVIDER,
      providersFile: raw.MIMIR_AUTH_PROVIDERS_FILE ? resolve(cwd, raw.MIMIR_AUTH_PROVIDERS_FILE) : undefined,
      issuer: raw.MIMIR_OAUTH_ISSUER,
      authorizationEndpoint: raw.MIMIR_OAUTH_AUTHORIZATION_ENDPOINT,
      tokenEndpoint: raw.MIMIR_OAUTH_TOKEN_ENDPOINT,
      jwksUri: raw.MIMIR_OAUTH_JWKS_URI,
      userinfoEndpoint: raw.MIMIR_OAUTH_USERINFO_ENDPOINT,
      revocationEndpoint: raw.MIMIR_OAUTH_REVOCATION_ENDPOINT,
      tokeninfoEndpoint: raw.MIMIR_OAUTH_TOKENINFO_ENDPOINT,
      clientId: raw.MIMIR_OAUTH_CLIENT_ID,
      clientSecret: raw.MIMIR_OAUTH_CLIENT_SECRET,
      redirectUri: raw.MIMIR_OAUTH_REDIRECT_URI ?? `${publicUrl}/auth/callback`,
      scope: raw.MIMIR_OAUTH_SCOPE,
      audience: raw.MIMIR_OAUTH_AUDIENCE,
      trustEmail: raw.MIMIR_OAUTH_TRUST_EMAIL,
      okta: { domain: raw.MIMIR_OKTA_DOMAIN, authorizationServer: raw.MIMIR_OKTA_AUTHORIZATION_SERVER },
      auth0: { domain: raw.MIMIR_AUTH0_DOMAIN, audience: raw.MIMIR_AUTH0_AUDIENCE },
      azure: { tenantId: raw.MIMIR_AZURE_TENANT_ID, tenantName: raw.MIMIR_AZURE_TENANT_NAME, allowedTenants: raw.MIMIR_AZURE_ALLOWED_TENANTS ?? [] },
      google: { hostedDomain: raw.MIMIR_GOOGLE_HOSTED_DOMAIN },
      keycloak: { realm: raw.MIMIR_KEYCLOAK_REALM, serverUrl: raw.MIMIR_KEYCLOAK_SERVER_URL },
    },
    storage: {
      kind: storageKind,
      sqlitePath: resolve(dataDir, 'mimir-auth.db'),
      redis: { url: raw.MIMIR_REDIS_URL, db: raw.MIMIR_REDIS_DB ?? urlDatabase(raw.MIMIR_REDIS_URL) ?? 0, keyPrefix: raw.MIMIR_REDIS_KEY_PREFIX, topology: redisTopology(raw) },
      postgres: raw.MIMIR_DATABASE_URL ? { url: raw.MIMIR_DATABASE_URL } : undefined,
    },
    jwt: {
      secret: raw.MIMIR_JWT_SECRET,
      algorithm: raw.MIMIR_JWT_ALGORITHM,
      issuer: raw.MIMIR_JWT_ISSUER ?? publicUrl,
      audience: raw.MIMIR_JWT_AUDIENCE,
      accessTokenLifetime: raw.MIMIR_ACCESS_TOKEN_LIFETIME,
      refreshTokenLifetime: raw.MIMIR_REFRESH_TOKEN_LIFETIME,
      idTokenLifetime: raw.MIMIR_ID_TOKEN_LIFETIME,
      signingKeyOverlap: raw.MIMIR_SIGNING_KEY_OVERLAP ?? longest,
    },
    refresh: { enabled: raw.MIMIR_ENABLE_TOKEN_REFRESH, rotation: raw.MIMIR_REFRESH_TOKEN_ROTATION, reuseInterval: raw.MIMIR_REFRESH_REUSE_INTERVAL },
    authorizationServer: {
      developmentMode: raw.MIMIR_DEVELOPMENT_MODE,
      codeLifetime: raw.MIMIR_AUTHORIZATION_CODE_LIFETIME,
      dynamicRegistration: raw.MIMIR_ENABLE_DYNAMIC_CLIENT_REGISTRATION,
      registrationRateLimit: raw.MIMIR_REGISTRATION_RATE_LIMIT,
      parRateLimit: raw.MIMIR_PAR_RATE_LIMIT,
      outboundCaFile: raw.MIMIR_OUTBOUND_CA_FILE ? resolve(cwd, raw.MIMIR_OUTBOUND_CA_FILE) : undefined,
      cimdFetchTimeout: raw.MIMIR_CIMD_FETCH_TIMEOUT,
      idJag: raw.MIMIR_ENABLE_ID_JAG,
      requirePar: raw.MIMIR_REQUIRE_PAR,
      workloadIssuersFile: raw.MIMIR_WORKLOAD_ISSUERS_FILE ? resolve(cwd, raw.MIMIR_WORKLOAD_ISSUERS_FILE) : undefined,
    },
    revocation: { enabled: raw.MIMIR_ENABLE_TOKEN_REVOCATION, endpoint: raw.MIMIR_REVOCATION_ENDPOINT, maxStaleness: raw.MIMIR_REVOCATION_MAX_STALENESS },
    shutdownTimeout: raw.MIMIR_SHUTDOWN_TIMEOUT,
    session: {
      storage: sessionStorage,
      secret: raw.MIMIR_SESSION_SECRET,
      timeout: raw.MIMIR_SESSION_TIMEOUT,
      absoluteTimeout: raw.MIMIR_SESSION_ABSOLUTE_TIMEOUT,
      cookie: {
        ...sessionCookieNames(raw.MIMIR_SESSION_COOKIE_NAME, raw.MIMIR_SESSION_COOKIE_SECURE),
        secure: raw.MIMIR_SESSION_COOKIE_SECURE,
        httpOnly: raw.MIMIR_SESSION_COOKIE_HTTPONLY,
        sameSite: raw.MIMIR_SESSION_COOKIE_SAMESITE,
      },
    },
    serviceAccounts: {
      enabled: raw.MIMIR_ENABLE_SERVICE_ACCOUNTS,
      tokenLifetime: raw.MIMIR_SERVICE_ACCOUNT_TOKEN_LIFETIME,
      secretGrace: raw.MIMIR_SERVICE_ACCOUNT_SECRET_GRACE,
    },
    // The seed's MIMIR_ENABLE_TOKEN_FORWARDING=true is `forward`; the two are checked for agreement in insecure().
    forwarding: { enabled: raw.MIMIR_ENABLE_TOKEN_FORWARDING || raw.MIMIR_UPSTREAM_AUTH === 'forward', header: raw.MIMIR_TOKEN_FORWARDING_HEADER },
    upstreamAuth: { mode: raw.MIMIR_UPSTREAM_AUTH ?? (raw.MIMIR_ENABLE_TOKEN_FORWARDING ? 'forward' : 'none'), jwtSecret: raw.MIMIR_UPSTREAM_JWT_SECRET },
    tokenExchange: { maxDepth: raw.MIMIR_TOKEN_EXCHANGE_MAX_DEPTH },
    userContext: {
      enabled: raw.MIMIR_ENABLE_USER_CONTEXT_PROPAGATION,
      idHeader: raw.MIMIR_USER_CONTEXT_HEADER,
      emailHeader: raw.MIMIR_USER_EMAIL_HEADER,
      rolesHeader: raw.MIMIR_USER_ROLES_HEADER,
    },
    rbacConfig: raw.MIMIR_RBAC_CONFIG,
    mcpAllowedOrigins: (raw.MIMIR_MCP_ALLOWED_ORIGINS ?? []).map((o) => new URL(o).origin),
    security: {
      pkce: raw.MIMIR_OAUTH_ENABLE_PKCE,
      state: raw.MIMIR_OAUTH_ENABLE_STATE,
      stateTimeout: raw.MIMIR_OAUTH_STATE_TIMEOUT,
      nonce: raw.MIMIR_OAUTH_ENABLE_NONCE,
      tokenBinding: raw.MIMIR_ENABLE_TOKEN_BINDING,
      requireTokenBinding: raw.MIMIR_REQUIRE_TOKEN_BINDING,
      dpopNonce: raw.MIMIR_DPOP_REQUIRE_NONCE,
    },
    audit: {
      enabled: raw.MIMIR_LOG_AUTH_EVENTS,
      level: raw.MIMIR_AUTH_LOG_LEVEL,
      destination: raw.MIMIR_AUDIT_LOG_DESTINATION,
      file: raw.MIMIR_AUDIT_LOG_FILE ? resolve(cwd, raw.MIMIR_AUDIT_LOG_FILE) : resolve(dataDir, 'audit.log'),
      retentionDays: raw.MIMIR_AUDIT_RETENTION_DAYS,
    },
    metrics: { enabled: raw.MIMIR_ENABLE_AUTH_METRICS, endpoint: raw.MIMIR_AUTH_METRICS_ENDPOINT },
    brand: { name: raw.MIMIR_BRAND_NAME, logoUrl: raw.MIMIR_BRAND_LOGO_URL, accent: raw.MIMIR_BRAND_ACCENT ?? '#2357d9' },
    cleanup: { intervalSeconds: raw.MIMIR_CLEANUP_INTERVAL },
    cache: { tokens: raw.MIMIR_TOKEN_CACHE_SIZE, credentials: raw.MIMIR_CREDENTIAL_CACHE_SIZE, credentialMaxAge: raw.MIMIR_CREDENTIAL_CACHE_MAX_AGE },
    variables: { ...variables },
  };
}

const COOKIE_PREFIX = /^__(host|secure)-/i;

/**
 * The cookie names, computed once so every user (sign-in, CSRF check, authenticator, proxy)
 * follows. Secure: the session cookie is `__Host-<name>`, which a browser keeps only when it is
 * Secure, Path=/ and without Domain, so neither a sibling subdomain nor a plain-http page can set
 * or shadow it (RFC 6265bis §4.1.3.2). The binding cookie's Path=/auth/callback rules `__Host-`
 * out; `__Secure-` (§4.1.3.1) still keeps insecure origins from setting it.
 */
export function sessionCookieNames(configured: string, secure: boolean): { name: string; loginName: string } {
  const stem = configured.replace(COOKIE_PREFIX, '');
  if (!secure) return { name: configured, loginName: `${stem}_login` };
  return { name: COOKIE_PREFIX.test(configured) ? configured : `__Host-${configured}`, loginName: `__Secure-${stem}_login` };
}

function parseLegacyKey(entry: string): { key: string; roles: string[] } {
  // "key" or "key:role1|role2" — a key itself never contains ':' in our format, legacy ones rarely do.
  const at = entry.lastIndexOf(':');
  if (at > 0 && /^[\w|:*-]+$/.test(entry.slice(at + 1)) && !entry.slice(at + 1).includes(':')) {
    return { key: entry.slice(0, at), roles: entry.slice(at + 1).split('|').filter(Boolean) };
  }
  return { key: entry, roles: [] };
}

function insecure(config: Config, raw: Raw): string[] {
  const problems: string[] = [];
  const secret = raw.MIMIR_JWT_SECRET;
  if (secret !== undefined && PLACEHOLDER_SECRETS.has(secret.trim().toLowerCase())) {
    problems.push(`MIMIR_JWT_SECRET: is a placeholder from the documentation; set a random value of at least 32 bytes (e.g. \`openssl rand -base64 48\`)`);
  } else if (config.jwt.algorithm === 'HS256') {
    if (secret === undefined) problems.push('MIMIR_JWT_SECRET: is required when MIMIR_JWT_ALGORITHM is HS256; set a random value of at least 32 bytes');
    else if (Buffer.byteLength(secret) < 32) problems.push(`MIMIR_JWT_SECRET: is ${Buffer.byteLength(secret)} bytes; HS256 needs at least 32 bytes`);
  } else if (secret !== undefined && Buffer.byteLength(secret) < 32) {
    problems.push(`MIMIR_JWT_SECRET: is ${Buffer.byteLength(secret)} bytes; it encrypts the signing keys and needs at least 32 bytes`);
  }
  const sessionSecret = raw.MIMIR_SESSION_SECRET;
  if (sessionSecret !== undefined) {
    if (PLACEHOLDER_SECRETS.has(sessionSecret.trim().toLowerCase())) problems.push('MIMIR_SESSION_SECRET: is a placeholder from the documentation; set a random value of at least 32 bytes');
    else if (Buffer.byteLength(sessionSecret) < 32) problems.push(`MIMIR_SESSION_SECRET: is ${Buffer.byteLength(sessionSecret)} bytes; at least 32 bytes are needed`);
  }
  for (const key of config.legacyApiKeys) {
    if (key.key.length < 16) problems.push('MIMIR_API_KEYS: an entry is shorter than 16 characters; legacy keys must be at least 16 characters');
    else if (PLACEHOLDER_SECRETS.has(key.key.toLowerCase()) || /^your-/.test(key.key)) problems.push('MIMIR_API_KEYS: an entry is a placeholder from the documentation');
  }
  if (raw.MIMIR_OAUTH_CLIENT_SECRET && PLACEHOLDER_SECRETS.has(raw.MIMIR_OAUTH_CLIENT_SECRET.toLowerCase())) {
    problems.push('MIMIR_OAUTH_CLIENT_SECRET: is a placeholder from the documentation; use the secret your IdP issued');
  }
  if (config.session.cookie.sameSite === 'none' && !config.session.cookie.secure) {
    problems.push('MIMIR_SESSION_COOKIE_SAMESITE: "none" requires MIMIR_SESSION_COOKIE_SECURE=true (browsers refuse it otherwise)');
  }
  if (!config.session.cookie.secure && COOKIE_PREFIX.test(raw.MIMIR_SESSION_COOKIE_NAME)) {
    problems.push('MIMIR_SESSION_COOKIE_NAME: a __Host- or __Secure- name needs MIMIR_SESSION_COOKIE_SECURE=true (browsers refuse it otherwise)');
  }
  if (config.security.requireTokenBinding && !config.security.tokenBinding) {
    problems.push('MIMIR_REQUIRE_TOKEN_BINDING: true needs MIMIR_ENABLE_TOKEN_BINDING=true');
  }
  if (config.security.dpopNonce && !config.security.tokenBinding) {
    problems.push('MIMIR_DPOP_REQUIRE_NONCE: true needs MIMIR_ENABLE_TOKEN_BINDING=true (no DPoP proof is read without it)');
  }
  if (raw.MIMIR_ENABLE_TOKEN_FORWARDING && raw.MIMIR_UPSTREAM_AUTH !== undefined && raw.MIMIR_UPSTREAM_AUTH !== 'forward') {
    problems.push(`MIMIR_UPSTREAM_AUTH: is "${raw.MIMIR_UPSTREAM_AUTH}" while MIMIR_ENABLE_TOKEN_FORWARDING=true asks for "forward"; set one of them`);
  }
  if (config.upstreamAuth.mode === 'mimir-jwt') {
    const upstreamSecret = raw.MIMIR_UPSTREAM_JWT_SECRET;
    if (!upstreamSecret) problems.push('MIMIR_UPSTREAM_JWT_SECRET: is required when MIMIR_UPSTREAM_AUTH is mimir-jwt; set it to the MIMIR_JWT_SECRET your Mimir runs with');
    // One secret must not both seal the hub's keys and be handed to Mimir.
    else if (secret !== undefined && upstreamSecret === secret) problems.push('MIMIR_UPSTREAM_JWT_SECRET: equals MIMIR_JWT_SECRET; give Mimir a secret of its own (it signs tokens Mimir trusts; the hub\'s seals its signing keys)');
  } else if (raw.MIMIR_UPSTREAM_JWT_SECRET !== undefined) {
    problems.push('MIMIR_UPSTREAM_JWT_SECRET: is set but MIMIR_UPSTREAM_AUTH is not mimir-jwt; set MIMIR_UPSTREAM_AUTH=mimir-jwt or remove it');
  }
  const postgresFor = config.storage.kind === 'postgres' ? 'MIMIR_TOKEN_STORAGE' : config.session.storage === 'postgres' ? 'MIMIR_SESSION_STORAGE' : undefined;
  if (postgresFor && !config.storage.postgres) {
    problems.push(`MIMIR_DATABASE_URL: is required when ${postgresFor} is postgres; set it to postgres://user:password@host:5432/database`);
  }
  if ((raw.MIMIR_TLS_CERT_FILE === undefined) !== (raw.MIMIR_TLS_KEY_FILE === undefined)) {
    problems.push('MIMIR_TLS_CERT_FILE: and MIMIR_TLS_KEY_FILE must be set together');
  }
  return problems;
}

/** Sentinels win over the URL's host, as do cluster nodes (both set is refused in redisProblems). */
function redisTopology(raw: Raw): RedisTopology {
  if (raw.MIMIR_REDIS_SENTINELS) {
    return { kind: 'sentinel', sentinels: raw.MIMIR_REDIS_SENTINELS, name: raw.MIMIR_REDIS_SENTINEL_NAME ?? '', sentinelPassword: raw.MIMIR_REDIS_SENTINEL_PASSWORD };
  }
  if (raw.MIMIR_REDIS_CLUSTER_NODES) return { kind: 'cluster', nodes: raw.MIMIR_REDIS_CLUSTER_NODES };
  return { kind: 'standalone' };
}

/** The database in MIMIR_REDIS_URL's path (`redis://host:6379/2`); NaN when the path is something else. */
function urlDatabase(url: string): number | undefined {
  let path: string;
  try { path = new URL(url).pathname; } catch { return undefined; }
  if (path === '' || path === '/') return undefined;
  return /^\/\d{1,2}$/.test(path) ? Number(path.slice(1)) : Number.NaN;
}

function redisProblems(raw: Raw): string[] {
  const problems: string[] = [];
  const sentinels = raw.MIMIR_REDIS_SENTINELS !== undefined;
  const cluster = raw.MIMIR_REDIS_CLUSTER_NODES !== undefined;
  let fromUrl: number | undefined;
  if (!URL.canParse(raw.MIMIR_REDIS_URL)) problems.push('MIMIR_REDIS_URL: is not a valid URL (redis://[user:password@]host:port[/database])');
  else if ((fromUrl = urlDatabase(raw.MIMIR_REDIS_URL)) !== undefined && !(fromUrl <= 15)) {
    problems.push('MIMIR_REDIS_URL: its path is not a database number from 0 to 15 (redis://host:port/2)');
  }
  if (sentinels && cluster) {
    problems.push('MIMIR_REDIS_SENTINELS: and MIMIR_REDIS_CLUSTER_NODES are both set; Redis runs either under Sentinel or as a Cluster: set one of them');
  } else if (sentinels && raw.MIMIR_REDIS_SENTINEL_NAME === undefined) {
    problems.push('MIMIR_REDIS_SENTINEL_NAME: is required with MIMIR_REDIS_SENTINELS; set it to the master name the sentinels monitor (sentinel monitor <name> ...)');
  }
  if (!sentinels) {
    for (const name of ['MIMIR_REDIS_SENTINEL_NAME', 'MIMIR_REDIS_SENTINEL_PASSWORD'] as const) {
      if (raw[name] !== undefined) problems.push(`${name}: is set but MIMIR_REDIS_SENTINELS is not; list the sentinels there, or remove it`);
    }
  }
  if (cluster) {
    // A Cluster serves only database 0 (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/).
    if (raw.MIMIR_REDIS_DB !== undefined && raw.MIMIR_REDIS_DB !== 0) {
      problems.push(`MIMIR_REDIS_DB: is ${raw.MIMIR_REDIS_DB}, but a Redis Cluster (MIMIR_REDIS_CLUSTER_NODES) has only database 0; remove it or set 0`);
    }
    if (fromUrl !== undefined && fromUrl > 0 && fromUrl <= 15) {
      problems.push(`MIMIR_REDIS_URL: names database ${fromUrl} in its path, but a Redis Cluster (MIMIR_REDIS_CLUSTER_NODES) has only database 0; remove the path`);
    }
  }
  return problems;
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    if (!(o instanceof Set)) for (const value of Object.values(o)) deepFreeze(value);
  }
  return o;
}

/** The effective variables with every secret redacted, for `mimir-auth config`. */
export function redactedVariables(config: Config): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const doc of VARIABLES) {
    const value = config.variables[doc.name];
    if (value === undefined) out[doc.name] = undefined;
    else if (doc.name === 'MIMIR_REDIS_URL' || doc.name === 'MIMIR_DATABASE_URL') out[doc.name] = redactUrl(value);
    else out[doc.name] = doc.secret ? '<redacted>' : value;
  }
  return out;
}

/** `.env.example`: every variable with its default and one-line meaning. */
export function envExample(): string {
  const lines = [
    '# Mimir Auth Hub configuration. Every variable, its default, and what it means.',
    '# Generated by `npm run docs` (or `mimir-auth config --example`) from src/config/variables.ts; a test keeps them in step.',
  ];
  let section = '';
  for (const doc of VARIABLES) {
    if (doc.section !== section) {
      section = doc.section;
      lines.push('', `# ── ${section} ${'─'.repeat(Math.max(0, 70 - section.length))}`);
    }
    lines.push(`# ${doc.description}${doc.added ? ' (hub addition)' : ''}`);
    lines.push(doc.default === undefined ? `# ${doc.name}=` : `${doc.name}=${doc.default}`);
  }
  return lines.join('\n') + '\n';
}
