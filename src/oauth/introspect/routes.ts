/** HTTP edge of RFC 7662: `POST /auth/introspect`. */
import type { FastifyInstance } from 'fastify';
import { OAuthError } from '../../errors.ts';
import { noStore, sendError } from '../../http/reply.ts';
import type { Hub } from '../../hub.ts';
import { authenticateCaller } from '../revoke/authenticate-caller.ts';
import { parseBody } from '../token/parse-body.ts';
import { checkMayIntrospect, introspectToken } from './introspect-token.ts';

export const INTROSPECTION_PATH = '/auth/introspect';

export function introspectRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.post(INTROSPECTION_PATH, async (req, reply) => {
      try {
        const params = parseBody(req.body);
        const caller = await authenticateCaller(hub, { params, headers: req.headers, cookies: req.cookies, method: req.method, url: `${req.protocol}://${req.host}${req.url}` });
        checkMayIntrospect(caller);
        const result = await introspectToken(hub, params.token);
        hub.audit.record({
          type: 'introspection', outcome: 'success', active: result.active, jti: result.active ? result.jti : undefined,
          client: caller.kind === 'client' ? caller.clientId : caller.kind === 'principal' ? caller.principal.client_id : undefined,
          ip: req.ip, request_id: req.id,
        });
        return noStore(reply).send(result);
      } catch (e) {
        hub.audit.record({ type: 'introspection', outcome: 'failure', reason: e instanceof OAuthError ? e.error : 'server_error', ip: req.ip, request_id: req.id });
        return sendError(reply, e);
      }
    });
  };
}
