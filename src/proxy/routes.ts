/**
 * The front door (HTTP edge): every request outside the hub's own routes is authenticated,
 * authorized and streamed to MIMIR_UPSTREAM_URL. Registered last, as the catch-all. The steps
 * are small named checks; the protocol pieces live in forward.ts, mcp.ts, user-context.ts and
 * src/rbac.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, Writable, type Readable, type Transform } from 'node:stream';
import type { Principal } from '../authn/principal.ts';
import type { Decision } from '../authz/index.ts';
import { OAuthError } from '../errors.ts';
import type { Hub } from '../hub.ts';
import { applyCors, mcpCors, withCors } from '../http/cors.ts';
import { baseHeaders, sendError, writeError } from '../http/reply.ts';
import { handedOverAt, takeBody } from '../http/handover.ts';
import { FAVICON_PATH, ROBOTS_PATH } from '../http/routes/robots.ts';
import { actingPrincipal, authenticateRequest, type RefusalPage } from '../http/authenticate.ts';
import { safeReturnTo } from '../oidc/return-to.ts';
import { refusal } from '../authz/refusal.ts';
import { DEFAULT_ROUTES, routePermission, ruleAuthentication, type RouteRule } from '../rbac/routes.ts';
import { callUpstream, downstreamHeaders, openUpstreamAgent, upstreamHeaders, upstreamTarget, withoutCredentialParams, type HeaderPolicy, type UpstreamAnswer, type UpstreamTarget } from './forward.ts';
import { bindSession, peekSession, resolveSession, unbindSession, type McpBinding } from './mcp-sessions.ts';
import { checkStandardHeaders, filterToolsResult, isModernRevision, McpProtocolError, mcpPermission, parseMcpMessage, sseDataTransform, type JsonRpcMessage } from './mcp.ts';

/** Largest MCP message the hub reads to authorize (the rest of the proxy streams). */
const MCP_BODY_LIMIT = 4 * 1024 * 1024;
/** Largest JSON tools/list result the hub filters in memory. */
const TOOLS_LIST_LIMIT = 16 * 1024 * 1024;
/** Paths that name the upstream even when none is configured (they answer 503, not 404). */
const PROXIED = /^\/(api|v1|upstream)(\/|$)|^\/mcp\/?$/i;
/** The MCP endpoint (its JSON-RPC messages are authorized one by one). */
const MCP_PATH = /^\/mcp\/?$/i;

/**
 * @example
 * await app.register(proxyRoutes(hub)); // after every other route plugin
 */
export function proxyRoutes(hub: Hub) {
  const rules: readonly RouteRule[] = hub.rbac.config.routes ?? DEFAULT_ROUTES;
  const policy = headerPolicy(hub);
  const origins = new Set([new URL(hub.config.publicUrl).origin, ...hub.config.mcpAllowedOrigins]);
  const authenticate = authenticateRequest(hub, signInPage);
  // CORS on /mcp for browser-based MCP clients of the allowed origins only (src/http/cors.ts).
  const cors = mcpCors(hub.config.mcpAllowedOrigins);

  return async function proxy(app: FastifyInstance): Promise<void> {
    if (hub.config.upstreamUrl) await openUpstreamAgent();
    // Bodies are streamed, not parsed: this context keeps the raw request stream untouched.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    // The preflight is the hub's to answer (it carries no credential), never the upstream's.
    withCors(app, ['/mcp', '/mcp/'], cors);

    // Not an async handler: an async handler's promise resolved with `reply` (a thenable) has
    // Fastify's Reply.then wait for the response to end (end-of-stream listeners and closures on
    // every proxied exchange, kept across the upstream's round trip: the largest part of what the
    // hub's proxied requests promoted to the old generation, measured with V8's sampling heap
    // profiler), and one resolved with nothing has Fastify send an empty 200. A handler that
    // returns undefined leaves the answer to the route, as callback-style handlers do.
    app.all('/*', (req, reply) => {
      proxyRequest(req, reply).catch((e: unknown) => {
        hub.log.error({ detail: e instanceof Error ? e.message : String(e), request_id: req.id }, 'proxy route failed');
        if (!reply.sent && !reply.raw.headersSent) sendError(reply, e);
        else reply.raw.destroy();
      });
    });

    async function proxyRequest(req: FastifyRequest, reply: FastifyReply): Promise<void> {
      try {
        const path = req.url.split('?')[0]!;
        if (isHubPath(hub, path) || (!hub.config.upstreamUrl && !PROXIED.test(path))) {
          sendError(reply, new OAuthError('not_found', `No route for ${req.method} ${path.slice(0, 200)}.`));
          return;
        }
        if (!hub.config.upstreamUrl) {
          sendError(reply, new OAuthError('service_unavailable', 'No upstream Mimir server is configured: MIMIR_UPSTREAM_URL is not set.'));
          return;
        }
        const mcp = MCP_PATH.test(path);
        // Before any refusal: a browser client must be able to read the 401's WWW-Authenticate.
        if (mcp) applyCors(cors, req.headers.origin, reply);
        checkTarget(req.url);
        if (mcp) checkOrigin(origins, req.headers.origin);
        // What is learnt from here on of revoked credentials still reaches this request
        // (src/proxy/open-streams.ts): from when the fast path authenticated it, if it did.
        const since = handedOverAt(req.raw) ?? performance.now();
        if (await authenticate(req, reply)) return;
        const principal = await actingPrincipal(hub, req);
        authorizeRoute(hub, req, principal, rules, path);
        const identity = hub.identities.upstream(principal);
        const forwarded = forwardedToken(hub, req.headers, principal);
        const authorization = await hub.upstreamAuth.authorization(identity);
        const facts = { identity, clientIp: req.ip, proto: req.protocol, host: req.host, forwardedToken: forwarded, authorization };
        const headers = upstreamHeaders(req.headers, policy, facts);
        const target = upstreamTarget(hub.config.upstreamUrl, withoutCredentialParams(req.url));
        if (mcp) {
          await proxyMcp(hub, req, reply, principal, target, headers, path, since);
          return;
        }
        relay(hub, fastifyExchange(req, reply), { principal, target, headers, body: req.raw, since });
      } catch (e) {
        if (reply.sent || reply.raw.headersSent) return;
        if (e instanceof McpProtocolError) {
          reply.code(400).header('cache-control', 'no-store').send(e.toJSON());
          return;
        }
        // A person in a browser whose sign-in is too old or too weak for this page signs in again (RFC 9470).
        if (e instanceof OAuthError && e.error === 'insufficient_user_authentication') {
          if (!signInPage(req, reply, e)) sendError(reply, e);
          return;
        }
        sendError(reply, e);
      }
    }
  };
}

