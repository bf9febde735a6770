/** HTTP edge of refresh: the seed's `POST /auth/refresh` and `grant_type=refresh_token` at /auth/token. */
import type { FastifyInstance } from 'fastify';
import { dpopForTokenRequest } from '../../dpop/token-request.ts';
import { toOAuthError } from '../../errors.ts';
import { noStore, sendError } from '../../http/reply.ts';
import type { Hub } from '../../hub.ts';
import { parseBody } from '../token/parse-body.ts';
import { authenticateRefreshClient } from './client.ts';
import { refreshGrant } from './refresh-grant.ts';

export function refreshRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    // Body: JSON `{"refresh_token": "..."}` (the seed's contract) or the same as a form.
    app.post('/auth/refresh', async (req, reply) => {
      try {
        const params = parseBody(req.body);
        const authorization = Array.isArray(req.headers.authorization) ? req.headers.authorization[0] : req.headers.authorization;
        const { client, oauthClientId } = await authenticateRefreshClient(hub, params, authorization);
        const dpop = await dpopForTokenRequest(hub, { headers: req.headers, method: req.method, url: req.url });
        const result = await refreshGrant(hub, { refreshToken: params.refresh_token, scope: params.scope, resource: params.resource, client, oauthClientId, dpopJkt: dpop?.jkt, ip: req.ip, requestId: req.id });
        hub.audit.record({ type: 'token_issued', outcome: 'success', grant_type: 'refresh_token', client: client?.clientId, ip: req.ip, request_id: req.id, ...result.audit });
        if (dpop?.nextNonce) reply.header('dpop-nonce', dpop.nextNonce);
        return noStore(reply).send(result.body);
      } catch (e) {
        hub.audit.record({ type: 'token_issued', outcome: 'failure', grant_type: 'refresh_token', reason: toOAuthError(e).error, ip: req.ip, request_id: req.id });
        return sendError(reply, e);
      }
    });
  };
}
