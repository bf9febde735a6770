/**
 * RFC 8414 authorization server metadata, also served as the OpenID Provider's discovery document
 * (OpenID Connect Discovery 1.0 §3: every REQUIRED field, and the RECOMMENDED ones it serves).
 * It says only what this hub really serves, read from its own parts: its grants, its endpoints
 * as configured, its signing algorithm.
 */
import { DPOP_ALGORITHMS } from '../../dpop/verify-proof.ts';
import type { Hub } from '../../hub.ts';
import { ASSERTION_ALGORITHMS } from '../../jwt/assertions.ts';
import { DEFAULT_ROUTES } from '../../rbac/routes.ts';
import { INTROSPECTION_PATH } from '../introspect/routes.ts';
import { PAR_PATH } from '../par/routes.ts';
import { CLAIMS_SUPPORTED } from '../openid/claims.ts';
import { isOpenIdProvider, userinfoUrl } from '../openid/provider.ts';
import { IDENTITY_SCOPES } from '../token/scope.ts';

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

/** The `acr` values the route table's step-up rules ask for (RFC 9470), sorted. */
function stepUpAcrValues(hub: Pick<Hub, 'rbac'>): string[] {
  const out = new Set<string>();
  for (const rule of hub.rbac.config.routes ?? DEFAULT_ROUTES) if (rule.acr !== undefined) out.add(rule.acr);
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
  const openId = isOpenIdProvider(config);
  return {
    issuer: config.jwt.issuer,
    authorization_endpoint: `${base}/auth/authorize`,
    token_endpoint: `${base}/auth/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    ...(config.authorizationServer.dynamicRegistration ? { registration_endpoint: `${base}/auth/register` } : {}),
    // The permissions, and the OpenID Connect scopes a user's grant may carry (OIDC Core §5.4, §11).
    scopes_supported: [...scopesSupported(hub), ...(openId ? IDENTITY_SCOPES : ['offline_access'])],
    response_types_supported: ['code'],
    ...(openId
      ? {
        userinfo_endpoint: userinfoUrl(config),
        // ID tokens are signed with the key the JWKS publishes (OIDC Discovery §3: RS256 unless MIMIR_JWT_ALGORITHM says otherwise).
        id_token_signing_alg_values_supported: [hub.keys.algorithm],
        subject_types_supported: ['public'],
        claims_supported: CLAIMS_SUPPORTED,
        // Its default is true (§3): the hub takes no request objects by reference.
        request_uri_parameter_supported: false,
      }
      : {}),
    // RFC 9126 §5: pushed authorization requests, and whether nothing else is accepted (MIMIR_REQUIRE_PAR).
    pushed_authorization_request_endpoint: `${base}${PAR_PATH}`,
    require_pushed_authorization_requests: config.authorizationServer.requirePar,
    // OIDC Discovery §3: the authentication context classes the route table asks for (RFC 9470 step-up), passed on to the IdP.
    ...(stepUpAcrValues(hub).length ? { acr_values_supported: stepUpAcrValues(hub) } : {}),
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
