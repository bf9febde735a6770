/**
 * `GET /auth/me`: the caller's Principal and its effective permissions. Answered here, and on the
 * fast path (src/http/fast-path.ts) when the credential is cached, with these same functions.
 */
import type { FastifyInstance } from 'fastify';
import type { Principal } from '../../authn/principal.ts';
import type { Decision } from '../../authz/index.ts';
import { refusal } from '../../authz/refusal.ts';
import type { Hub } from '../../hub.ts';
import { actingPrincipal, authenticateHook } from '../authenticate.ts';
import { sendError } from '../reply.ts';

export const ME_PATH = '/auth/me';
const ME_ACTION = { permission: null, path: ME_PATH } as const;

/** Whether the principal may see `/auth/me` (a credential bound to another resource may not: src/authz). */
export function meDecision(hub: Hub, p: Principal): Decision {
  return hub.authorizer.decide(p, ME_ACTION);
}

/**
 * The body of `GET /auth/me`: the Principal, its effective permissions (roles ∩ scope, src/authz)
 * and who the upstream Mimir is told it is (the same function the proxy's X-User-* come from).
 */
export function meBody(hub: Hub, p: Principal): Record<string, unknown> {
  return { ...p, permissions: hub.authorizer.permissions(p), upstream: hub.identities.upstream(p) };
}

export function meRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.get(ME_PATH, { preHandler: authenticateHook(hub) }, async (req, reply) => {
      try {
        // As the proxy sees it: a trusted service acting for a user is that user here too.
        const principal = await actingPrincipal(hub, req);
        const decision = meDecision(hub, principal);
        if (!decision.allowed) return sendError(reply, refusal(decision));
        return reply.header('cache-control', 'no-store').send(meBody(hub, principal));
      } catch (e) {
        return sendError(reply, e);
      }
    });
  };
}
