/** HTTP edge of the published metadata: JWKS (RFC 7517), RFC 8414 / OpenID discovery, RFC 9728. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../hub.ts';
import { authorizationServerMetadata, protectedResourceMetadata } from './index.ts';

export function metadataRoutes(hub: Hub) {
  const root = hub.config.publicUrl;
  return async function routes(app: FastifyInstance): Promise<void> {
    app.get('/.well-known/jwks.json', async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return hub.keys.jwks();
    });

    const metadata = async () => authorizationServerMetadata(hub);
    app.get('/.well-known/oauth-authorization-server', metadata);
    app.get('/.well-known/openid-configuration', metadata);

    // RFC 9728 §3: the resource is the URL the document was fetched for, minus the well-known part.
    for (const [path, resource] of [['/.well-known/oauth-protected-resource', root], ['/.well-known/oauth-protected-resource/mcp', `${root}/mcp`]] as const) {
      app.get(path, async (_req, reply) => {
        reply.header('cache-control', 'public, max-age=300');
        return protectedResourceMetadata(hub, resource);
      });
    }
  };
}