/**
 * The proxy's part of the fast path (src/http/fast-path.ts): a plain read whose credential is cached
 * and whose route the Principal may use is relayed without Fastify, with the very checks, headers
 * and relay of the route above. Plain: GET or HEAD (methods Fastify hands over without content-type
 * checks), a path the router gives this catch-all (`routed`: no other route, no hub namespace, no
 * percent-encoding, nothing {@link checkPath} refuses), not /mcp, no user-context headers, a Host
 * header. Everything else, and every refusal, stays with the route.
 *
 * And an MCP message (`POST /mcp`, no query) in a hub session whose binding is cached, from a
 * client that is no browser (no Origin), in JSON of a known length: its body is read here, and
 * a message the route would stream upstream as it is (its permission granted; not an
 * `initialize` or a `tools/list`) is relayed as the route relays it. Any other message, a
 * refusal included, goes to the route with the body read ({@link handOverBody}), so it is
 * decided and rendered in one place.
 */
export interface ProxyFastPath {
  /** Whether the fast path may take this request (decided before authentication). */
  accepts(req: IncomingMessage, path: string): boolean;
  /**
   * Relays it as `principal`, after `accept()` (which records the authentication and returns the
   * request id); false, without calling it, when the route must decide (the route is denied).
   */
  relay(req: IncomingMessage, res: ServerResponse, path: string, principal: Principal, accept: () => string): boolean;
  /** Whether the fast path may take this MCP message (decided before authentication). */
  acceptsMcp(req: IncomingMessage): boolean;
  /**
   * Takes the MCP message of `principal` (true): `accept()` records the authentication and returns
   * the request id, then the body is read and the message relayed, or left to the route with
   * `handOver(id, body)`. False, having read and recorded nothing, when the route must decide from
   * the start (a refused route, a session or upstream token not cached).
   */
  relayMcp(req: IncomingMessage, res: ServerResponse, principal: Principal, o: McpTaking): boolean;
}

/** What {@link ProxyFastPath.relayMcp} is told by the fast path. */
export interface McpTaking {
  /** When `principal` was authenticated (performance.now()). */
  since: number;
  /** Records the authentication; returns the request id. */
  accept: () => string;
  /** Leaves the message to the route, its body read. */
  handOver: (id: string, body: Buffer) => void;
}

/** Paths the fast path takes: RFC 3986 pchars without percent-encoding (the router decodes those) or `;`. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,=:@/]*$/;
/** The one MCP target the fast path takes (clients post to the endpoint as configured, without a query). */
const MCP_TARGET = '/mcp';
/** A Content-Length the MCP fast path reads: 1 to 7 digits, no leading zero (and at most MCP_BODY_LIMIT). */
const MCP_LENGTH = /^[1-9][0-9]{0,6}$/;
/** The Content-Type the MCP fast path reads: JSON, in UTF-8 when a charset is named (anything else is the route's to judge). */
const MCP_JSON = /^application\/json(?:; ?charset=utf-8)?$/i;

/**
 * `routed(method, path)`: whether Fastify's router would give this request to the catch-all route
 * (no route of the hub's own matches it).
 */
