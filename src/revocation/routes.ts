/**
 * `POST /auth/admin/revocations`: an admin revokes what has no token to present — a sign-in
 * session or refresh family (`session`, by sid), an access token by `jti`, or a signing key
 * (`signing_key`, by kid: every token it signed stops working; the current key is rotated first).
 * API keys and service accounts are revoked through their own admin endpoints. Thin: the admin
 * service (src/admin/service.ts) authorizes, validates, revokes and audits.
 */
import type { FastifyInstance } from 'fastify';
import { adminActor, adminHandler, adminScope } from '../http/routes/admin.ts';
import { authenticateHook } from '../http/authenticate.ts';
import type { Hub } from '../hub.ts';

export function adminRevocationRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    adminScope(app);
    app.post('/auth/admin/revocations', { preHandler: authenticateHook(hub) }, adminHandler(async (req) => {
      const { type, id } = await hub.admin.revoke(adminActor(req), req.body);
      return { type, id, revoked: true };
    }));
  };
}
