/**
 * The HTTP edge: `buildServer(hub)` maps HTTP onto a hub (src/hub.ts) and adds nothing else —
 * Fastify, the hub's route modules, the fast path in front, error rendering, the periodic cleanup
 * while it serves. Route modules get what they need from the hub, never from this module.
 */
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyInstance, type HTTPMethods } from 'fastify';
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../authn/principal.ts';
import { ConfigError } from '../config/index.ts';
import { OAuthError } from '../errors.ts';
import type { Hub } from '../hub.ts';
import { startCleanup } from '../jobs/cleanup.ts';
import { lazyChildLogger } from '../logger.ts';
import { metricsRoutes } from '../metrics/routes.ts';
import { authorizationServerRoutes } from '../oauth/authorize/routes.ts';
import { pushedAuthorizationRoutes } from '../oauth/par/routes.ts';
import { introspectRoutes } from '../oauth/introspect/routes.ts';
import { metadataRoutes } from '../oauth/metadata/routes.ts';
import { isOpenIdProvider } from '../oauth/openid/provider.ts';
import { userinfoRoutes } from '../oauth/openid/userinfo.ts';
import { refreshRoutes } from '../oauth/refresh/routes.ts';
import { revokeRoutes } from '../oauth/revoke/routes.ts';
import { tokenRoutes } from '../oauth/token/routes.ts';
import { oidcRoutes } from '../oidc/routes.ts';
import { proxyRoutes } from '../proxy/routes.ts';
import { adminRevocationRoutes } from '../revocation/routes.ts';
import { createFastPath, type FastPath } from './fast-path.ts';
import { answersAtTurnEnd } from './turn-writes.ts';
import { FORM_BODY_LIMIT, parseForm } from './form.ts';
import { handedOverId, takeHandover } from './handover.ts';
import { SECURITY_HEADERS, sendError } from './reply.ts';
import { adminRoutes } from './routes/admin.ts';
import { consoleRoutes } from './routes/console.ts';
import { healthRoutes } from './routes/health.ts';
import { meRoutes } from './routes/me.ts';
import { robotsRoutes } from './routes/robots.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** Parameters every 401/403 challenge of this request carries (RFC 9728 `resource_metadata` on /mcp). */
    challengeExtras?: Record<string, string>;
  }
  interface FastifyInstance {
    /** The fast path in front of this server's routes, if it has one. */
    fastPath: FastPath | undefined;
  }
}

export interface ServerOptions {
  /** Log requests (default: only at debug level). */
  logRequests?: boolean;
  /**
   * Answer `GET /auth/me` and relay plain proxied reads with a cached credential outside Fastify's
   * pipeline (src/http/fast-path.ts). Default: on, except where Fastify must see every request —
   * request logging, or MIMIR_TRUST_PROXY (the client address then comes from X-Forwarded-For,
   * which Fastify works out).
   */
  fastPath?: boolean;
}

/** Requests this server answered on its fast path (undefined: it has none). */
export function fastPathAnswered(app: FastifyInstance): number | undefined {
  return app.fastPath?.answered;
}

