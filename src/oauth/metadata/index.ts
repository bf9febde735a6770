/**
 * RFC 8414 authorization server metadata (also served as OpenID discovery). It says only what
 * this hub really serves, read from its own parts: its grants, its endpoints as configured.
 */
import { DPOP_ALGORITHMS } from '../../dpop/verify-proof.ts';
import type { Hub } from '../../hub.ts';
import { ASSERTION_ALGORITHMS } from '../../jwt/assertions.ts';
import { INTROSPECTION_PATH } from '../introspect/routes.ts';

/**
 * Client authentication at the endpoints that authenticate clients (one code path,
 * src/oauth/token/authenticate-client.ts): RFC 6749 §2.3.1 secrets and RFC 7523 §2.2 private_key_jwt.
 */
const CLIENT_AUTH = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
/** RFC 8414 §2: what a private_key_jwt client assertion may be signed with (asymmetric only). */
const CLIENT_AUTH_ALGS = [...ASSERTION_ALGORITHMS];

/** Permissions a client may ask for: every permission of the RBAC configuration. */
export function scopesSupported(hub: Pick<Hub, 'rbac'>): string[] {
  const out = new Set<string>();
  for (const role of Object.values(hub.rbac.config.roleMappings)) for (const p of role.permissions) if (p !== '*') out.add(p);
  return [...out].sort();
}

/**
 * RFC 9728 protected resource metadata for `resource` (a URL of the hub): its `resource` is the
 * URL the document describes (§3.3), the origin root for `/.well-known/oauth-protected-resource`.
 */
export function protectedResourceMetadata(hub: Hub, resource: string): Record<string, unknown> {
  return {
    resource,
    authorization_servers: [hub.config.jwt.issuer],
    scopes_supported: scopesSupported(hub),
    bearer_methods_supported: ['header'],
    resource_name: 'Mimir',
    ...(hub.config.security.tokenBinding ? { dpop_signing_alg_values_supported: DPOP_ALGORITHMS } : {}),
  };
}

export function authorizationServerMetadata(hub: Hub): Record<string, unknown> {
  const { config } = hub;
  const base = config.publicUrl;
  return {
    issuer: config.jwt.issuer,
    authorization_endpoint: `${base}/auth/authorize`,
    token_endpoint: `${base}/auth/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    ...(config.authorizationServer.dynamicRegistration ? { registration_endpoint: `${base}/auth/register` } : {}),
    scopes_supported: scopesSupported(hub),
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [...hub.grants.keys()],
    token_endpoint_auth_methods_supported: [...CLIENT_AUTH, 'none'],
    token_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_ALGS,
    ...(config.revocation.enabled
      ? {
        revocation_endpoint: `${base}${config.revocation.endpoint}`, revocation_endpoint_auth_methods_supported: [...CLIENT_AUTH, 'none'],
        revocation_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_ALGS,
      }
      : {}),
    introspection_endpoint: `${base}${INTROSPECTION_PATH}`,
    introspection_endpoint_auth_methods_supported: CLIENT_AUTH,
    introspection_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_ALGS,
    code_challenge_methods_supported: ['S256'],
    access_token_signing_alg_values_supported: [hub.keys.algorithm],
    // RFC 9207: the authorization response carries `iss`.
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: true,
    resource_indicators_supported: true,
    ...(config.security.tokenBinding ? { dpop_signing_alg_values_supported: DPOP_ALGORITHMS } : {}),
    service_documentation: `${base}/`,
  };
}
