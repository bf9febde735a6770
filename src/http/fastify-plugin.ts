/**
 * Fastify adapter for embedding the hub (e.g. inside Mimir instead of proxying). Fails closed:
 * once registered, every route of the scope it is registered in needs an accepted credential,
 * unless the route opts out with `config: { mimirAuth: false }`; a route may ask for a permission
 * with `config: { mimirAuth: { permission: 'nodes:read' } }`. Decisions are the hub's one rule
 * (src/authz): roles ∩ the credential's scope, and the credential's resource binding.
 *
 * @example
 * ```ts
 * const hub = await openHub(loadConfig());
 * await app.register(mimirAuth, { hub });
 * app.get('/api/nodes', { config: { mimirAuth: { permission: 'nodes:read' } } }, (req) => req.principal);
 * app.get('/status', { config: { mimirAuth: false } }, () => ({ ok: true })); // public, explicitly
 * ```
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../authn/authenticate.ts';
import type { Principal } from '../authn/principal.ts';
import { Authorizer } from '../authz/index.ts';
import { refusal } from '../authz/refusal.ts';
import { Rbac } from '../rbac/policy.ts';
import { sendError } from './reply.ts';

export interface MimirAuthOptions {
  /** The hub (`openHub(config)`): its authenticator and its one authorization rule. */
  hub?: { authenticator: Authenticator; authorizer: Authorizer };
  /** Without `hub`: the authenticator (from `openHub(config).authenticator`)… */
  authenticator?: Authenticator;
  /** …and the RBAC configuration permissions are decided by (default: Mimir's shipped rbac.json). */
  rbac?: Rbac;
}

/** A route's `config.mimirAuth`: `false` opts out; an object may name the permission the route needs. */
export type RouteAuth = false | { permission?: string } | undefined;

/** `app.requireAuth`, `app.requirePermission(p)`: a preHandler that replies with the refusal, if any. */
// A top-level alias, not the types spelled out inside the augmentation: declaration emit drops
// imports used only inside `declare module`, and dist/*.d.ts would name an unimported FastifyReply.
export type AuthGuard = (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

declare module 'fastify' {
  interface FastifyContextConfig {
    mimirAuth?: RouteAuth;
  }
  interface FastifyInstance {
    requireAuth: AuthGuard;
    requirePermission: (permission: string) => AuthGuard;
  }
}

const path = (req: FastifyRequest) => req.url.split('?')[0]!;

export async function mimirAuth(app: FastifyInstance, options: MimirAuthOptions): Promise<void> {
  const authenticator = options?.hub?.authenticator ?? options?.authenticator;
  if (!authenticator) throw new TypeError('mimirAuth: options.hub is required (from openHub(config))');
  const authorizer = options.hub?.authorizer ?? new Authorizer(options.rbac ?? new Rbac());

  /** Authenticates and decides; replies with the refusal and resolves to it, or to undefined. */
  const guard = async (req: FastifyRequest, reply: FastifyReply, permission: string | null): Promise<FastifyReply | undefined> => {
    try {
      if (!req.principal) {
        req.principal = await authenticator.authenticate({
          headers: req.headers, cookies: (req as { cookies?: Record<string, string> }).cookies ?? {}, method: req.method,
          url: `${req.protocol}://${req.host}${req.url}`,
          // RFC 9449 §8.2: a fresh DPoP nonce goes out with the answer.
          dpopNonce: (nonce) => { reply.header('dpop-nonce', nonce); },
        });
      }
      const decision = authorizer.decide(req.principal, { permission, path: path(req) });
      if (!decision.allowed) return sendError(reply, refusal(decision));
      return undefined;
    } catch (e) {
      return sendError(reply, e);
    }
  };

  // Every route of this scope, whenever it was registered: fail closed unless it opts out.
  app.addHook('preHandler', async (req, reply) => {
    const auth = req.routeOptions.config?.mimirAuth;
    if (auth === false) return undefined;
    return guard(req, reply, auth?.permission ?? null);
  });
  app.decorate('requireAuth', (req: FastifyRequest, reply: FastifyReply) => guard(req, reply, null));
  app.decorate('requirePermission', (permission: string) => (req: FastifyRequest, reply: FastifyReply) => guard(req, reply, permission));
}
// Let the hook and decorators escape encapsulation, as fastify-plugin would.
(mimirAuth as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

/**
 * Whether the principal may use `permission` at `path` (the hub's one rule).
 *
 * @example
 * principalAllows(hub.authorizer, req.principal, 'nodes:write', '/api/nodes')
 */
export function principalAllows(authorizer: Authorizer, p: Principal, permission: string, atPath = '/'): boolean {
  return authorizer.decide(p, { permission, path: atPath }).allowed;
}
