/**
 * Every configuration variable of the hub, in one place: name, default, one-line meaning.
 * The seed's "Complete OAuth Configuration" variables keep their names and meanings; the hub's
 * own additions are marked `added`. `.env.example` is generated from this list
 * (`mimir-auth config --example`) and a test fails when the two disagree.
 */
export interface VariableDoc {
  readonly name: string;
  /** The default as written in `.env.example`; `undefined` when unset by default. */
  readonly default: string | undefined;
  readonly description: string;
  readonly section: string;
  /** Redacted by `mimir-auth config` and never logged. */
  readonly secret?: boolean;
  /** Not in the seed: an addition of the hub. */
  readonly added?: boolean;
}

const v = (section: string, name: string, def: string | undefined, description: string, extra: Partial<VariableDoc> = {}): VariableDoc => ({
  section, name, default: def, description, ...extra,
});

export const VARIABLES: readonly VariableDoc[] = [
  // Server (added)
  v('Server', 'MIMIR_AUTH_PORT', '9042', 'TCP port the hub listens on', { added: true }),
  v('Server', 'MIMIR_AUTH_HOST', '127.0.0.1', 'Interface the hub binds to (0.0.0.0 for all)', { added: true }),
  v('Server', 'MIMIR_PUBLIC_URL', undefined, 'Public base URL of the hub; default http://localhost:<port>. Default of MIMIR_JWT_ISSUER', { added: true }),
  v('Server', 'MIMIR_DATA_DIR', './data', 'Directory for the SQLite database and generated key files', { added: true }),
  v('Server', 'MIMIR_UPSTREAM_URL', undefined, 'The Mimir server behind the hub (authenticating reverse proxy target)', { added: true }),
  v('Server', 'MIMIR_TLS_CERT_FILE', undefined, 'PEM certificate: the hub serves HTTPS itself when this and MIMIR_TLS_KEY_FILE are set', { added: true }),
  v('Server', 'MIMIR_TLS_KEY_FILE', undefined, 'PEM private key for MIMIR_TLS_CERT_FILE', { added: true }),
  v('Server', 'MIMIR_TRUST_PROXY', 'false', 'Believe X-Forwarded-Proto/Host/For (true, false, or a comma-separated list of proxy IPs/CIDRs)', { added: true }),
  v('Server', 'MIMIR_LOG_LEVEL', 'info', 'Operational log level: fatal, error, warn, info, debug, trace, silent', { added: true }),
  v('Server', 'MIMIR_MAX_HEADER_BYTES', '16384', 'Largest request header block accepted; credentials over 8 KB are refused regardless', { added: true }),

  // Authentication mode
  v('Authentication Mode', 'MIMIR_AUTH_METHODS', 'api-key,oauth,jwt', 'Accepted credential kinds, comma-separated: api-key, oauth, jwt'),
  v('Authentication Mode', 'MIMIR_DEFAULT_AUTH_METHOD', 'oauth', 'Method named in the WWW-Authenticate challenge when no credential is sent: api-key, oauth, jwt'),
  v('Authentication Mode', 'MIMIR_API_KEYS', undefined, 'Legacy static API keys, comma-separated (backward compatibility); each may end with :role1|role2', { added: true, secret: true }),

  // OAuth provider
  v('OAuth Provider', 'MIMIR_AUTH_PROVIDER', undefined, 'Upstream IdP kind: okta, auth0, azure, google, keycloak, cognito, generic (unset: no IdP sign-in)'),
  v('OAuth Provider', 'MIMIR_AUTH_PROVIDERS_FILE', undefined, 'JSON or YAML file listing several providers at once', { added: true }),
  v('OAuth Provider', 'MIMIR_OAUTH_ISSUER', undefined, 'IdP issuer URL (https, or http on a loopback host); endpoints are discovered from it'),
  v('OAuth Provider', 'MIMIR_OAUTH_AUTHORIZATION_ENDPOINT', undefined, 'Overrides the discovered authorization endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_TOKEN_ENDPOINT', undefined, 'Overrides the discovered token endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_JWKS_URI', undefined, 'Overrides the discovered JWKS URI'),
  v('OAuth Provider', 'MIMIR_OAUTH_USERINFO_ENDPOINT', undefined, 'Overrides the discovered userinfo endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_REVOCATION_ENDPOINT', undefined, 'Overrides the discovered revocation endpoint'),
  v('OAuth Provider', 'MIMIR_OAUTH_TOKENINFO_ENDPOINT', undefined, 'Google: tokeninfo endpoint that says which client an opaque access token was issued to; default https://oauth2.googleapis.com/tokeninfo for https://accounts.google.com, else the discovered tokeninfo_endpoint', { added: true }),
  v('OAuth Provider', 'MIMIR_OAUTH_CLIENT_ID', undefined, 'The hub\'s client id at the IdP'),
  v('OAuth Provider', 'MIMIR_OAUTH_CLIENT_SECRET', undefined, 'The hub\'s client secret at the IdP', { secret: true }),
  v('OAuth Provider', 'MIMIR_OAUTH_REDIRECT_URI', undefined, 'Callback registered at the IdP; default <MIMIR_PUBLIC_URL>/auth/callback'),
  v('OAuth Provider', 'MIMIR_OAUTH_SCOPE', 'openid profile email', 'Scopes requested at sign-in'),
  v('OAuth Provider', 'MIMIR_OAUTH_AUDIENCE', undefined, 'Audience IdP access tokens must carry to be accepted as bearer tokens'),
  v('OAuth Provider', 'MIMIR_OAUTH_TRUST_EMAIL', 'false', 'Use the IdP\'s email even without email_verified: true (only for an IdP that verifies every address)', { added: true }),

  // Token configuration
  v('Token Configuration', 'MIMIR_TOKEN_STORAGE', 'database', 'Token storage: database (= sqlite, embedded), sqlite, redis, memory (development only)'),
  v('Token Configuration', 'MIMIR_REDIS_URL', 'redis://localhost:6379', 'Redis URL when storage is redis', { secret: true }),
  v('Token Configuration', 'MIMIR_REDIS_DB', '0', 'Redis database number'),
  v('Token Configuration', 'MIMIR_REDIS_KEY_PREFIX', 'mimir:tokens:', 'Prefix of every Redis key the hub writes'),
  v('Token Configuration', 'MIMIR_JWT_SECRET', undefined, 'HS256 signing secret (>= 32 bytes); otherwise the key that encrypts private signing keys at rest', { secret: true }),
  v('Token Configuration', 'MIMIR_JWT_ALGORITHM', 'RS256', 'Mimir JWT signing algorithm: RS256, ES256, EdDSA, HS256'),
  v('Token Configuration', 'MIMIR_JWT_ISSUER', undefined, 'iss of Mimir JWTs; default MIMIR_PUBLIC_URL'),
  v('Token Configuration', 'MIMIR_JWT_AUDIENCE', 'mimir-api', 'aud of Mimir JWTs'),
  v('Token Configuration', 'MIMIR_ACCESS_TOKEN_LIFETIME', '3600', 'Mimir access token lifetime, seconds'),
  v('Token Configuration', 'MIMIR_REFRESH_TOKEN_LIFETIME', '2592000', 'Mimir refresh token lifetime, seconds'),
  v('Token Configuration', 'MIMIR_ID_TOKEN_LIFETIME', '3600', 'ID token lifetime, seconds'),
  v('Token Configuration', 'MIMIR_ENABLE_TOKEN_REFRESH', 'true', 'Allow refresh_token grants and /auth/refresh'),
  v('Token Configuration', 'MIMIR_REFRESH_TOKEN_ROTATION', 'true', 'Issue a new refresh token on every refresh (reuse of an old one revokes the family)'),
  v('Token Configuration', 'MIMIR_ENABLE_TOKEN_REVOCATION', 'true', 'Enable RFC 7009 revocation'),
  v('Token Configuration', 'MIMIR_REVOCATION_ENDPOINT', '/auth/revoke', 'Path of the revocation endpoint'),
  v('Token Configuration', 'MIMIR_SIGNING_KEY_OVERLAP', undefined, 'Seconds a rotated-out signing key stays published; default the longest token lifetime', { added: true }),

  // Authorization server for MCP clients and the CLI (added)
  v('Authorization Server', 'MIMIR_DEVELOPMENT_MODE', 'false', 'Development mode: client ID metadata documents may be fetched from loopback/private addresses over http', { added: true }),
  v('Authorization Server', 'MIMIR_AUTHORIZATION_CODE_LIFETIME', '60', 'Lifetime of authorization codes, seconds (single use)', { added: true }),
  v('Authorization Server', 'MIMIR_ENABLE_DYNAMIC_CLIENT_REGISTRATION', 'true', 'Accept RFC 7591 dynamic client registration at /auth/register (MCP 2025-11-25 clients)', { added: true }),
  v('Authorization Server', 'MIMIR_OUTBOUND_CA_FILE', undefined, 'Extra PEM CA certificates trusted when fetching client ID metadata documents (private PKI)', { added: true }),
  v('Authorization Server', 'MIMIR_CIMD_FETCH_TIMEOUT', '5', 'Seconds allowed for fetching a client ID metadata document in full (connection, headers and body); a failed fetch is remembered for a minute', { added: true }),
  v('Authorization Server', 'MIMIR_REGISTRATION_RATE_LIMIT', '10', 'Dynamic registrations allowed per source IP per minute', { added: true }),

  // Sessions
  v('Session Management', 'MIMIR_SESSION_STORAGE', undefined, 'Session storage: redis, memory, database, cookie; default follows MIMIR_TOKEN_STORAGE'),
  v('Session Management', 'MIMIR_SESSION_SECRET', undefined, 'Key material for session cookies (>= 32 bytes); default a generated key file in MIMIR_DATA_DIR', { secret: true }),
  v('Session Management', 'MIMIR_SESSION_TIMEOUT', '900', 'Idle timeout of a session, seconds (sliding)'),
  v('Session Management', 'MIMIR_SESSION_ABSOLUTE_TIMEOUT', '43200', 'Absolute session lifetime, seconds, whatever the activity', { added: true }),
  v('Session Management', 'MIMIR_SESSION_COOKIE_NAME', 'mimir_session', 'Session cookie name; with secure cookies it is sent as __Host-<name>'),
  v('Session Management', 'MIMIR_SESSION_COOKIE_SECURE', 'true', 'Secure flag of the session cookie'),
  v('Session Management', 'MIMIR_SESSION_COOKIE_HTTPONLY', 'true', 'HttpOnly flag of the session cookie'),
  v('Session Management', 'MIMIR_SESSION_COOKIE_SAMESITE', 'strict', 'SameSite of the session cookie: strict, lax, none'),

  // Downstream
  v('Downstream Services', 'MIMIR_ENABLE_SERVICE_ACCOUNTS', 'true', 'Enable service accounts and the client_credentials grant'),
  v('Downstream Services', 'MIMIR_SERVICE_ACCOUNT_TOKEN_LIFETIME', '86400', 'Lifetime of service account access tokens, seconds'),
  v('Downstream Services', 'MIMIR_SERVICE_ACCOUNT_SECRET_GRACE', '86400', 'Seconds a rotated-out service account secret keeps working', { added: true }),
  v('Downstream Services', 'MIMIR_ENABLE_TOKEN_FORWARDING', 'false', 'Forward the caller\'s token upstream in MIMIR_TOKEN_FORWARDING_HEADER (off unless explicitly on: MCP forbids token passthrough)'),
  v('Downstream Services', 'MIMIR_TOKEN_FORWARDING_HEADER', 'X-Forwarded-Token', 'Header carrying the forwarded token upstream'),
  v('Downstream Services', 'MIMIR_ENABLE_USER_CONTEXT_PROPAGATION', 'true', 'Set the user headers below on proxied requests'),
  v('Downstream Services', 'MIMIR_USER_CONTEXT_HEADER', 'X-User-ID', 'Header carrying the user id'),
  v('Downstream Services', 'MIMIR_USER_EMAIL_HEADER', 'X-User-Email', 'Header carrying the user email'),
  v('Downstream Services', 'MIMIR_USER_ROLES_HEADER', 'X-User-Roles', 'Header carrying the user roles, comma-separated'),
  v('Downstream Services', 'MIMIR_TOKEN_EXCHANGE_MAX_DEPTH', '3', 'Longest delegation chain a token exchange may produce (actors in act); an actor already in the chain is refused', { added: true }),
  v('Downstream Services', 'MIMIR_RBAC_CONFIG', undefined, 'Mimir rbac.json: a path, an https URL or inline JSON', { added: true }),
  v('Downstream Services', 'MIMIR_MCP_ALLOWED_ORIGINS', undefined, 'Browser origins allowed on /mcp besides MIMIR_PUBLIC_URL (comma-separated; DNS-rebinding protection)', { added: true }),

  // Provider-specific
  v('Provider-Specific', 'MIMIR_OKTA_DOMAIN', undefined, 'Okta domain, e.g. your-tenant.okta.com'),
  v('Provider-Specific', 'MIMIR_OKTA_AUTHORIZATION_SERVER', undefined, 'Okta custom authorization server id (e.g. default); unset: org authorization server'),
  v('Provider-Specific', 'MIMIR_AUTH0_DOMAIN', undefined, 'Auth0 domain, e.g. your-tenant.auth0.com'),
  v('Provider-Specific', 'MIMIR_AUTH0_AUDIENCE', undefined, 'Auth0 API identifier requested as audience'),
  v('Provider-Specific', 'MIMIR_AZURE_TENANT_ID', undefined, 'Azure AD tenant id (or organizations/common for multi-tenant)'),
  v('Provider-Specific', 'MIMIR_AZURE_TENANT_NAME', undefined, 'Azure AD tenant name, e.g. yourcompany.onmicrosoft.com'),
  v('Provider-Specific', 'MIMIR_AZURE_ALLOWED_TENANTS', undefined, 'Multi-tenant apps: comma-separated tenant ids allowed to sign in', { added: true }),
  v('Provider-Specific', 'MIMIR_GOOGLE_HOSTED_DOMAIN', undefined, 'Only accept Google accounts whose hd claim equals this domain'),
  v('Provider-Specific', 'MIMIR_KEYCLOAK_REALM', undefined, 'Keycloak realm'),
  v('Provider-Specific', 'MIMIR_KEYCLOAK_SERVER_URL', undefined, 'Keycloak server URL'),

  // Security
  v('Security', 'MIMIR_OAUTH_ENABLE_PKCE', 'true', 'Use PKCE (S256) at sign-in'),
  v('Security', 'MIMIR_OAUTH_ENABLE_STATE', 'true', 'Use and check state at sign-in'),
  v('Security', 'MIMIR_OAUTH_STATE_TIMEOUT', '600', 'Seconds a sign-in state stays valid'),
  v('Security', 'MIMIR_OAUTH_ENABLE_NONCE', 'true', 'Use and check the OIDC nonce'),
  v('Security', 'MIMIR_ENABLE_TOKEN_BINDING', 'true', 'Support DPoP-bound tokens (RFC 9449)'),
  v('Security', 'MIMIR_REQUIRE_TOKEN_BINDING', 'false', 'Refuse Mimir access tokens that are not DPoP-bound', { added: true }),

  // Monitoring
  v('Monitoring & Logging', 'MIMIR_LOG_AUTH_EVENTS', 'true', 'Write one audit line per authentication event'),
  v('Monitoring & Logging', 'MIMIR_AUTH_LOG_LEVEL', 'info', 'Audit log level: debug, info, warn, error'),
  v('Monitoring & Logging', 'MIMIR_AUDIT_LOG_DESTINATION', 'stdout', 'Audit log destination: stdout, file, both', { added: true }),
  v('Monitoring & Logging', 'MIMIR_AUDIT_LOG_FILE', undefined, 'Audit log file when the destination includes file; default <MIMIR_DATA_DIR>/audit.log', { added: true }),
  v('Monitoring & Logging', 'MIMIR_ENABLE_AUTH_METRICS', 'true', 'Serve Prometheus metrics'),
  v('Monitoring & Logging', 'MIMIR_AUTH_METRICS_ENDPOINT', '/metrics/auth', 'Path of the metrics endpoint'),
  v('Monitoring & Logging', 'MIMIR_CLEANUP_INTERVAL', '300', 'Seconds between purges of expired records from sqlite/memory storage (0 = never; Redis expires natively)', { added: true }),

  // Performance (added)
  v('Performance', 'MIMIR_TOKEN_CACHE_SIZE', '10000', 'Verified Mimir JWTs kept in memory (LRU keyed by SHA-256, until exp); 0 disables', { added: true }),
  v('Performance', 'MIMIR_CREDENTIAL_CACHE_SIZE', '10000', 'API key and service account records kept in memory, each (memory and redis storage; sqlite reads every time); 0 disables', { added: true }),
  v('Performance', 'MIMIR_CREDENTIAL_CACHE_MAX_AGE', '5', 'Seconds a cached API key or service account is trusted before it is read again (Redis pub/sub revocations apply at once)', { added: true }),
];

export const VARIABLE_NAMES: ReadonlySet<string> = new Set(VARIABLES.map((d) => d.name));