export function proxyFastPath(hub: Hub, routed: (method: string, path: string) => boolean): ProxyFastPath | undefined {
  const upstream = hub.config.upstreamUrl;
  if (!upstream) return undefined;
  const rules: readonly RouteRule[] = hub.rbac.config.routes ?? DEFAULT_ROUTES;
  const policy = headerPolicy(hub);
  const names = hub.config.userContext;
  const userContext = [names.idHeader, names.emailHeader, names.rolesHeader].map((h) => h.toLowerCase());
  const cors = mcpCors(hub.config.mcpAllowedOrigins);
  const noUserContext = (h: IncomingHttpHeaders) => h[userContext[0]!] === undefined && h[userContext[1]!] === undefined && h[userContext[2]!] === undefined;

  /** What goes upstream for `principal`, or undefined when the route must decide (denied, or a Mimir token to mint first: I/O). */
  const forward = (req: IncomingMessage, path: string, principal: Principal) => {
    if (!decideRoute(hub, rules, req.method!, path, principal).allowed) return undefined;
    const identity = hub.identities.upstream(principal);
    const forwarded = forwardedToken(hub, req.headers, principal);
    const authorization = hub.upstreamAuth.peek(identity);
    if (authorization === undefined) return undefined;
    const facts = {
      identity, clientIp: req.socket.remoteAddress ?? '', proto: (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
      host: req.headers.host!, forwardedToken: forwarded, authorization,
    };
    return { target: upstreamTarget(upstream, withoutCredentialParams(req.url!)), headers: upstreamHeaders(req.headers, policy, facts) };
  };

  /** The route's exchange, at the node:http level; `extra`: headers the route sets before relaying. */
  const exchange = (req: IncomingMessage, res: ServerResponse, id: string, extra?: Record<string, string>): Exchange => ({
    req, res, id,
    headers: () => (extra ? { ...baseHeaders(id), ...extra } : baseHeaders(id)),
    refuse: (e) => writeError(res, extra ? { ...baseHeaders(id), ...extra } : baseHeaders(id), e, hub.log),
    takeOver: () => undefined,
  });

  return {
    accepts(req, path) {
      const h = req.headers;
      const method = req.method!;
      return (method === 'GET' || method === 'HEAD') && PLAIN_PATH.test(path) && !UNSAFE_PATH.test(path) && !req.url!.includes('#') && !isHubPath(hub, path)
        && !MCP_PATH.test(path) && h.host !== undefined && noUserContext(h) && routed(method, path);
    },
    relay(req, res, path, principal, accept) {
      const out = forward(req, path, principal);
      if (!out) return false;
      const id = accept();
      // Authenticated in this same turn: nothing revoked since can have been heard yet.
      relay(hub, exchange(req, res, id), { principal, ...out, body: req, since: performance.now() });
      return true;
    },
    acceptsMcp(req) {
      const h = req.headers;
      const length = h['content-length'];
      return req.method === 'POST' && req.url === MCP_TARGET && h.origin === undefined && h.host !== undefined
        && typeof h['mcp-session-id'] === 'string' && h['transfer-encoding'] === undefined && h['content-encoding'] === undefined
        && length !== undefined && MCP_LENGTH.test(length) && Number(length) <= MCP_BODY_LIMIT && MCP_JSON.test(h['content-type'] ?? '')
        && noUserContext(h) && routed('POST', MCP_TARGET);
    },
    relayMcp(req, res, principal, o) {
      const out = forward(req, MCP_TARGET, principal);
      if (!out) return false;
      const sessionId = req.headers['mcp-session-id'] as string;
      const binding = peekSession(hub.caches.mcpSessions, sessionId, sessionOwner(hub, principal), hub.now());
      if (!binding || hub.revocations.isRevoked({ sid: binding.sid, fid: binding.fid })) return false;
      // Taken: recorded now, as the route records an authentication before it reads the body; the
      // route's answers from here on need the body, read once, here.
      const id = o.accept();
      readBody(req, MCP_BODY_LIMIT).then((raw) => {
        // Revoked while the body came: the route refuses it (it checks from the same `since`).
        if (hub.streams.revokedSince(principal, o.since)) return o.handOver(id, raw);
        let message: JsonRpcMessage;
        try {
          message = parseMcpMessage(raw);
          checkStandardHeaders(req.headers, message);
        } catch {
          return o.handOver(id, raw); // the route renders the protocol error
        }
        if (!streamedAsIs(message) || !hub.authorizer.decide(principal, { permission: mcpPermission(message), path: MCP_TARGET }).allowed) return o.handOver(id, raw);
        // As the route: CORS's Vary (there is no Origin to allow), the upstream's session id, the answer streamed with the hub's.
        const extra = cors.origins === '*' ? undefined : { vary: 'Origin' };
        relay(hub, exchange(req, res, id, extra), {
          principal, target: out.target, body: raw, headers: withHeader(out.headers, 'mcp-session-id', binding.upstream), rewriteHeaders: sessionHeaderOf(sessionId), since: o.since,
        });
      }, () => {
        // The caller went away (or its connection failed) mid-body: nobody is left to answer.
        res.destroy();
      }).catch((e: unknown) => {
        // A fault of the hub's own: nothing half-written goes out.
        hub.log.error({ detail: e instanceof Error ? e.message : String(e) }, 'MCP fast path failed');
        res.destroy();
      });
      return true;
    },
  };
}

function headerPolicy(hub: Hub): HeaderPolicy {
  // The session and sign-in cookies under every name they have had (with and without the
  // __Host-/__Secure- prefixes: a browser keeps sending an older one until it expires).
  const { name, loginName } = hub.config.session.cookie;
  const stem = name.replace(/^__(Host|Secure)-/, '');
  // And Mimir's own credential cookie: it must only ever hold what the hub sends (nothing).
  const strippedCookies = new Set([name, loginName, stem, `__Host-${stem}`, `${stem}_login`, `__Secure-${stem}_login`, MIMIR_CREDENTIAL_COOKIE]);
  return { strippedCookies, userContext: hub.config.userContext, forwardingHeader: hub.config.forwarding.header };
}

/**
 * A person in a browser opening one of Mimir's pages without a credential (or with a session that
 * ended) is sent to sign in and brought back; API clients (anything not asking for HTML first, and
 * any request with a credential header or to /mcp) keep getting 401 JSON with WWW-Authenticate.
 */
const signInPage: RefusalPage = (req, reply, e) => {
  const browser = (req.method === 'GET' || req.method === 'HEAD') && /^\s*text\/html/i.test(String(req.headers.accept ?? ''))
    && req.headers.authorization === undefined && req.headers['x-api-key'] === undefined && !MCP_PATH.test(req.url.split('?')[0]!);
  if (!browser || !(e instanceof OAuthError) || e.status !== 401) return undefined;
  // RFC 9470 step-up: the IdP is asked to authenticate the user again, as recently / strongly as the route needs.
  const again = e.error === 'insufficient_user_authentication'
    ? Object.entries({ prompt: 'login', max_age: e.extra?.max_age, acr_values: e.extra?.acr_values })
      .filter((kv): kv is [string, string] => typeof kv[1] === 'string').map(([k, v]) => `&${k}=${encodeURIComponent(v)}`).join('')
    : '';
  return reply.code(302).header('cache-control', 'no-store').redirect(`/auth/login?returnTo=${encodeURIComponent(safeReturnTo(req.url))}${again}`, 302);
};

/** The cookie Mimir reads a credential from (its own OAuth sign-in sets it). */
const MIMIR_CREDENTIAL_COOKIE = 'mimir_oauth_token';

/** The hub's own namespaces never reach the upstream, whatever the method. */
function isHubPath(hub: Hub, path: string): boolean {
  const p = path.toLowerCase();
  return /^\/(auth|\.well-known)(\/|$)/.test(p) || p === '/health' || p === '/ready' || p === ROBOTS_PATH || p === FAVICON_PATH
    || p === hub.config.metrics.endpoint.toLowerCase();
}

/**
 * Authorization is decided on the path the upstream will route, so the target must leave it no
 * other reading. Refused (400, never forwarded): anything but an origin-form target (RFC 9112
 * §3.2.1: `/path?query`); a fragment anywhere (clients never send one; Express routes the path
 * before it, the hub's own router too); in the path, a dot segment, an empty segment (`//`), a
 * backslash, an encoded NUL, or a percent-encoded `/`, `\` or `.` (an upstream or a proxy between may
 * decode and resolve them). What remains is routed by Express as the hub decides it:
 * case-insensitively, one trailing slash ignored (src/rbac/routes.ts matches the same way), and
 * forwarded exactly as received. The query is not judged: no router reads it, and legitimate
 * queries carry encoded slashes (`?path=%2Fhome`).
 */
export function checkTarget(url: string): void {
  if (url.charCodeAt(0) !== 0x2f /* / */ || url.includes('#')) {
    throw new OAuthError('invalid_request', 'The request target must be a path (origin form) without a fragment.');
  }
  const q = url.indexOf('?');
  if (UNSAFE_PATH.test(q === -1 ? url : url.slice(0, q))) {
    throw new OAuthError('invalid_request', 'The request path contains dot segments, empty segments, backslashes or encoded separators.');
  }
}
const UNSAFE_PATH = /(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\|\/\/|%00/i;


/** MCP Streamable HTTP "Security Warning": validate Origin to prevent DNS rebinding (403). */
function checkOrigin(allowed: ReadonlySet<string>, origin: string | undefined): void {
  if (origin === undefined) return;
  let o: string | undefined;
  try { o = new URL(origin).origin; } catch { /* refused below */ }
  if (!o || !allowed.has(o)) throw new OAuthError('access_denied', 'The Origin of this request is not allowed on /mcp.', { status: 403 });
}

function authorizeRoute(hub: Hub, req: FastifyRequest, principal: Principal, rules: readonly RouteRule[], path: string): void {
  const decision = decideRoute(hub, rules, req.method, path, principal);
  if (!decision.allowed) deny(hub, req, principal, decision);
}

/**
 * The one rule's answer for this route (src/authz): its permission and step-up (RFC 9470
 * `maxAge`, `acr`) from the route table, and the credential's resource.
 */
function decideRoute(hub: Hub, rules: readonly RouteRule[], method: string, path: string, principal: Principal): Decision {
  const { rule, permission } = routePermission(rules, method, path);
  // No rule matched a custom table: fail closed.
  return hub.authorizer.decide(principal, { permission: permission === undefined ? 'upstream:access' : permission, path, authentication: ruleAuthentication(rule) });
}

/** The refusal of a decision (RFC 6750 §3.1), plus an audit event naming the method and path. */
function deny(hub: Hub, req: FastifyRequest, principal: Principal, decision: Exclude<Decision, { allowed: true }>, extra: Record<string, unknown> = {}): never {
  hub.audit.record({
    type: 'access_denied', outcome: 'failure', reason: decision.reason, ...(decision.reason === 'insufficient_scope' ? { permission: decision.permission } : {}),
    method: req.method, path: req.url.split('?')[0]!.slice(0, 200), principal, ip: req.ip, request_id: req.id, ...extra,
  });
  throw refusal(decision);
}

/**
 * The credential was revoked after it was checked, while the request was still arriving (an MCP
 * body): refused as a revoked credential is (RFC 6750 §3.1 invalid_token), and audited.
 */
function revokedMeanwhile(hub: Hub, req: Pick<FastifyRequest, 'method' | 'url' | 'ip' | 'id'>, principal: Principal): never {
  hub.audit.record({ type: 'authentication_failed', outcome: 'failure', reason: 'credential_revoked', method: req.method, path: req.url.split('?')[0]!.slice(0, 200), principal, ip: req.ip, request_id: req.id });
  const description = 'The credential was revoked while the request was under way.';
  throw new OAuthError('invalid_token', description, { status: 401, challenge: { realm: 'mimir', error: 'invalid_token', error_description: description } });
}

/** MIMIR_ENABLE_TOKEN_FORWARDING: only an IdP token whose audience is Mimir's goes upstream. */
function forwardedToken(hub: Hub, headers: IncomingHttpHeaders, principal: Principal): string | undefined {
  if (!hub.config.forwarding.enabled || principal.auth_method !== 'oauth' || principal.act) return undefined;
  const m = /^bearer\s+(\S+)$/i.exec(headers.authorization ?? '');
  if (!m) return undefined;
  const expected = hub.config.provider.audience ?? hub.config.jwt.audience;
  try {
    const aud = decodeJwt(m[1]!).aud;
    return (Array.isArray(aud) ? aud : [aud]).includes(expected) ? m[1] : undefined;
  } catch {
    return undefined; // opaque tokens carry no audience we can check
  }
}

async function proxyMcp(hub: Hub, req: FastifyRequest, reply: FastifyReply, principal: Principal, target: UpstreamTarget, headers: readonly string[], path: string, since: number): Promise<void> {
  const version = first(req.headers['mcp-protocol-version']);
  const sessionId = first(req.headers['mcp-session-id']);
  // 2026-07-28 removed the GET stream: a stateless client asking for one gets 405.
  if (req.method === 'GET' && isModernRevision(version)) {
    reply.code(405).header('allow', 'POST').header('cache-control', 'no-store')
      .send(new McpProtocolError(-32600, 'This MCP revision has no GET stream; send requests as POST.').toJSON());
    return;
  }
  const owner = sessionOwner(hub, principal);
  // MCP transport §Session Management: a session the caller did not open through the hub (or that
  // ended with the sign-in or refresh family it was opened with) is 404, and the client
  // re-initializes; the upstream is not contacted.
  const binding = sessionId === undefined ? undefined : await resolveSession(hub.store, sessionId, owner, hub.now(), hub.caches.mcpSessions);
  if (sessionId !== undefined && (!binding || hub.revocations.isRevoked({ sid: binding.sid, fid: binding.fid }))) {
    if (binding) await unbindSession(hub.store, sessionId, binding, hub.caches.mcpSessions);
    reply.code(404).header('cache-control', 'no-store').send(new McpProtocolError(-32001, 'Session not found.').toJSON());
    return;
  }
  if (req.method === 'DELETE') {
    await endSession(hub, reply, sessionId, binding, { principal, target, headers });
    return;
  }
  let message: JsonRpcMessage | undefined;
  let body: Buffer | Readable | undefined = req.raw;
  if (req.method === 'POST') {
    checkJsonBody(req.headers['content-type'], req.headers['content-encoding']);
    // Read already when the fast path looked at this message and left it to the route.
    const raw = takeBody(req.raw) ?? await readBody(req.raw, MCP_BODY_LIMIT).catch((e: unknown) => {
      // The rest of the body is never read: the connection ends with the refusal.
      reply.header('connection', 'close');
      throw e;
    });
    // The credential checked before the body came may have been revoked while it came.
    if (hub.streams.revokedSince(principal, since)) revokedMeanwhile(hub, req, principal);
    message = parseMcpMessage(raw);
    checkStandardHeaders(req.headers, message);
    const decision = hub.authorizer.decide(principal, { permission: mcpPermission(message), path });
    if (!decision.allowed) deny(hub, req, principal, decision, { mcp_method: message.method });
    body = raw;
  }
  const listing = message !== undefined && isListing(message) ? message : undefined;
  // Upstream, the session is the upstream's own id.
  const upstreamHeaders = binding ? withHeader(headers, 'mcp-session-id', binding.upstream) : headers;
  if (message === undefined || streamedAsIs(message)) {
    // Nothing to bind or filter: the answer is streamed as it comes, its session header rewritten.
    relay(hub, fastifyExchange(req, reply), { principal, target, body, headers: upstreamHeaders, rewriteHeaders: sessionHeaderOf(sessionId), since });
    return;
  }
  relay(hub, fastifyExchange(req, reply), {
    principal, target, body, since,
    headers: upstreamHeaders,
    onResponse: async (res, body) => {
      // The client only ever sees the hub's session id: a new one for an initialize, else its own.
      const issued = first(res.headers['mcp-session-id']);
      let session = sessionId;
      if (message?.method === 'initialize' && issued && res.statusCode < 300) {
        session = await bindSession(hub.store, issued, owner, { sid: principal.sid, fid: principal.fid });
      }
      const sessionHeader = sessionHeaderOf(session)(res);
      if (!listing || res.statusCode !== 200) return { headers: sessionHeader };
      const allowed = (tool: string) => hub.authorizer.decide(principal, { permission: `mcp:tool:${tool}`, path }).allowed;
      const filter = (json: unknown) => filterToolsResult(json, allowed);
      const type = String(res.headers['content-type'] ?? '').toLowerCase();
      if (type.startsWith('text/event-stream')) {
        return { headers: sessionHeader, stream: sseDataTransform((data) => { try { return JSON.stringify(filter(JSON.parse(data))); } catch { return data; } }) };
      }
      // Any other answer is read and filtered whatever it calls itself: a tool list must not
      // pass under an unexpected content type. JSON that cannot be read is not relayed.
      const read = readBody(body, TOOLS_LIST_LIMIT, () => new OAuthError('bad_gateway', 'The upstream\'s tools/list answer is too large to filter.'));
      const text = (await read.catch((e: unknown) => { body.destroy(); throw e; })).toString('utf8');
      let json: unknown;
      try { json = JSON.parse(text); } catch {
        if (type.includes('json')) throw new OAuthError('bad_gateway', 'The upstream\'s tools/list answer is not valid JSON.');
        return { headers: sessionHeader, buffer: Buffer.from(text) };
      }
      return { headers: sessionHeader, buffer: Buffer.from(JSON.stringify(filter(json))) };
    },
  });
}

/** A `tools/list` request: its answer is filtered to the tools the caller may use. */
function isListing(message: JsonRpcMessage): boolean {
  return message.method === 'tools/list' && message.id !== undefined;
}

/** Whether the upstream's answer to `message` goes back as it comes (not an `initialize` to bind, nor a listing to filter). */
function streamedAsIs(message: JsonRpcMessage): boolean {
  return message.method !== 'initialize' && !isListing(message);
}

/**
 * `DELETE /mcp`: the caller's hub session ends, here. The upstream's session ends too only when no
 * other hub session maps to it (Mimir's one session is everybody's; Mimir does not even route
 * DELETE): that request goes in the background, its answer read and dropped.
 */
async function endSession(hub: Hub, reply: FastifyReply, sessionId: string | undefined, binding: McpBinding | null | undefined, upstream: { principal: Principal; target: UpstreamTarget; headers: readonly string[] }): Promise<void> {
  if (sessionId === undefined || !binding) {
    reply.code(400).header('cache-control', 'no-store').send(new McpProtocolError(-32600, 'DELETE needs the Mcp-Session-Id of the session to end.').toJSON());
    return;
  }
  const { last } = await unbindSession(hub.store, sessionId, binding, hub.caches.mcpSessions);
  if (last) {
    callUpstream({
      target: upstream.target, method: 'DELETE', headers: withHeader(upstream.headers, 'mcp-session-id', binding.upstream), body: undefined,
      onResponse: () => discard(() => undefined),
      onError: (e) => hub.log.info({ detail: e.detail }, 'ending an MCP session upstream failed'),
    });
  }
  reply.code(200).header('cache-control', 'no-store').send();
}

/**
 * The client only ever sees the hub's session id: an answer naming a session (the upstream's id)
 * names `session` instead, and none when the caller has no hub session.
 */
function sessionHeaderOf(session: string | undefined): (answer: UpstreamAnswer) => Record<string, string | undefined> {
  return (answer) => ({ 'mcp-session-id': first(answer.headers['mcp-session-id']) === undefined ? undefined : session });
}

/** `list` (a flat `[name, value, …]` header list) with `name` set to `value` alone. */
function withHeader(list: readonly string[], name: string, value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i] !== name) out.push(list[i]!, list[i + 1]!);
  out.push(name, value);
  return out;
}

