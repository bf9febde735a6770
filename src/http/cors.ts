/**
 * CORS (WHATWG Fetch §3.2) for the endpoints browser-based OAuth and MCP clients call: one policy
 * per kind of endpoint, applied by the route modules through {@link withCors}, never copied.
 *
 * - Public endpoints (metadata, JWKS, registration, token, revocation, UserInfo) answer every
 *   origin with `Access-Control-Allow-Origin: *` and never `Access-Control-Allow-Credentials`:
 *   `*` forbids credentialed requests, so no browser sends the hub's session cookie cross-origin
 *   through them and reads the answer. What they accept is a credential the caller holds itself
 *   (a client secret, an access token), which CORS does not protect anyway.
 * - `/mcp` answers only the origins in MIMIR_MCP_ALLOWED_ORIGINS, echoed (with `Vary: Origin`);
 *   any other origin gets no CORS header, and its preflight is refused (403).
 * Introspection (RFC 7662) is for resource servers, not browsers: it has no CORS.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { OAuthError } from '../errors.ts';
import { sendError } from './reply.ts';

export interface CorsPolicy {
  /** `*` (any origin, not echoed), or the origins answered (echoed). */
  readonly origins: '*' | ReadonlySet<string>;
  readonly methods: readonly string[];
  /** Request headers a preflight may ask for (lower case). */
  readonly allowHeaders: readonly string[];
  /** Response headers scripts may read beyond the CORS-safelisted ones. */
  readonly exposeHeaders: readonly string[];
}

/** How long a browser may remember a preflight answer (Chromium caps it at 2 hours). */
const MAX_AGE_SECONDS = '600';

/** The MCP SDKs send `MCP-Protocol-Version` on every request, metadata discovery included. */
const MCP_VERSION = 'mcp-protocol-version';

/** RFC 8414, RFC 9728, OIDC Discovery, RFC 7517: documents anyone may read. */
export const METADATA_CORS: CorsPolicy = { origins: '*', methods: ['GET'], allowHeaders: [MCP_VERSION], exposeHeaders: [] };

/** RFC 7591 registration. */
export const REGISTRATION_CORS: CorsPolicy = { origins: '*', methods: ['POST'], allowHeaders: ['content-type', 'authorization', MCP_VERSION], exposeHeaders: ['retry-after'] };

/** RFC 6749 §3.2 token endpoint: client authentication, DPoP proofs (RFC 9449 §8: the server's nonce). */
export const TOKEN_CORS: CorsPolicy = { origins: '*', methods: ['POST'], allowHeaders: ['authorization', 'content-type', 'dpop', MCP_VERSION], exposeHeaders: ['dpop-nonce', 'www-authenticate'] };

/** RFC 7009 revocation (a caller may authenticate with a DPoP-bound token, so it may be sent a nonce). */
export const REVOCATION_CORS: CorsPolicy = { origins: '*', methods: ['POST'], allowHeaders: ['authorization', 'content-type', 'dpop'], exposeHeaders: ['www-authenticate', 'dpop-nonce'] };

/** OIDC Core §5.3 UserInfo: bearer or DPoP-bound access tokens, GET or POST. */
export const USERINFO_CORS: CorsPolicy = { origins: '*', methods: ['GET', 'POST'], allowHeaders: ['authorization', 'content-type', 'dpop'], exposeHeaders: ['www-authenticate', 'dpop-nonce'] };

/** MCP Streamable HTTP: the headers its clients send and the ones they must read. */
export function mcpCors(origins: readonly string[]): CorsPolicy {
  return {
    origins: new Set(origins),
    methods: ['GET', 'POST', 'DELETE'],
    allowHeaders: ['authorization', 'dpop', MCP_VERSION, 'mcp-session-id', 'mcp-method', 'mcp-name', 'last-event-id', 'content-type'],
    exposeHeaders: ['mcp-session-id', 'www-authenticate', 'dpop-nonce'],
  };
}

/** The `Access-Control-Allow-Origin` value for this request's Origin, or undefined (no CORS for it). */
function allowedOrigin(policy: CorsPolicy, origin: string | undefined): string | undefined {
  if (policy.origins === '*') return '*';
  return origin !== undefined && policy.origins.has(origin) ? origin : undefined;
}

/** Sets the CORS headers of an actual (not preflight) response, when this origin is answered. */
export function applyCors(policy: CorsPolicy, origin: string | undefined, reply: FastifyReply): void {
  const allow = allowedOrigin(policy, origin);
  if (policy.origins !== '*') reply.header('vary', 'Origin');
  if (allow === undefined) return;
  reply.header('access-control-allow-origin', allow);
  if (policy.exposeHeaders.length) reply.header('access-control-expose-headers', policy.exposeHeaders.join(', '));
}

/**
 * A preflight (Fetch §3.2.2: OPTIONS with Origin and Access-Control-Request-Method): 204 with the
 * policy's methods and headers, or 403 without any CORS header for an origin it does not answer.
 * An OPTIONS that is no preflight gets `Allow`.
 */
export function answerPreflight(policy: CorsPolicy, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const origin = req.headers.origin;
  const methods = [...policy.methods, 'OPTIONS'].join(', ');
  if (origin === undefined || req.headers['access-control-request-method'] === undefined) {
    return reply.code(204).header('allow', methods).send();
  }
  const allow = allowedOrigin(policy, origin);
  if (policy.origins !== '*') reply.header('vary', 'Origin');
  if (allow === undefined) return sendError(reply, new OAuthError('access_denied', 'This origin may not call this endpoint from a browser.', { status: 403 }));
  return reply.code(204)
    .header('access-control-allow-origin', allow)
    .header('access-control-allow-methods', methods)
    .header('access-control-allow-headers', policy.allowHeaders.join(', '))
    .header('access-control-max-age', MAX_AGE_SECONDS)
    .header('cache-control', 'no-store')
    .send();
}

/**
 * CORS for the routes at `paths`: registers their preflight (OPTIONS) and returns the route
 * option that sets the headers of their answers — success and refusal alike, as it runs before
 * the handler. Pass the result to each method's route.
 *
 * @example
 * const cors = withCors(app, ['/auth/token'], TOKEN_CORS);
 * app.post('/auth/token', cors, handler);
 */
export function withCors(app: FastifyInstance, paths: readonly string[], policy: CorsPolicy): { onRequest: onRequestHookHandler } {
  for (const path of paths) app.options(path, (req, reply) => answerPreflight(policy, req, reply));
  return {
    onRequest: (req, reply, done) => {
      applyCors(policy, req.headers.origin, reply);
      done();
    },
  };
}
