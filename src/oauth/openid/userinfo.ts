/**
 * OIDC Core §5.3 UserInfo endpoint, `GET` and `POST /auth/userinfo`: for an access token this
 * hub issued with the `openid` scope — sent as RFC 6750 bearer or RFC 9449 DPoP-bound, checked
 * like every other credential (src/http/authenticate.ts) — the user's claims its scopes release
 * (§5.4). Errors are RFC 6750 §3 challenges (§5.3.3).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { isServiceAccount, type Principal } from '../../authn/principal.ts';
import { refusal } from '../../authz/refusal.ts';
import { OAuthError } from '../../errors.ts';
import { authenticateRequest } from '../../http/authenticate.ts';
import { USERINFO_CORS, withCors } from '../../http/cors.ts';
import { sendError } from '../../http/reply.ts';
import type { Hub } from '../../hub.ts';
import { scopedClaims } from './claims.ts';
import { USERINFO_PATH } from './provider.ts';

/** The claims for the token's user; throws the RFC 6750 refusal. */
export function userinfo(hub: Hub, p: Principal): Record<string, unknown> {
  // Only the hub's own access tokens from a user's grant speak for a user to an OpenID client.
  if (p.auth_method !== 'jwt' || !p.client_id || isServiceAccount(p)) {
    throw challenge('invalid_token', 401, 'The UserInfo endpoint takes an access token this hub issued with the openid scope.');
  }
  if (!p.scopes.includes('openid')) throw challenge('insufficient_scope', 403, 'The access token was not issued with the openid scope.', 'openid');
  const decision = hub.authorizer.decide(p, { permission: null, path: USERINFO_PATH });
  if (!decision.allowed) throw refusal(decision);
  return {
    sub: hub.identities.userId({ sub: p.sub, provider: p.provider }),
    ...scopedClaims(p.scopes, p),
  };
}

function challenge(error: 'invalid_token' | 'insufficient_scope', status: number, description: string, scope?: string): OAuthError {
  return new OAuthError(error, description, {
    status,
    challenge: { realm: 'mimir', error, error_description: description, ...(scope ? { scope } : {}) },
  });
}

export function userinfoRoutes(hub: Hub) {
  const authenticate = authenticateRequest(hub);
  return async function routes(app: FastifyInstance): Promise<void> {
    const cors = withCors(app, [USERINFO_PATH], USERINFO_CORS);
    const handler = async (req: Parameters<typeof authenticate>[0], reply: FastifyReply) => {
      try {
        if (await authenticate(req, reply)) return reply;
        return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(userinfo(hub, req.principal!));
      } catch (e) {
        return sendError(reply, e);
      }
    };
    app.get(USERINFO_PATH, cors, handler);
    app.post(USERINFO_PATH, cors, handler);
  };
}