/**
 * The MCP body the hub authorizes is JSON in UTF-8 (RFC 8259 §8.1), as sent. A body declared in
 * another charset would be read one way here and another way by the upstream's parser (UTF-7
 * turns `+ACI-` into a quote), and a content-coded one (gzip, deflate, br: RFC 9110 §8.4) is
 * inflated there into bytes the hub never read: refused, 415, never forwarded.
 */
function checkJsonBody(contentType: string | undefined, contentEncoding: string | undefined): void {
  if (contentEncoding !== undefined && contentEncoding.trim().toLowerCase() !== 'identity') {
    throw new OAuthError('unsupported_media_type', 'MCP messages are sent without a Content-Encoding.');
  }
  const m = /^\s*application\/json\s*(;.*)?$/i.exec(contentType ?? '');
  const charset = m?.[1] ? /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(m[1])?.[1] : undefined;
  if (!m || (charset !== undefined && charset.toLowerCase() !== 'utf-8' && charset.toLowerCase() !== 'utf8')) {
    throw new OAuthError('unsupported_media_type', 'MCP messages are application/json in UTF-8.');
  }
}

interface Relay {
  /** Whose exchange it is: an event stream it opens is closed when that credential stops (src/proxy/open-streams.ts). */
  principal: Principal;
  target: UpstreamTarget;
  headers: readonly string[];
  body: Buffer | Readable | undefined;
  /** Side effects on the response and an optional rewrite of its body (read from `body`). */
  onResponse?: (answer: UpstreamAnswer, body: Readable) => Promise<Rewrite | undefined>;
  /** Headers set (or, as undefined, removed) in the answer, the body streamed as it is; without `onResponse`. */
  rewriteHeaders?: (answer: UpstreamAnswer) => Record<string, string | undefined>;
  /** When the credential was checked (performance.now()): an event stream it opens is cut off if it was revoked since. */
  since?: number;
}

