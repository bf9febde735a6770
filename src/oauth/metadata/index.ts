/**
 * RFC 8414 authorization server metadata (also served as OpenID discovery). It says only what
 * the hub really supports: features add their endpoints and grants as they are registered.
 */
import type { Hub } from '../../hub.ts';
import { supportedGrantTypes } from '../token/index.ts';

export interface MetadataExtension {
  (hub: Hub): Record<string, unknown>;
}

const extensions: MetadataExtension[] = [];

export function extendMetadata(ext: MetadataExtension): void {
  extensions.push(ext);
}

export function authorizationServerMetadata(hub: Hub): Record<string, unknown> {
  const base = hub.config.publicUrl;
  const alg = hub.keys.algorithm;
  const scopes = new Set<string>();
  for (const role of Object.values(hub.rbac.config.roleMappings)) for (const p of role.permissions) if (p !== '*') scopes.add(p);
  const metadata: Record<string, unknown> = {
    issuer: hub.config.jwt.issuer,
    token_endpoint: `${base}/auth/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    grant_types_supported: supportedGrantTypes(),
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    scopes_supported: [...scopes].sort(),
    response_types_supported: [] as string[],
    access_token_signing_alg_values_supported: [alg],
    service_documentation: `${base}/`,
  };
  for (const ext of extensions) Object.assign(metadata, ext(hub));
  return metadata;
}
