/** HTTP edge of RFC 7009: `POST` at MIMIR_REVOCATION_ENDPOINT (default /auth/revoke). */
import type { FastifyInstance } from 'fastify';
import { toOAuthError } from '../../errors.ts';
import { REVOCATION_CORS, withCors } from '../../http/cors.ts';
import { sendError } from '../../http/reply.ts';
import type { Hub } from '../../hub.ts';
import { parseBody } from '../token/parse-body.ts';
import { authenticateCaller } from './authenticate-caller.ts';
import { revokeToken } from './revoke-token.ts';

export function revokeRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    const path = hub.config.revocation.endpoint;
    app.post(path, withCors(app, [path], REVOCATION_CORS), async (req, reply) => {
      try {
        const params = parseBody(req.body);
        const caller = await authenticateCaller(hub, { params, headers: req.headers, cookies: req.cookies, method: req.method, url: `${req.protocol}://${req.host}${req.url}` });
        const { revoked } = await revokeToken(hub, params.token, caller);
        if (revoked) {
          hub.audit.record({
            type: 'revocation', outcome: 'success', token_type: revoked.type, target: revoked.id,
            token_type_hint: params.token_type_hint?.slice(0, 32),
            principal: caller.kind === 'principal' || caller.kind === 'client' ? caller.principal : undefined,
            client: caller.kind === 'oauth_client' ? caller.clientId : revoked.client,
            ip: req.ip, request_id: req.id,
          });
        }
        // RFC 7009 §2.2: 200 whether or not the token was valid; the body is empty.
        return reply.code(200).header('cache-control', 'no-store').send();
      } catch (e) {
        hub.audit.record({ type: 'revocation', outcome: 'failure', reason: toOAuthError(e).error, ip: req.ip, request_id: req.id });
        return sendError(reply, e);
      }
    });
  };
}