/** What the relay changes in an answer: headers set (or, as undefined, removed), and its body rewritten as a stream or whole. */
interface Rewrite {
  headers?: Record<string, string | undefined>;
  stream?: Transform;
  buffer?: Buffer;
}

/**
 * One proxied request at the node:http level, whoever received it: the Fastify route or the
 * fast path (src/http/fast-path.ts). Both relay through {@link relay}.
 */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly id: string;
  /** The headers every hub response carries (request id, security headers): a new object each call. */
  headers(): Record<string, unknown>;
  /** Renders a refusal; called only before anything was written. */
  refuse(e: unknown): void;
  /** Called once, before the relay writes to `res` itself. */
  takeOver(): void;
}

function fastifyExchange(req: FastifyRequest, reply: FastifyReply): Exchange {
  return {
    req: req.raw, res: reply.raw, id: req.id,
    headers: () => reply.getHeaders() as Record<string, unknown>,
    refuse: (e) => { sendError(reply, e); },
    takeOver: () => { reply.hijack(); },
  };
}

/**
 * Streams the exchange both ways. A caller that goes away aborts the upstream exchange; an
 * upstream that cannot be reached is 502 and nothing else. Callback-style and never throws:
 * every outcome is written to `x` (the answer, a refusal, or a response cut off).
 */
