/**
 * `/health` is liveness: 200 while the process answers, touching nothing else (a store outage
 * must not get a healthy hub restarted). `/ready` is readiness: 503 while the store cannot be
 * reached (the store's command timeout bounds the wait) or the revocation channel is stale
 * (MIMIR_REVOCATION_MAX_STALENESS), the body saying which, so a load balancer sends traffic elsewhere.
 */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../hub.ts';
import { RETRY_AFTER_SECONDS } from '../reply.ts';

export function healthRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.get('/health', async () => ({ status: 'ok' }));

    app.get('/ready', async (_req, reply) => {
      const storage = hub.store.kind;
      const unavailable = (body: Record<string, unknown>) =>
        reply.code(503).header('retry-after', RETRY_AFTER_SECONDS).header('cache-control', 'no-store').send({ status: 'unavailable', storage, ...body });
      try {
        await Promise.all([hub.store.ping(), hub.sessionStore === hub.store ? undefined : hub.sessionStore.ping()]);
      } catch {
        return unavailable({ error: 'storage_unreachable' });
      }
      if (!hub.contact.fresh) {
        return unavailable({ error: 'revocations_stale', stale_seconds: Math.round(hub.contact.stalenessSeconds * 10) / 10 });
      }
      return reply.header('cache-control', 'no-store').send({ status: 'ready', storage });
    });
  };
}
