/**
 * Who refreshes (RFC 6749 §6): either kind of client may hold refresh tokens — a service account,
 * or an OAuth client of the authorization server (confidential ones authenticate; public ones
 * name themselves by client_id) — and the token endpoint's `refresh_token` handler.
 */
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import type { ServiceAccountRecord } from '../../service-accounts/index.ts';
import { authenticateClient, authenticateOAuthClient, readClientCredentials } from '../token/authenticate-client.ts';
import type { GrantHandler } from '../token/index.ts';
import type { Params } from '../token/parse-body.ts';
import { refreshGrant } from './refresh-grant.ts';

export async function authenticateRefreshClient(hub: Hub, params: Params, authorization: string | undefined): Promise<{ client: ServiceAccountRecord | undefined; oauthClientId: string | undefined }> {
  const creds = readClientCredentials(params, authorization);
  if (creds && (await hub.serviceAccounts.get(creds.clientId))) {
    return { client: await authenticateClient(hub, creds), oauthClientId: undefined };
  }
  const clientId = creds?.clientId ?? params.client_id;
  if (clientId === undefined) return { client: undefined, oauthClientId: undefined };
  const oauthClient = await authenticateOAuthClient(hub, clientId, creds).catch(() => {
    throw new OAuthError('invalid_client', 'Client authentication failed.');
  });
  return { client: undefined, oauthClientId: oauthClient.client_id };
}

export const refreshTokenHandler: GrantHandler = async ({ hub, params, request, dpopJkt }) => {
  const authorization = Array.isArray(request.headers.authorization) ? request.headers.authorization[0] : request.headers.authorization;
  const { client, oauthClientId } = await authenticateRefreshClient(hub, params, authorization);
  return refreshGrant(hub, { refreshToken: params.refresh_token, scope: params.scope, resource: params.resource, client, oauthClientId, dpopJkt });
};