function relay(hub: Hub, x: Exchange, r: Relay): void {
  const method = x.req.method!;
  const res = x.res;
  // A caller gone while the route awaited (a credential lookup, an MCP body): its 'close' has
  // already fired, so nothing would abort an upstream request made now. (The request's socket,
  // not the response's: a pipelined request's response has none until the one before it is done.)
  const socket = x.req.socket as Socket | null;
  if (res.destroyed || !socket || socket.destroyed) {
    x.takeOver();
    return;
  }
  let aborted = false;
  const upstream = callUpstream({
    target: r.target, method, headers: r.headers, body: requestBody(x.req, r.body),
    onResponse: (answer) => {
      if (!r.onResponse) {
        const rewrite = r.rewriteHeaders ? { headers: r.rewriteHeaders(answer) } : undefined;
        return respond(hub, x, r, answer, rewrite, abort) ? res : discard(abort);
      }
      // The body is read from here while the hook decides (MCP: bind a session, filter a tool
      // list). Its errors are looked at once the hook is done; until then nobody else listens.
      const body = new PassThrough();
      body.on('error', () => undefined);
      r.onResponse(answer, body).then(
        (rewrite) => {
          if (aborted) return;
          // The upstream failed mid-body while the hook ran: nothing has been written yet.
          if (body.errored) return x.refuse(upstreamFailed(body.errored));
          if (!respond(hub, x, r, answer, rewrite, abort)) return body.destroy();
          if (rewrite?.stream) pipeThrough(body, rewrite.stream, res, abort);
          else if (!rewrite?.buffer) pipe(body, res, abort);
        },
        (e: unknown) => {
          const gone = aborted;
          const failed = body.errored; // before abort(), which destroys the body with its own error
          abort(); // the hook refused: the rest of the upstream's answer is not wanted
          body.destroy();
          if (gone) return;
          // A body that failed while the hook read it (a tools/list cut off) is the upstream's failure.
          x.refuse(failed ? upstreamFailed(failed) : e);
        },
      );
      return body;
    },
    onError: (e) => {
      if (aborted) return;
      hub.log.warn({ detail: e.detail, request_id: x.id }, 'upstream unreachable');
      x.refuse(e);
    },
  });
  function abort(): void {
    aborted = true;
    upstream.abort();
  }
  res.once('close', () => { if (!res.writableFinished) abort(); });
}