export async function buildServer(hub: Hub, options: ServerOptions = {}): Promise<FastifyInstance> {
  const { config } = hub;
  // Fastify applies `http` options to plain HTTP only: the header limit goes into the TLS server's options too.
  const https = config.tls ? { key: tlsFile(config.tls.keyFile, 'MIMIR_TLS_KEY_FILE'), cert: tlsFile(config.tls.certFile, 'MIMIR_TLS_CERT_FILE'), maxHeaderSize: config.maxHeaderBytes } : null;
  const logRequests = options.logRequests ?? (config.logLevel === 'debug' || config.logLevel === 'trace');
  const nextId = requestIds();
  let fastPath: FastPath | undefined;
  let closing = false;
  const app = Fastify({
    loggerInstance: hub.log,
    // Most requests write no log line: their request-id child logger is built only when one does.
    childLoggerFactory: lazyChildLogger,
    logController: new LogController({ disableRequestLogging: !logRequests }),
    trustProxy: config.trustProxy,
    routerOptions: { maxParamLength: 256 },
    bodyLimit: 1024 * 1024,
    http: { maxHeaderSize: config.maxHeaderBytes },
    // A request the fast path recorded before leaving it to Fastify keeps its id.
    genReqId: (raw: IncomingMessage) => handedOverId(raw) ?? nextId(),
    requestIdHeader: false,
    return503OnClosing: true,
    ...(https ? { https } : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  offerToFastPath(app, () => fastPath);
  answersAtTurnEnd(app.server, https !== null);
  app.addHook('preClose', (done) => { closing = true; done(); });

  const mcpChallenge = { resource_metadata: `${config.publicUrl}/.well-known/oauth-protected-resource/mcp`, scope: 'mcp:*' };
  // One callback-style hook for what every request needs (an async hook costs a promise per request).
  app.addHook('onRequest', (req, reply, done) => {
    if (isMcpPath(req.url)) req.challengeExtras = mcpChallenge;
    reply.header('x-request-id', req.id);
    reply.headers(SECURITY_HEADERS);
    // Parsed here, only when a Cookie header came; @fastify/cookie's own hook would also allocate
    // its Set-Cookie bookkeeping on every request (reply.setCookie does that itself when used).
    const header = req.headers.cookie;
    req.cookies = header === undefined ? {} : app.parseCookie(header);
    done();
  });

  await app.register(cookie, { hook: false });
  await app.register(formbody, { bodyLimit: FORM_BODY_LIMIT, parser: parseForm });
  if (options.fastPath ?? (!logRequests && config.trustProxy === false)) {
    fastPath = createFastPath({
      hub, nextId, parseCookie: (h) => app.parseCookie(h), open: () => !closing,
      // The catch-all is the one route with a `*` parameter.
      proxied: (method, path) => { const route = app.findRoute({ method: method as HTTPMethods, url: path }); return route !== null && '*' in route.params; },
    });
  }
  app.decorate('fastPath', fastPath);

  app.setErrorHandler((error, _req, reply) => {
    const e = error as { statusCode?: number; code?: string; message?: string };
    if (error instanceof OAuthError) return sendError(reply, error);
    // Fastify's own 4xx (bad JSON, unsupported content type, body too large): the caller's fault.
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 413 ? 'payload_too_large' : 'invalid_request';
      return sendError(reply, new OAuthError(code, describeFastifyError(e.code), { status: e.statusCode, detail: e.code ?? '' }));
    }
    return sendError(reply, error);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new OAuthError('not_found', `No route for ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}.`)));

  await app.register(healthRoutes(hub));
  await app.register(robotsRoutes());
  await app.register(metadataRoutes(hub));
  if (isOpenIdProvider(config)) await app.register(userinfoRoutes(hub));
  await app.register(tokenRoutes(hub));
  await app.register(meRoutes(hub));
  await app.register(refreshRoutes(hub));
  if (config.revocation.enabled) await app.register(revokeRoutes(hub));
  await app.register(introspectRoutes(hub));
  await app.register(adminRoutes(hub));
  await app.register(adminRevocationRoutes(hub));
  if (config.metrics.enabled) await app.register(metricsRoutes(hub));
  await app.register(oidcRoutes(hub));
  await app.register(authorizationServerRoutes(hub));
  await app.register(pushedAuthorizationRoutes(hub));
  await app.register(consoleRoutes(hub));
  // Keep last: the authenticating reverse proxy is the catch-all for everything above leaves.
  await app.register(proxyRoutes(hub));
  const stops = [...new Set([hub.store, hub.sessionStore])].map((store) => startCleanup(store, { intervalSeconds: config.cleanup.intervalSeconds, log: hub.log }));
  app.addHook('onClose', async () => { for (const stop of stops) stop(); });
  return app;
}

/**
 * A TLS file as the server will use it: readable, and a PEM private key (MIMIR_TLS_KEY_FILE) or
 * certificate (MIMIR_TLS_CERT_FILE), else a configuration error naming the variable and the file
 * (OpenSSL's own message names neither).
 */
function tlsFile(file: string, variable: 'MIMIR_TLS_KEY_FILE' | 'MIMIR_TLS_CERT_FILE'): Buffer {
  const what = variable === 'MIMIR_TLS_KEY_FILE' ? 'a PEM private key (unencrypted)' : 'a PEM certificate (its chain after it)';
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (e) {
    throw new ConfigError([`${variable}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); point ${variable} at ${what} this user may read`]);
  }
  try {
    if (variable === 'MIMIR_TLS_KEY_FILE') createPrivateKey(pem);
    else new X509Certificate(pem);
  } catch {
    throw new ConfigError([`${variable}: ${file} is not ${what}`]);
  }
  return pem;
}

/**
 * Puts the fast path in front of Fastify's handler on the server Fastify made (its request
 * listener, as http.createServer(options, handler) adds it), keeping every setting Fastify gives
 * its server. (Not `serverFactory`: with it, Fastify no longer binds both addresses of `localhost`.)
 * A fast path that throws before answering leaves the request to Fastify; after, it ends the response.
 */
function offerToFastPath(app: FastifyInstance, fastPath: () => FastPath | undefined): void {
  const server = app.server;
  const [handler] = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  if (!handler) throw new Error('Fastify did not register its request handler on its server');
  server.removeListener('request', handler);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const fast = fastPath();
    if (fast) {
      try {
        if (fast(req, res, handler)) return;
      } catch (e) {
        app.log.error({ detail: e instanceof Error ? e.message : String(e) }, 'fast path failed; the request goes to Fastify');
        if (res.headersSent) { res.destroy(); return; }
        takeHandover(req);
      }
    }
    handler(req, res);
  });
}

/**
 * Request ids shaped like UUIDs: a random UUID per server with its last 48 bits replaced by a
 * counter. Unique per process and across instances (74 random bits), without drawing random
 * bytes for every request.
 */
function requestIds(): () => string {
  const prefix = randomUUID().slice(0, 24);
  let n = 0;
  return () => prefix + (n = (n + 1) % 0x1000000000000).toString(16).padStart(12, '0');
}

/** `/mcp` or below it, query string aside. */
function isMcpPath(url: string): boolean {
  if (!url.startsWith('/mcp')) return false;
  const next = url.charCodeAt(4);
  return Number.isNaN(next) || next === 0x2f /* / */ || next === 0x3f /* ? */;
}

function describeFastifyError(code: string | undefined): string {
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return 'The request body is not valid JSON.';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'The request content type is not supported; use application/x-www-form-urlencoded or application/json.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'The request body is too large.';
    default: return 'The request is malformed.';
  }
}
