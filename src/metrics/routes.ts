/**
 * `GET` MIMIR_AUTH_METRICS_ENDPOINT (default /metrics/auth): Prometheus text exposition. Metrics
 * say who uses the hub and how often it refuses: they answer a scraper on the same host (a
 * loopback client address, as seen after MIMIR_TRUST_PROXY, with no forwarding header: a reverse
 * proxy on the same host connects from loopback too) or a credential holding
 * `metrics:read` (which `*` covers; the built-in role `metrics-reader` grants it). Others: 401/403.
 */
import type { FastifyInstance } from 'fastify';
import { refusal } from '../authz/refusal.ts';
import { sendError } from '../http/reply.ts';
import { authenticateRequest } from '../http/authenticate.ts';
import type { Hub } from '../hub.ts';

export const METRICS_PERMISSION = 'metrics:read';

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopbackAddress(ip: string | undefined): boolean {
  if (!ip) return false;
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

export function metricsRoutes(hub: Hub) {
  const authenticate = authenticateRequest(hub);
  const path = hub.config.metrics.endpoint;
  return async function routes(app: FastifyInstance): Promise<void> {
    app.get(path, async (req, reply) => {
      // A credential, when one is sent, is judged even from loopback: a bad one is a 401.
      const credential = req.headers.authorization !== undefined || req.headers['x-api-key'] !== undefined;
      // A request a proxy on this host forwarded also comes from loopback: it is not a local scraper.
      const forwarded = req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined || req.headers['x-real-ip'] !== undefined;
      if (credential || forwarded || !isLoopbackAddress(req.ip)) {
        if (await authenticate(req, reply)) return reply;
        const decision = hub.authorizer.decide(req.principal!, { permission: METRICS_PERMISSION, path });
        if (!decision.allowed) {
          hub.audit.record({ type: 'access_denied', outcome: 'failure', reason: decision.reason, permission: METRICS_PERMISSION, method: req.method, path, principal: req.principal, ip: req.ip, request_id: req.id });
          return sendError(reply, refusal(decision, `The metrics need the ${METRICS_PERMISSION} permission (or a scraper on this host).`));
        }
      }
      const text = await hub.metrics.text();
      return reply.header('cache-control', 'no-store').type(hub.metrics.registry.contentType).send(text);
    });
  };
}
