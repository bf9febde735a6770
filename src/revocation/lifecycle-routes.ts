/**
 * The token-lifecycle feature at the HTTP edge, registered with one line from the server:
 * refresh, revocation (RFC 7009), introspection (RFC 7662), metrics, the admin revocation
 * endpoint, the metadata that advertises them (RFC 8414) and the periodic cleanup job.
 */
import type { FastifyInstance } from 'fastify';
import { DPOP_ALGORITHMS } from '../dpop/verify-proof.ts';
import type { Hub } from '../hub.ts';
import { startCleanup } from '../jobs/cleanup.ts';
import { metricsRoutes } from '../metrics/routes.ts';
import { INTROSPECTION_PATH, introspectRoutes } from '../oauth/introspect/routes.ts';
import { extendMetadata } from '../oauth/metadata/index.ts';
import { refreshRoutes, registerRefreshGrant } from '../oauth/refresh/routes.ts';
import { revokeRoutes } from '../oauth/revoke/routes.ts';
import { supportedGrantTypes } from '../oauth/token/index.ts';
import { adminRevocationRoutes } from './routes.ts';

let registered = false;

/** Grant and metadata registries are process-wide: filled once, answering per hub's config. */
function registerOnce(): void {
  if (registered) return;
  registered = true;
  registerRefreshGrant();
  extendMetadata((hub) => {
    const base = hub.config.publicUrl;
    const clientAuth = ['client_secret_basic', 'client_secret_post'];
    return {
      grant_types_supported: supportedGrantTypes().filter((g) => g !== 'refresh_token' || hub.config.refresh.enabled),
      ...(hub.config.revocation.enabled
        ? { revocation_endpoint: `${base}${hub.config.revocation.endpoint}`, revocation_endpoint_auth_methods_supported: [...clientAuth, 'none'] }
        : {}),
      introspection_endpoint: `${base}${INTROSPECTION_PATH}`,
      introspection_endpoint_auth_methods_supported: clientAuth,
      ...(hub.config.security.tokenBinding ? { dpop_signing_alg_values_supported: DPOP_ALGORITHMS } : {}),
    };
  });
}

export function lifecycleRoutes(hub: Hub) {
  registerOnce();
  return async function routes(app: FastifyInstance): Promise<void> {
    await app.register(refreshRoutes(hub));
    if (hub.config.revocation.enabled) await app.register(revokeRoutes(hub));
    await app.register(introspectRoutes(hub));
    await app.register(adminRevocationRoutes(hub));
    if (hub.config.metrics.enabled) await app.register(metricsRoutes(hub));
    const stop = startCleanup(hub.store, { intervalSeconds: hub.config.cleanup.intervalSeconds, log: hub.log });
    app.addHook('onClose', async () => stop());
  };
}
