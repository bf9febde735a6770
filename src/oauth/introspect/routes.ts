/** HTTP edge of RFC 7662: `POST /auth/introspect`. */
import type { FastifyInstance } from 'fastify';
import { toOAuthError } from '../../errors.ts';
import { noStore, sendError } from '../../http/reply.ts';
import type { Hub } from '../../hub.ts';
import { authenticateCaller } from '../revoke/authenticate-caller.ts';
import { parseBody } from '../token/parse-body.ts';
import { checkMayIntrospect, forCaller, introspectToken, type Introspection } from './introspect-token.ts';

export const INTROSPECTION_PATH = '/auth/introspect';

/** One introspection request, whoever received it: the Fastify route or the fast path (src/http/fast-path.ts). */
export interface IntrospectionRequest {
  /** The parsed body (form or JSON). */
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  cookies: Record<string, string | undefined>;
  method: string;
  /** The absolute URL (DPoP proofs cover it). */
  url: string;
  ip: string;
  id: string;
}

/**
 * The answer to one introspection request, audited; throws the refusal (an OAuthError, audited
 * too) for the caller to render.
 */
export async function introspection(hub: Hub, req: IntrospectionRequest): Promise<Introspection> {
  try {
    const params = parseBody(req.body);
    const caller = await authenticateCaller(hub, { params, headers: req.headers, cookies: req.cookies, method: req.method, url: req.url });
    checkMayIntrospect(hub, caller, INTROSPECTION_PATH);
    const result = forCaller(caller, await introspectToken(hub, params.token));
    hub.audit.record({
      type: 'introspection', outcome: 'success', active: result.active, jti: result.active ? result.jti : undefined,
      // Who asked, as revocation names it: the caller's Principal (a service account's, or the bearer's).
      principal: caller.kind === 'principal' || caller.kind === 'client' ? caller.principal : undefined,
      client: caller.kind === 'client' || caller.kind === 'oauth_client' ? caller.clientId : caller.kind === 'principal' ? caller.principal.client_id : undefined,
      ip: req.ip, request_id: req.id,
    });
    return result;
  } catch (e) {
    hub.audit.record({ type: 'introspection', outcome: 'failure', reason: toOAuthError(e).error, ip: req.ip, request_id: req.id });
    throw e;
  }
}

export function introspectRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.post(INTROSPECTION_PATH, async (req, reply) => {
      try {
        const result = await introspection(hub, {
          body: req.body, headers: req.headers, cookies: req.cookies, method: req.method, url: `${req.protocol}://${req.host}${req.url}`, ip: req.ip, id: req.id,
        });
        return noStore(reply).send(result);
      } catch (e) {
        return sendError(reply, e);
      }
    });
  };
}
