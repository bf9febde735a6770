/**
 * Every configuration variable of the hub, described once: its section, name, parser (what it
 * accepts, with a message naming what would be), default, one-line meaning, whether it is a
 * secret, whether the hub added it to the seed's list, and the release it appeared in. The
 * configuration module (index.ts) parses with these; `.env.example` and the README's
 * configuration reference are generated from them (`npm run docs`), and tests fail when either
 * is stale. The seed's "Complete OAuth Configuration" variables keep their names and meanings.
 */
import { z } from 'zod';
import {
  bool, hexColour, hostPortList, httpUrl, imageUrl, int, issuerUrl, list, LOG_LEVELS, oneOf, oneOfCaseless, path, postgresUrl, PROVIDER_KINDS, redactUrl, show, SIGNING_ALGORITHMS, trustProxy,
} from './values.ts';

export interface VariableDoc<P extends z.ZodType = z.ZodType> {
  readonly section: string;
  readonly name: string;
  /** Parses the value (after the default is applied): what it accepts and what it becomes. */
  readonly parse: P;
  /** The default as written in `.env.example`; `undefined` when unset by default. */
  readonly default: string | undefined;
  readonly description: string;
  /** Redacted by `mimir-auth config` and never logged. */
  readonly secret?: boolean;
  /** Not in the seed: an addition of the hub. */
  readonly added?: boolean;
  /** The release that introduced it. */
  readonly since: string;
}

const v = <N extends string, P extends z.ZodType>(
  section: string, name: N, parse: P, def: string | undefined, description: string,
  extra: { secret?: boolean; added?: boolean; since?: string } = {},
): VariableDoc<P> & { readonly name: N } => ({ section, name, parse, default: def, description, since: '0.1.0', ...extra });

