/** HTTP edge of refresh: the seed's `POST /auth/refresh` and `grant_type=refresh_token` at /auth/token. */
import type { FastifyInstance } from 'fastify';
import { dpopForTokenRequest } from '../../dpop/token-request.ts';
import { OAuthError } from '../../errors.ts';
import { noStore, sendError } from '../../http/reply.ts';
import type { Hub } from '../../hub.ts';
import { authenticateClient, readClientCredentials } from '../token/authenticate-client.ts';
import { registerGrant } from '../token/index.ts';
import { parseBody } from '../token/parse-body.ts';
import { clientsOf } from '../clients/registry.ts';
import { refreshGrant } from './refresh-grant.ts';

/** RFC 6749 §6 at the token endpoint: client authentication is optional (public clients). */
export function registerRefreshGrant(): void {
  registerGrant('refresh_token', {
    requiresClient: false,
    authenticatesItself: true,
    handle: async ({ hub, params, request, dpopJkt }) => {
      const authorization = Array.isArray(request.headers.authorization) ? request.headers.authorization[0] : request.headers.authorization;
      const { client, oauthClientId } = await authenticateRefreshClient(hub, params, authorization);
      return refreshGrant(hub, { refreshToken: params.refresh_token, scope: params.scope, client, oauthClientId, dpopJkt });
    },
  });
}

/**
 * Either kind of client may hold refresh tokens: a service account, or an OAuth client of the
 * authorization server (confidential ones authenticate; public ones name themselves by client_id).
 */
async function authenticateRefreshClient(hub: Hub, params: Record<string, string>, authorization: string | undefined) {
  const creds = readClientCredentials(params, authorization);
  if (creds && (await hub.serviceAccounts.get(creds.clientId))) {
    return { client: await authenticateClient(creds, hub.serviceAccounts, hub.config.serviceAccounts.enabled), oauthClientId: undefined };
  }
  const clientId = creds?.clientId ?? params.client_id;
  if (clientId === undefined) return { client: undefined, oauthClientId: undefined };
  const oauthClient = await clientsOf(hub).authenticate(clientId, creds?.secret).catch(() => {
    throw new OAuthError('invalid_client', 'Client authentication failed.');
  });
  return { client: undefined, oauthClientId: oauthClient.client_id };
}

export function refreshRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    // Body: JSON `{"refresh_token": "..."}` (the seed's contract) or the same as a form.
    app.post('/auth/refresh', async (req, reply) => {
      try {
        const params = parseBody(req.body);
        const authorization = Array.isArray(req.headers.authorization) ? req.headers.authorization[0] : req.headers.authorization;
        const { client, oauthClientId } = await authenticateRefreshClient(hub, params, authorization);
        const dpopJkt = await dpopForTokenRequest(hub, { headers: req.headers, method: req.method, url: req.url });
        const result = await refreshGrant(hub, { refreshToken: params.refresh_token, scope: params.scope, client, oauthClientId, dpopJkt, ip: req.ip, requestId: req.id });
        hub.audit.record({ type: 'token_issued', outcome: 'success', grant_type: 'refresh_token', client: client?.clientId, ip: req.ip, request_id: req.id, ...result.audit });
        return noStore(reply).send(result.body);
      } catch (e) {
        hub.audit.record({ type: 'token_issued', outcome: 'failure', grant_type: 'refresh_token', reason: e instanceof OAuthError ? e.error : 'server_error', ip: req.ip, request_id: req.id });
        return sendError(reply, e);
      }
    });
  };
}
