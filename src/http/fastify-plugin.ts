/**
 * Fastify adapter for embedding the authenticator (e.g. inside Mimir instead of proxying).
 *
 * @example
 * ```ts
 * const hub = await openHub(loadConfig());
 * await app.register(mimirAuth, { authenticator: hub.authenticator });
 * app.get('/api/nodes', { preHandler: app.requireAuth }, (req) => req.principal);
 * ```
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../authn/authenticate.ts';
import type { Principal } from '../authn/principal.ts';
import { OAuthError } from '../errors.ts';
import { allows } from '../rbac/policy.ts';
import type { Rbac } from '../rbac/policy.ts';
import { sendError } from './reply.ts';

export interface MimirAuthOptions {
  authenticator: Authenticator;
  /** When given, `requirePermission(p)` checks RBAC permissions. */
  rbac?: Rbac;
}

declare module 'fastify' {
  interface FastifyInstance {
    requireAuth: (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
    requirePermission: (permission: string) => (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
  }
}

export async function mimirAuth(app: FastifyInstance, options: MimirAuthOptions): Promise<void> {
  if (!options?.authenticator) throw new TypeError('mimirAuth: options.authenticator is required (from openHub(config).authenticator)');
  const { authenticator, rbac } = options;
  const requireAuth = async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      req.principal = await authenticator.authenticate({ headers: req.headers, cookies: (req as { cookies?: Record<string, string> }).cookies ?? {}, method: req.method, url: `${req.protocol}://${req.host}${req.url}` });
      return undefined;
    } catch (e) {
      return sendError(reply, e);
    }
  };
  app.decorate('requireAuth', requireAuth);
  app.decorate('requirePermission', (permission: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    const failed = await requireAuth(req, reply);
    if (failed) return failed;
    if (!rbac) throw new TypeError('requirePermission needs options.rbac');
    if (!principalAllows(rbac, req.principal!, permission)) {
      return sendError(reply, new OAuthError('insufficient_scope', `This needs the ${permission} permission.`, { extra: { missing_permission: permission }, challenge: { error: 'insufficient_scope', scope: permission } }));
    }
    return undefined;
  });
}
// Let the decorators escape encapsulation, as fastify-plugin would.
(mimirAuth as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export function principalAllows(rbac: Rbac, p: Principal, permission: string): boolean {
  const granted = rbac.permissionsFor(p.roles);
  if (!allows(granted, permission)) return false;
  return p.scopes.length === 0 || allows(p.scopes, permission);
}
