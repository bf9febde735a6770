/**
 * `POST /auth/admin/revocations`: an admin revokes what has no token to present — a sign-in
 * session or refresh family (`session`, by sid), an access token by `jti`, or a signing key
 * (`signing_key`, by kid: every token it signed stops working; the current key is rotated first).
 * API keys and service accounts are revoked through their own admin endpoints.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OAuthError } from '../errors.ts';
import { sendError } from '../http/reply.ts';
import { authenticateHook } from '../http/authenticate.ts';
import type { Hub } from '../hub.ts';
import { refusal } from '../authz/refusal.ts';

const body = z.object({
  type: z.enum(['session', 'access_token', 'signing_key']),
  id: z.string().min(1).max(256).regex(/^[\w.:-]+$/),
});

export function adminRevocationRoutes(hub: Hub) {
  const authenticate = authenticateHook(hub);
  return async function routes(app: FastifyInstance): Promise<void> {
    app.post('/auth/admin/revocations', { preHandler: authenticate }, async (req, reply) => {
      try {
        const p = req.principal!;
        const decision = hub.authorizer.decide(p, { permission: 'admin:manage', path: req.url.split('?')[0]! });
        if (!decision.allowed) {
          hub.audit.record({ type: 'access_denied', outcome: 'failure', reason: decision.reason, permission: 'admin:manage', method: req.method, path: '/auth/admin/revocations', principal: p, ip: req.ip, request_id: req.id });
          throw refusal(decision, 'Revocation by id needs the admin:manage permission.');
        }
        const parsed = body.safeParse(req.body ?? {});
        if (!parsed.success) throw new OAuthError('invalid_request', 'The body must be {"type": "session" | "access_token" | "signing_key", "id": "..."}.');
        const { type, id } = parsed.data;
        // Nothing a revoked id names can outlive the longest token lifetime from now.
        const until = Math.floor(hub.now() / 1000) + Math.max(hub.config.jwt.accessTokenLifetime, hub.config.serviceAccounts.tokenLifetime);
        if (type === 'signing_key') {
          if (id === hub.keys.currentKid) await hub.keys.rotate();
          await hub.revocations.revoke('kid', id, until);
        } else {
          await hub.revocations.revoke(type === 'session' ? 'sid' : 'jti', id, until);
          // The session itself ends too: its cookie stops working on every instance, not only its tokens.
          if (type === 'session') await hub.sessions.end(id);
        }
        hub.audit.record({ type: 'revocation', outcome: 'success', token_type: type, target: id, principal: p, ip: req.ip, request_id: req.id });
        return reply.header('cache-control', 'no-store').send({ type, id, revoked: true });
      } catch (e) {
        return sendError(reply, e);
      }
    });
  };
}
