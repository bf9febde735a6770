import type { Hub } from '../../hub.ts';
import { OAuthError } from '../../errors.ts';
import type { ServiceAccountRecord } from '../../service-accounts/index.ts';
import type { Params } from './parse-body.ts';
import { requestedResource } from './resource.ts';
import { allowedScopes, grantScope } from './scope.ts';
import type { TokenResponse } from './index.ts';

/**
 * RFC 6749 §4.4: a service account gets a Mimir JWT for itself — its scope no wider than the
 * account may have, its audience the RFC 8707 `resource` asked for (the hub's general audience
 * when none is).
 */
export async function clientCredentialsGrant(hub: Hub, params: Params, client: ServiceAccountRecord, extra: { cnf?: { jkt: string } } = {}): Promise<TokenResponse> {
  if (!hub.config.serviceAccounts.enabled) throw new OAuthError('unauthorized_client', 'Service accounts are disabled (MIMIR_ENABLE_SERVICE_ACCOUNTS=false).');
  const scopes = grantScope(params.scope, allowedScopes(client.roles, client.scopes, hub.rbac), hub.authorizer);
  const resource = params.resource === undefined ? undefined : requestedResource(hub.audiences, params.resource);
  const lifetime = hub.config.serviceAccounts.tokenLifetime;
  const scope = scopes.join(' ');
  const issued = await hub.signer.issue({
    sub: client.clientId, client_id: client.clientId, scope, roles: client.roles, auth_method: 'client_credentials',
    ...(resource ? { aud: resource } : {}),
    ...(client.instance ? { aid: client.instance } : {}),
    ...(extra.cnf ? { cnf: extra.cnf } : {}),
  }, lifetime);
  hub.serviceAccounts.touch(client);
  return {
    body: { access_token: issued.token, token_type: extra.cnf ? 'DPoP' : 'Bearer', expires_in: issued.expiresIn, scope },
    audit: { jti: issued.jti, sub: client.clientId, ...(resource ? { resource } : {}) },
  };
}