/** The upstream's answer broke off after its headers (its body failed): a 502 while nothing was written. */
function upstreamFailed(cause: Error): OAuthError {
  return new OAuthError('bad_gateway', 'The upstream Mimir server failed while answering.', { detail: String(cause) });
}

/**
 * What goes upstream as the body: none for GET and HEAD (a body there has no defined meaning, and
 * its Content-Length must not go on without it), none when the caller sent no framing (HTTP/1.1:
 * an empty body), else the body read (MCP) or the inbound stream, through {@link upload}.
 */
function requestBody(req: IncomingMessage, body: Relay['body']): Relay['body'] {
  const method = req.method;
  if (method === 'GET' || method === 'HEAD') return undefined;
  if (Buffer.isBuffer(body)) return body;
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return undefined;
  return body === req ? upload(req) : body;
}

/**
 * The caller's body as undici reads it: a stream of its own. An exchange that ends before the
 * upload does (an upstream that answers early, or fails) has undici destroy the stream it was
 * given; were that the caller's request, node:http would stop reading the connection and the
 * caller's next request on it would never be answered. Instead the rest of the upload is read
 * and dropped, as node:http does with a body nobody reads.
 */
function upload(req: IncomingMessage): Readable {
  const out = new PassThrough();
  req.pipe(out);
  req.once('error', (e) => out.destroy(e));
  req.once('close', () => { if (!req.complete) out.destroy(new Error('the caller went away')); });
  out.once('close', () => {
    if (req.complete || req.destroyed) return;
    req.unpipe(out);
    req.resume();
  });
  return out;
}

