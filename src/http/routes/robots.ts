/**
 * What browsers and crawlers ask every site for, answered by the hub itself: `/robots.txt` (RFC
 * 9309: nothing here is for crawlers) and `/favicon.ico` (no icon: 204). Neither needs a
 * credential, so neither reaches the proxy, where a browser's automatic request was an
 * authentication failure in the audit log.
 */
import type { FastifyInstance } from 'fastify';

export const ROBOTS_PATH = '/robots.txt';
export const FAVICON_PATH = '/favicon.ico';

export function robotsRoutes() {
  return async function routes(app: FastifyInstance): Promise<void> {
    app.get(ROBOTS_PATH, async (_req, reply) => reply.header('cache-control', 'public, max-age=86400').type('text/plain; charset=utf-8').send('User-agent: *\nDisallow: /\n'));
    app.get(FAVICON_PATH, async (_req, reply) => reply.code(204).header('cache-control', 'public, max-age=86400').send());
  };
}
