/** `/health` (liveness: the process answers) and `/ready` (readiness: the store answers). */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../hub.ts';

export function healthRoutes(hub: Hub) {
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
  };
}