export const VARIABLES = [
  // Server (added)
  v('Server', 'MIMIR_AUTH_PORT', int(0, 65535), '9042', 'TCP port the hub listens on', { added: true }),
  v('Server', 'MIMIR_AUTH_HOST', z.string().trim().min(1), '127.0.0.1', 'Interface the hub binds to (0.0.0.0 for all)', { added: true }),
  v('Server', 'MIMIR_PUBLIC_URL', httpUrl.optional(), undefined, 'Public base URL of the hub; default http://localhost:<port>. Default of MIMIR_JWT_ISSUER', { added: true }),
  v('Server', 'MIMIR_DATA_DIR', z.string().trim().min(1), './data', 'Directory for the SQLite database and generated key files', { added: true }),
  v('Server', 'MIMIR_UPSTREAM_URL', httpUrl.optional(), undefined, 'The Mimir server behind the hub (authenticating reverse proxy target)', { added: true }),
  v('Server', 'MIMIR_TLS_CERT_FILE', z.string().optional(), undefined, 'PEM certificate: the hub serves HTTPS itself when this and MIMIR_TLS_KEY_FILE are set', { added: true }),
  v('Server', 'MIMIR_TLS_KEY_FILE', z.string().optional(), undefined, 'PEM private key for MIMIR_TLS_CERT_FILE', { added: true }),
  v('Server', 'MIMIR_TRUST_PROXY', trustProxy, 'false', 'Believe X-Forwarded-Proto/Host/For (true, false, or a comma-separated list of proxy IPs/CIDRs)', { added: true }),
  v('Server', 'MIMIR_LOG_LEVEL', oneOf(LOG_LEVELS), 'info', 'Operational log level: fatal, error, warn, info, debug, trace, silent', { added: true }),
  v('Server', 'MIMIR_MAX_HEADER_BYTES', int(8192, 1048576, ' bytes'), '16384', 'Largest request header block accepted; credentials over 8 KB are refused regardless', { added: true }),
  v('Server', 'MIMIR_SHUTDOWN_TIMEOUT', int(1, 3600, ' seconds'), '10', 'Seconds a stopping hub (SIGTERM, SIGINT) waits for in-flight requests to finish before it closes what is left and exits 1', { added: true }),

  // Authentication mode
  v('Authentication Mode', 'MIMIR_AUTH_METHODS', list.pipe(z.array(oneOf(['api-key', 'oauth', 'jwt'] as const)).min(1, { error: 'is empty; list at least one of api-key, oauth, jwt' })), 'api-key,oauth,jwt', 'Accepted credential kinds, comma-separated: api-key, oauth, jwt'),
  v('Authentication Mode', 'MIMIR_DEFAULT_AUTH_METHOD', oneOf(['api-key', 'oauth', 'jwt'] as const), 'oauth', 'Method named in the WWW-Authenticate challenge when no credential is sent: api-key, oauth, jwt'),
  v('Authentication Mode', 'MIMIR_API_KEYS', list.optional(), undefined, 'Legacy static API keys, comma-separated (backward compatibility); each may end with :role1|role2', { added: true, secret: true }),

  // OAuth provider
  v('OAuth Provider', 'MIMIR_AUTH_PROVIDER', oneOfCaseless(PROVIDER_KINDS).optional(), undefined, 'Upstream IdP kind: okta, auth0, azure, google, keycloak, cognito, generic (unset: no IdP sign-in)'),
  v('OAuth Provider', 'MIMIR_AUTH_PROVIDERS_FILE', z.string().optional(), undefined, 'JSON or YAML file listing several providers at once', { added: true }),
  v('OAuth Provider', 'MIMIR_OAUTH_ISSUER', issuerUrl.optional(), undefined, 'IdP issuer URL (https, or http on a loopback host); endpoints are discovered from it'),
  v('OAuth Provider', 'MIMIR_OAUTH_AUTHORIZATION_ENDPOINT', httpUrl.optional(), undefined, 'Overrides the discovered authorization endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_TOKEN_ENDPOINT', httpUrl.optional(), undefined, 'Overrides the discovered token endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_JWKS_URI', httpUrl.optional(), undefined, 'Overrides the discovered JWKS URI'),
  v('OAuth Provider', 'MIMIR_OAUTH_USERINFO_ENDPOINT', httpUrl.optional(), undefined, 'Overrides the discovered userinfo endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_REVOCATION_ENDPOINT', httpUrl.optional(), undefined, 'Overrides the discovered revocation endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_TOKENINFO_ENDPOINT', httpUrl.optional(), undefined, 'Google: tokeninfo endpoint that says which client an opaque access token was issued to; default https://oauth2.googleapis.com/tokeninfo for https://accounts.google.com, else the discovered tokeninfo_endpoint', { added: true }),
  v('OAuth Provider', 'MIMIR_OAUTH_CLIENT_ID', z.string().optional(), undefined, 'The hub\'s client id at the IdP'),
  v('OAuth Provider', 'MIMIR_OAUTH_CLIENT_SECRET', z.string().optional(), undefined, 'The hub\'s client secret at the IdP', { secret: true }),
  v('OAuth Provider', 'MIMIR_OAUTH_REDIRECT_URI', httpUrl.optional(), undefined, 'Callback registered at the IdP; default <MIMIR_PUBLIC_URL>/auth/callback'),
  v('OAuth Provider', 'MIMIR_OAUTH_SCOPE', z.string().trim().min(1).optional(), undefined, 'Scopes requested at sign-in; default openid profile email, plus the kind\'s role scope where it has one (okta: groups, when the IdP lists it)'),
  v('OAuth Provider', 'MIMIR_OAUTH_AUDIENCE', z.string().optional(), undefined, 'Audience IdP access tokens must carry to be accepted as bearer tokens'),
  v('OAuth Provider', 'MIMIR_OAUTH_TRUST_EMAIL', bool, 'false', 'Use the IdP\'s email even without email_verified: true (only for an IdP that verifies every address)', { added: true }),

  // Token configuration
  v('Token Configuration', 'MIMIR_TOKEN_STORAGE', oneOf(['database', 'sqlite', 'postgres', 'redis', 'memory'] as const), 'database', 'Token storage: database (postgres when MIMIR_DATABASE_URL is set, else sqlite), sqlite (embedded, one instance), postgres, redis, memory (development only)'),
  v('Token Configuration', 'MIMIR_DATABASE_URL', postgresUrl.optional(), undefined, 'PostgreSQL URL (postgres://user:password@host:5432/database) for postgres storage; schema mimir_auth is created on first start', { added: true, secret: true }),
  v('Token Configuration', 'MIMIR_REDIS_URL', z.string().trim().refine((s) => /^rediss?:\/\//.test(s), { error: (i) => `${show(redactUrl(String(i.input)))} is not a redis:// or rediss:// URL` }), 'redis://localhost:6379', 'Redis URL when storage is redis', { secret: true }),
  v('Token Configuration', 'MIMIR_REDIS_DB', int(0, 15).optional(), undefined, 'Redis database number; default the one in the path of MIMIR_REDIS_URL (redis://host:6379/2), else 0'),
  v('Token Configuration', 'MIMIR_REDIS_KEY_PREFIX', z.string(), 'mimir:tokens:', 'Prefix of every Redis key the hub writes'),
  v('Token Configuration', 'MIMIR_REDIS_SENTINELS', hostPortList.optional(), undefined, 'Redis Sentinel: the sentinels, comma-separated host:port ([::1]:26379 for IPv6); the hub asks them for the master of MIMIR_REDIS_SENTINEL_NAME and follows its failovers. Replaces the host of MIMIR_REDIS_URL, whose user, password, database and rediss: still apply', { added: true }),
  v('Token Configuration', 'MIMIR_REDIS_SENTINEL_NAME', z.string().trim().min(1).optional(), undefined, 'The master name the sentinels monitor (required with MIMIR_REDIS_SENTINELS)', { added: true }),
  v('Token Configuration', 'MIMIR_REDIS_SENTINEL_PASSWORD', z.string().optional(), undefined, 'Password of the sentinels themselves (their requirepass), when they have one; the master\'s is in MIMIR_REDIS_URL', { added: true, secret: true }),
  v('Token Configuration', 'MIMIR_REDIS_CLUSTER_NODES', hostPortList.optional(), undefined, 'Redis Cluster: some of its nodes, comma-separated host:port (the others are discovered). Replaces the host of MIMIR_REDIS_URL, whose user, password and rediss: still apply; database 0 only', { added: true }),
  v('Token Configuration', 'MIMIR_JWT_SECRET', z.string().optional(), undefined, 'HS256 signing secret (>= 32 bytes); otherwise the key that encrypts private signing keys at rest', { secret: true }),
  v('Token Configuration', 'MIMIR_JWT_ALGORITHM', oneOf(SIGNING_ALGORITHMS), 'RS256', 'Mimir JWT signing algorithm: RS256, ES256, EdDSA, HS256'),
  v('Token Configuration', 'MIMIR_JWT_ISSUER', z.string().trim().min(1).optional(), undefined, 'iss of Mimir JWTs; default MIMIR_PUBLIC_URL'),
  v('Token Configuration', 'MIMIR_JWT_AUDIENCE', z.string().trim().min(1), 'mimir-api', 'aud of Mimir JWTs'),
  v('Token Configuration', 'MIMIR_ACCESS_TOKEN_LIFETIME', int(1, 31536000, ' seconds'), '3600', 'Mimir access token lifetime, seconds'),
  v('Token Configuration', 'MIMIR_REFRESH_TOKEN_LIFETIME', int(1, 31536000, ' seconds'), '2592000', 'Mimir refresh token lifetime, seconds'),
  v('Token Configuration', 'MIMIR_ID_TOKEN_LIFETIME', int(1, 31536000, ' seconds'), '3600', 'ID token lifetime, seconds'),
  v('Token Configuration', 'MIMIR_ENABLE_TOKEN_REFRESH', bool, 'true', 'Allow refresh_token grants and /auth/refresh'),
  v('Token Configuration', 'MIMIR_REFRESH_TOKEN_ROTATION', bool, 'true', 'Issue a new refresh token on every refresh (reuse of an old one revokes the family)'),
  v('Token Configuration', 'MIMIR_REFRESH_REUSE_INTERVAL', int(0, 300, ' seconds'), '0', 'Seconds during which the refresh token just rotated out may be presented again, once (two tabs, a retry after a lost response), and still gets a working token pair instead of revoking the family; only one of the two answers may go on refreshing; 0 = off', { added: true }),
  v('Token Configuration', 'MIMIR_ENABLE_TOKEN_REVOCATION', bool, 'true', 'Enable RFC 7009 revocation'),
  v('Token Configuration', 'MIMIR_REVOCATION_ENDPOINT', path, '/auth/revoke', 'Path of the revocation endpoint'),
  v('Token Configuration', 'MIMIR_SIGNING_KEY_OVERLAP', int(0, 31536000, ' seconds').optional(), undefined, 'Seconds a rotated-out signing key stays published; default the longest token lifetime', { added: true }),
  v('Token Configuration', 'MIMIR_REVOCATION_MAX_STALENESS', int(2, 3600, ' seconds'), '5', 'Seconds a hub on a shared store (Redis, PostgreSQL) keeps answering from what it knows of revocations after it last confirmed its revocation channel (a heartbeat every second); beyond it, requests that depend on revocations get 503. At least 2 (a heartbeat and its round trip must fit)', { added: true }),

  // Authorization server for MCP clients and the CLI (added)
  v('Authorization Server', 'MIMIR_DEVELOPMENT_MODE', bool, 'false', 'Development mode: client ID metadata documents may be fetched from loopback/private addresses over http', { added: true }),
  v('Authorization Server', 'MIMIR_AUTHORIZATION_CODE_LIFETIME', int(5, 600, ' seconds'), '60', 'Lifetime of authorization codes, seconds (single use)', { added: true }),
  v('Authorization Server', 'MIMIR_ENABLE_DYNAMIC_CLIENT_REGISTRATION', bool, 'true', 'Accept RFC 7591 dynamic client registration at /auth/register (MCP 2025-11-25 clients)', { added: true }),
  v('Authorization Server', 'MIMIR_OUTBOUND_CA_FILE', z.string().optional(), undefined, 'Extra PEM CA certificates trusted when fetching client ID metadata documents (private PKI)', { added: true }),
  v('Authorization Server', 'MIMIR_CIMD_FETCH_TIMEOUT', int(1, 60, ' seconds'), '5', 'Seconds allowed for fetching a client ID metadata document in full (connection, headers and body); a failed fetch is remembered for a minute', { added: true }),
  v('Authorization Server', 'MIMIR_REGISTRATION_RATE_LIMIT', int(1, 100000, ' per minute'), '10', 'Dynamic registrations allowed per source IP per minute', { added: true }),
  v('Authorization Server', 'MIMIR_PAR_RATE_LIMIT', int(1, 100000, ' per minute'), '60', 'Pushed authorization requests (RFC 9126, /auth/par) allowed per source IP per minute; over it, 429 with Retry-After', { added: true }),
  v('Authorization Server', 'MIMIR_REQUIRE_PAR', bool, 'false', 'Accept only pushed authorization requests (RFC 9126) at /auth/authorize: a client first POSTs its request to /auth/par and sends the request_uri it gets; metadata then says require_pushed_authorization_requests (FAPI 2.0)', { added: true }),
  v('Authorization Server', 'MIMIR_ENABLE_ID_JAG', bool, 'false', 'Accept Identity Assertion JWT Authorization Grants (ID-JAG, MCP enterprise-managed authorization) from the configured identity providers at /auth/token (grant_type jwt-bearer)', { added: true }),
  v('Authorization Server', 'MIMIR_WORKLOAD_ISSUERS_FILE', z.string().trim().min(1).optional(), undefined, 'JSON file of workload identity issuers (RFC 7523 §2.1): [{"issuer", "jwksUri", "audience", "subject", "serviceAccount"}]; their JWTs get service-account tokens at /auth/token (grant_type jwt-bearer)', { added: true }),

  // Sessions
  v('Session Management', 'MIMIR_SESSION_STORAGE', oneOf(['redis', 'memory', 'database', 'sqlite', 'postgres', 'cookie'] as const).optional(), undefined, 'Session storage: redis, memory, database (postgres when MIMIR_DATABASE_URL is set, else sqlite), postgres, cookie; default follows MIMIR_TOKEN_STORAGE'),
  v('Session Management', 'MIMIR_SESSION_SECRET', z.string().optional(), undefined, 'Key material for session cookies (>= 32 bytes); default a generated key file in MIMIR_DATA_DIR', { secret: true }),
  v('Session Management', 'MIMIR_SESSION_TIMEOUT', int(1, 31536000, ' seconds'), '900', 'Idle timeout of a session, seconds (sliding)'),
  v('Session Management', 'MIMIR_SESSION_ABSOLUTE_TIMEOUT', int(1, 31536000, ' seconds'), '43200', 'Absolute session lifetime, seconds, whatever the activity', { added: true }),
  v('Session Management', 'MIMIR_SESSION_COOKIE_NAME', z.string().trim().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: (i) => `${show(i.input)} is not a valid cookie name (letters, digits and !#$%&'*+-.^_\`|~)` }), 'mimir_session', 'Session cookie name; with secure cookies it is sent as __Host-<name>'),
  v('Session Management', 'MIMIR_SESSION_COOKIE_SECURE', bool, 'true', 'Secure flag of the session cookie'),
  v('Session Management', 'MIMIR_SESSION_COOKIE_HTTPONLY', bool, 'true', 'HttpOnly flag of the session cookie'),
  v('Session Management', 'MIMIR_SESSION_COOKIE_SAMESITE', oneOfCaseless(['strict', 'lax', 'none'] as const), 'strict', 'SameSite of the session cookie: strict, lax, none'),

  // Downstream
  v('Downstream Services', 'MIMIR_ENABLE_SERVICE_ACCOUNTS', bool, 'true', 'Enable service accounts and the client_credentials grant'),
  v('Downstream Services', 'MIMIR_SERVICE_ACCOUNT_TOKEN_LIFETIME', int(1, 31536000, ' seconds'), '86400', 'Lifetime of service account access tokens, seconds'),
  v('Downstream Services', 'MIMIR_SERVICE_ACCOUNT_SECRET_GRACE', int(0, 31536000, ' seconds'), '86400', 'Seconds a rotated-out service account secret keeps working', { added: true }),
  v('Downstream Services', 'MIMIR_UPSTREAM_AUTH', oneOf(['none', 'forward', 'mimir-jwt'] as const).optional(), undefined, 'How the upstream Mimir learns who calls: none (X-User-* headers; every credential channel Mimir reads removed), forward (the caller\'s IdP token, audience-checked), mimir-jwt (a short-lived HS256 token minted with MIMIR_UPSTREAM_JWT_SECRET, for a Mimir whose security is on); default none, or forward when MIMIR_ENABLE_TOKEN_FORWARDING=true', { added: true }),
  v('Downstream Services', 'MIMIR_UPSTREAM_JWT_SECRET', z.string().optional(), undefined, 'Mimir\'s own MIMIR_JWT_SECRET, for MIMIR_UPSTREAM_AUTH=mimir-jwt (must differ from the hub\'s MIMIR_JWT_SECRET)', { added: true, secret: true }),
  v('Downstream Services', 'MIMIR_ENABLE_TOKEN_FORWARDING', bool, 'false', 'Forward the caller\'s token upstream in MIMIR_TOKEN_FORWARDING_HEADER (off unless explicitly on: MCP forbids token passthrough)'),
  v('Downstream Services', 'MIMIR_TOKEN_FORWARDING_HEADER', z.string().trim().min(1), 'X-Forwarded-Token', 'Header carrying the forwarded token upstream'),
  v('Downstream Services', 'MIMIR_ENABLE_USER_CONTEXT_PROPAGATION', bool, 'true', 'Set the user headers below on proxied requests'),
  v('Downstream Services', 'MIMIR_USER_CONTEXT_HEADER', z.string().trim().min(1), 'X-User-ID', 'Header carrying the user id'),
  v('Downstream Services', 'MIMIR_USER_EMAIL_HEADER', z.string().trim().min(1), 'X-User-Email', 'Header carrying the user email'),
  v('Downstream Services', 'MIMIR_USER_ROLES_HEADER', z.string().trim().min(1), 'X-User-Roles', 'Header carrying the user roles, comma-separated'),
  v('Downstream Services', 'MIMIR_TOKEN_EXCHANGE_MAX_DEPTH', int(1, 10, ' actors'), '3', 'Longest delegation chain a token exchange may produce (actors in act); an actor already in the chain is refused', { added: true }),
  v('Downstream Services', 'MIMIR_RBAC_CONFIG', z.string().optional(), undefined, 'Mimir rbac.json: a path, an https URL or inline JSON', { added: true }),
  v('Downstream Services', 'MIMIR_MCP_ALLOWED_ORIGINS', list.pipe(z.array(httpUrl)).optional(), undefined, 'Browser origins allowed on /mcp besides MIMIR_PUBLIC_URL (comma-separated; DNS-rebinding protection), and the only ones its CORS answers', { added: true }),

  // Provider-specific
  v('Provider-Specific', 'MIMIR_OKTA_DOMAIN', z.string().optional(), undefined, 'Okta domain, e.g. your-tenant.okta.com'),
  v('Provider-Specific', 'MIMIR_OKTA_AUTHORIZATION_SERVER', z.string().optional(), undefined, 'Okta custom authorization server id (e.g. default); unset: org authorization server'),
  v('Provider-Specific', 'MIMIR_AUTH0_DOMAIN', z.string().optional(), undefined, 'Auth0 domain, e.g. your-tenant.auth0.com'),
  v('Provider-Specific', 'MIMIR_AUTH0_AUDIENCE', z.string().optional(), undefined, 'Auth0 API identifier requested as audience'),
  v('Provider-Specific', 'MIMIR_AZURE_TENANT_ID', z.string().optional(), undefined, 'Azure AD tenant id (or organizations/common for multi-tenant)'),
  v('Provider-Specific', 'MIMIR_AZURE_TENANT_NAME', z.string().optional(), undefined, 'Azure AD tenant name, e.g. yourcompany.onmicrosoft.com'),
  v('Provider-Specific', 'MIMIR_AZURE_ALLOWED_TENANTS', list.optional(), undefined, 'Multi-tenant apps: comma-separated tenant ids allowed to sign in', { added: true }),
  v('Provider-Specific', 'MIMIR_GOOGLE_HOSTED_DOMAIN', z.string().optional(), undefined, 'Only accept Google accounts whose hd claim equals this domain'),
  v('Provider-Specific', 'MIMIR_KEYCLOAK_REALM', z.string().optional(), undefined, 'Keycloak realm'),
  v('Provider-Specific', 'MIMIR_KEYCLOAK_SERVER_URL', httpUrl.optional(), undefined, 'Keycloak server URL'),

  // Security
  v('Security', 'MIMIR_OAUTH_ENABLE_PKCE', bool, 'true', 'Use PKCE (S256) at sign-in'),
  v('Security', 'MIMIR_OAUTH_ENABLE_STATE', bool, 'true', 'Use and check state at sign-in'),
  v('Security', 'MIMIR_OAUTH_STATE_TIMEOUT', int(10, 86400, ' seconds'), '600', 'Seconds a sign-in state stays valid'),
  v('Security', 'MIMIR_OAUTH_ENABLE_NONCE', bool, 'true', 'Use and check the OIDC nonce'),
  v('Security', 'MIMIR_ENABLE_TOKEN_BINDING', bool, 'true', 'Support DPoP-bound tokens (RFC 9449)'),
  v('Security', 'MIMIR_REQUIRE_TOKEN_BINDING', bool, 'false', 'Refuse Mimir access tokens that are not DPoP-bound', { added: true }),
  v('Security', 'MIMIR_DPOP_REQUIRE_NONCE', bool, 'false', 'Require a server-provided nonce in every DPoP proof (RFC 9449 §8, §9): stateless, valid on every hub sharing MIMIR_JWT_SECRET', { added: true }),

  // Branding of the pages (added)
  v('Branding', 'MIMIR_BRAND_NAME', z.string().trim().min(1).max(60).refine((s) => !/\p{Cc}/u.test(s), { error: 'contains a control character' }), 'Mimir', 'Product name on the hub\'s pages (sign-in, account, consent, errors)', { added: true }),
  v('Branding', 'MIMIR_BRAND_LOGO_URL', imageUrl.optional(), undefined, 'Logo on the pages: an https URL (its origin is added to the pages\' CSP img-src) or a path on the hub\'s origin', { added: true }),
  v('Branding', 'MIMIR_BRAND_ACCENT', hexColour.optional(), undefined, 'Accent colour of the pages\' buttons and links: a CSS hex colour, default #2357d9 (in .env quote it or leave out the #, which starts a comment there)', { added: true }),

  // Monitoring
  v('Monitoring & Logging', 'MIMIR_LOG_AUTH_EVENTS', bool, 'true', 'Write one audit line per authentication event'),
  v('Monitoring & Logging', 'MIMIR_AUTH_LOG_LEVEL', oneOf(['debug', 'info', 'warn', 'error'] as const), 'info', 'Audit log level: debug, info, warn, error'),
  v('Monitoring & Logging', 'MIMIR_AUDIT_LOG_DESTINATION', oneOf(['stdout', 'file', 'both'] as const), 'stdout', 'Audit log destination: stdout, file, both', { added: true }),
  v('Monitoring & Logging', 'MIMIR_AUDIT_LOG_FILE', z.string().min(1).optional(), undefined, 'Audit log file when the destination includes file; default <MIMIR_DATA_DIR>/audit.log', { added: true }),
  v('Monitoring & Logging', 'MIMIR_AUDIT_RETENTION_DAYS', int(0, 3650, ' days'), '30', 'Days audit events are also kept in the hub store, where the admin console (/auth/admin/) reads every instance\'s events; 0 = not kept there (the cleanup job purges older ones)', { added: true }),
  v('Monitoring & Logging', 'MIMIR_ENABLE_AUTH_METRICS', bool, 'true', 'Serve Prometheus metrics'),
  v('Monitoring & Logging', 'MIMIR_AUTH_METRICS_ENDPOINT', path, '/metrics/auth', 'Path of the metrics endpoint'),
  v('Monitoring & Logging', 'MIMIR_CLEANUP_INTERVAL', int(0, 86400, ' seconds'), '300', 'Seconds between purges of expired records from SQLite, PostgreSQL and memory storage (0 = never; Redis expires natively)', { added: true }),

  // Performance (added)
  v('Performance', 'MIMIR_TOKEN_CACHE_SIZE', int(0, 10_000_000, ' entries'), '10000', 'Verified Mimir JWTs kept in memory (LRU keyed by SHA-256, until exp); 0 disables', { added: true }),
  v('Performance', 'MIMIR_CREDENTIAL_CACHE_SIZE', int(0, 10_000_000, ' entries'), '10000', 'API key, service account and session records kept in memory, each; 0 disables', { added: true }),
  v('Performance', 'MIMIR_CREDENTIAL_CACHE_MAX_AGE', int(0, 3600, ' seconds'), '5', 'Seconds a cached API key or service account is trusted before it is read again (revocations announced by the store apply at once)', { added: true }),
] as const;

/** One variable's description. */
export type Variable = (typeof VARIABLES)[number];

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(VARIABLES.map((d) => d.name));