/**
 * Writes the status and headers of the upstream's answer (or of its rewrite; a buffered rewrite
 * is written whole). False when they could not be written (a header node:http will not write):
 * the caller got a 502 instead, or, once under way, a response cut off, and the upstream exchange
 * is dropped.
 */
function respond(hub: Hub, x: Exchange, r: Pick<Relay, 'principal' | 'since'>, answer: UpstreamAnswer, rewrite: Rewrite | undefined, abort: () => void): boolean {
  const res = x.res;
  try {
    const headers = Object.assign(x.headers(), downstreamHeaders(answer.headers, { dropLength: rewrite?.buffer !== undefined || rewrite?.stream !== undefined }));
    for (const [name, value] of Object.entries(rewrite?.headers ?? {})) {
      if (value === undefined) delete headers[name];
      else headers[name] = value;
    }
    x.takeOver();
    if (rewrite?.buffer) {
      headers['content-length'] = rewrite.buffer.length;
      res.writeHead(answer.statusCode, headers as never);
      res.end(rewrite.buffer);
      return true;
    }
    res.writeHead(answer.statusCode, headers as never);
    // Event streams and other open-ended bodies must reach the caller as they happen: send the
    // headers now. A body of known length goes out with its headers in one write.
    const stream = String(answer.headers['content-type'] ?? '').toLowerCase().startsWith('text/event-stream');
    if (answer.headers['content-length'] === undefined || stream) res.flushHeaders();
    if (stream) hub.streams.add(r.principal, res, r.since);
    return true;
  } catch (e) {
    abort();
    x.takeOver();
    if (res.headersSent) res.destroy();
    else writeError(res, x.headers(), new OAuthError('bad_gateway', 'The upstream Mimir server sent an answer the hub cannot relay.', { detail: String(e) }), hub.log);
    return false;
  }
}

/** Where an answer nobody relays goes: nowhere (its exchange is being dropped, which may destroy it with an error). */
function discard(abort: () => void): Writable {
  abort();
  const nowhere = new Writable({ write: (_chunk, _encoding, done) => done() });
  nowhere.on('error', () => undefined);
  return nowhere;
}

/**
 * `source.pipe(dest)` with pipeline's error handling: an upstream that fails mid-body cuts the
 * response off, a caller that goes away aborts the upstream (the relay's 'close' listener).
 * Not stream.pipeline for the common case: it creates and aborts an AbortController per call,
 * and that AbortError's stack trace was the dearest part of a proxied request.
 */
function pipe(source: Readable, dest: ServerResponse, abortUpstream: () => void): void {
  const fail = () => {
    abortUpstream();
    dest.destroy();
  };
  source.once('error', fail);
  // Closed before its end: the upstream went away mid-body (pipeline's premature close).
  source.once('close', () => { if (!source.readableEnded) fail(); });
  source.pipe(dest);
}

/**
 * {@link pipe} through a transform (a tools/list event stream being filtered): the upstream failing
 * or closing mid-body fails the transform, and a failed transform cuts the response off. Not
 * stream.pipeline: it puts seven 'close' listeners on the response, past Node's limit of ten with
 * those already there, and each filtered listing printed a MaxListenersExceededWarning (found by
 * the MCP conformance run, test/conformance).
 */
function pipeThrough(source: Readable, transform: Transform, dest: ServerResponse, abortUpstream: () => void): void {
  source.once('error', (e) => transform.destroy(e));
  source.once('close', () => { if (!source.readableEnded) transform.destroy(new Error('the upstream went away mid-body')); });
  pipe(transform, dest, abortUpstream);
  source.pipe(transform);
}

/**
 * `tooLarge`: the refusal past `limit` (by default the caller's body is too large: 413). Past the
 * limit the stream is left paused, unread: its owner ends it (a caller's request with its
 * connection, an upstream's answer destroyed). Listeners, not `for await`: the async iterator and
 * its end-of-stream watcher were a tenth of what an MCP message left for the full collections to
 * sweep (bench/README.md, "From 30 to 50").
 */
function readBody(stream: Readable, limit: number, tooLarge = () => new OAuthError('payload_too_large', 'The request body is too large.')): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: Error | undefined) => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', settle);
      stream.off('close', onClose);
      if (error) reject(error);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      stream.pause();
      settle(tooLarge());
    };
    const onEnd = () => settle(undefined);
    const onClose = () => settle(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    // Read already (nothing more will come), or gone before it ended.
    if (stream.readableEnded) return resolve(Buffer.alloc(0));
    if (stream.destroyed) return onClose();
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', settle);
    stream.once('close', onClose);
  });
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Who owns an MCP session: the principal's upstream id, its client, and every actor in its chain. */
function sessionOwner(hub: Hub, p: Principal): string {
  const chain: string[] = [];
  for (let a = p.act; a; a = a.act) chain.push(a.sub);
  return JSON.stringify([hub.identities.idOf(p), p.client_id ?? null, chain]);
}
