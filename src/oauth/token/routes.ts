/** HTTP edge of the token endpoint (RFC 6749 §3.2): `POST /auth/token`, audited either way. */
import type { FastifyInstance } from 'fastify';
import { toOAuthError } from '../../errors.ts';
import { TOKEN_CORS, withCors } from '../../http/cors.ts';
import { noStore, sendError } from '../../http/reply.ts';
import type { Hub } from '../../hub.ts';
import { handleTokenRequest } from './index.ts';

export function tokenRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.post('/auth/token', withCors(app, ['/auth/token'], TOKEN_CORS), async (req, reply) => {
      try {
        const result = await handleTokenRequest(hub, { body: req.body, headers: req.headers, method: req.method, url: req.url });
        hub.audit.record({
          type: 'token_issued', outcome: 'success', grant_type: result.grantType, client: result.clientId,
          ip: req.ip, request_id: req.id, ...result.audit,
        });
        if (result.dpopNonce) reply.header('dpop-nonce', result.dpopNonce);
        return noStore(reply).send(result.body);
      } catch (e) {
        const grantType = (req.body as Record<string, unknown> | undefined)?.grant_type;
        hub.audit.record({
          type: 'token_issued', outcome: 'failure', reason: toOAuthError(e).error,
          grant_type: typeof grantType === 'string' ? grantType.slice(0, 100) : undefined,
          ip: req.ip, request_id: req.id,
        });
        return sendError(reply, e);
      }
    });
  };
}
