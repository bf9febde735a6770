import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../hub.ts';
import { authorizationServerMetadata } from '../../oauth/metadata/index.ts';
import { handleTokenRequest } from '../../oauth/token/index.ts';
import { OAuthError } from '../../errors.ts';
import { noStore, sendError } from '../reply.ts';
import { authenticateHook } from '../server.ts';
import { ME_PATH, meBody, meDecision } from '../fast-path.ts';
import { refusal } from '../../authz/refusal.ts';

export function coreRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.get('/health', async () => ({ status: 'ok' }));

    app.get('/ready', async (_req, reply) => {
      try {
        await hub.store.ping();
        return { status: 'ready', storage: hub.store.kind };
      } catch {
        return reply.code(503).send({ status: 'unavailable', storage: hub.store.kind, error: 'storage_unreachable' });
      }
    });

    app.get('/.well-known/jwks.json', async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return hub.keys.jwks();
    });

    const metadata = async () => authorizationServerMetadata(hub);
    app.get('/.well-known/oauth-authorization-server', metadata);
    app.get('/.well-known/openid-configuration', metadata);

    app.post('/auth/token', async (req, reply) => {
      try {
        const result = await handleTokenRequest(hub, { body: req.body, headers: req.headers, method: req.method, url: req.url });
        hub.audit.record({
          type: 'token_issued', outcome: 'success', grant_type: result.grantType, client: result.clientId,
          ip: req.ip, request_id: req.id, ...result.audit,
        });
        return noStore(reply).send(result.body);
      } catch (e) {
        const err = e instanceof OAuthError ? e : undefined;
        hub.audit.record({
          type: 'token_issued', outcome: 'failure', reason: err?.error ?? 'server_error',
          grant_type: typeof (req.body as Record<string, unknown> | undefined)?.grant_type === 'string' ? String((req.body as Record<string, unknown>).grant_type).slice(0, 100) : undefined,
          ip: req.ip, request_id: req.id,
        });
        return sendError(reply, e);
      }
    });

    // Also answered by src/http/fast-path.ts when the credential is cached: keep the two alike.
    app.get(ME_PATH, { preHandler: authenticateHook(hub) }, (req, reply) => {
      const decision = meDecision(hub, req.principal!);
      if (!decision.allowed) return sendError(reply, refusal(decision));
      return reply.header('cache-control', 'no-store').send(meBody(hub, req.principal!));
    });
  };
}
