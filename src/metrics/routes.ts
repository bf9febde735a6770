/** `GET` MIMIR_AUTH_METRICS_ENDPOINT (default /metrics/auth): Prometheus text exposition. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../hub.ts';

export function metricsRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.get(hub.config.metrics.endpoint, async (_req, reply) => {
      const text = await hub.metrics.text();
      return reply.header('cache-control', 'no-store').type(hub.metrics.registry.contentType).send(text);
    });
  };
}
