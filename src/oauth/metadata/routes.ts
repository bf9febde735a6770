/** HTTP edge of the published metadata: JWKS (RFC 7517), RFC 8414 / OpenID discovery, RFC 9728. */
import type { FastifyInstance } from 'fastify';
import { METADATA_CORS, withCors } from '../../http/cors.ts';
import type { Hub } from '../../hub.ts';
import { isOpenIdProvider } from '../openid/provider.ts';
import { authorizationServerMetadata, protectedResourceMetadata } from './index.ts';

export function metadataRoutes(hub: Hub) {
  const root = hub.config.publicUrl;
  return async function routes(app: FastifyInstance): Promise<void> {
    const jwks = '/.well-known/jwks.json';
    app.get(jwks, withCors(app, [jwks], METADATA_CORS), async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return hub.keys.jwks();
    });

    // RFC 8414 §3; OpenID Connect Discovery 1.0 §4 (not with HS256: the hub is then no OpenID Provider).
    const documents = ['/.well-known/oauth-authorization-server', ...(isOpenIdProvider(hub.config) ? ['/.well-known/openid-configuration'] : [])];
    const cors = withCors(app, documents, METADATA_CORS);
    for (const path of documents) app.get(path, cors, async () => authorizationServerMetadata(hub));

    // RFC 9728 §3: the resource is the URL the document was fetched for, minus the well-known part.
    const resources = [['/.well-known/oauth-protected-resource', root], ['/.well-known/oauth-protected-resource/mcp', `${root}/mcp`]] as const;
    const prmCors = withCors(app, resources.map(([path]) => path), METADATA_CORS);
    for (const [path, resource] of resources) {
      app.get(path, prmCors, async (_req, reply) => {
        reply.header('cache-control', 'public, max-age=300');
        return protectedResourceMetadata(hub, resource);
      });
    }
  };
}
