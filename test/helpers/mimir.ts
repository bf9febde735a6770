/**
 * A Mimir-faithful upstream for the tests: a test double of the real Mimir (orneryd/Mimir, Express 5),
 * built from the facts in test/fixtures/mimir-http-surface.json, not from Mimir's code.
 *
 * - Routed as Mimir is: the same routers mounted in `server.mount_order`, Express defaults
 *   (case-insensitive paths, trailing slash ignored), every one of the 70 routes of the facts file,
 *   the SPA catch-all for GET paths outside api|v1|mcp|health|models|auth, Express's 404 elsewhere.
 *   A route answers JSON naming itself (`route: "<METHOD> <path>"`), the identity it saw and, for
 *   writes, the body.
 * - Streams as Mimir does: `/api/indexing-progress` sends heartbeats only and never ends,
 *   `/api/execution-stream/:id` sends what the test releases, `/v1/chat/completions` streams
 *   `data:` chunks up to `data: [DONE]`, `GET /mcp` is the shared session's SSE stream.
 * - MCP with ONE SDK 1.x Server and ONE transport for the whole process, session id
 *   `shared-global-session` for everybody (the facts' `mcp.session_behaviour`).
 * - Credentials as Mimir reads them when `security` is on (MIMIR_ENABLE_SECURITY): presence on any
 *   channel, token from Bearer, X-API-Key, cookie, then query; HS256 only; the non-Bearer bypass.
 *   With `rbac` (MIMIR_ENABLE_RBAC), Mimir's own permission checks on the routes that have them.
 *
 * Every request is recorded (`received`) with the route that handled it and whom Mimir saw.
 *
 * @example
 *   const mimir = await startMimir({ security: { jwtSecret: 's' } });
 *   const token = await signMimirJwt('s', { sub: 'alice', roles: ['developer'] });
 *   await fetch(`${mimir.url}/api/nodes/n1?access_token=${token}`); // Mimir honours it
 *   mimir.find('/api/nodes')[0]?.identity.channel; // 'query:access_token'
 *   await mimir.close();
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------------------------
// The facts
// ---------------------------------------------------------------------------------------------

export interface MimirRouteFact {
  method: string;
  path: string;
  purpose: string;
  streaming: boolean | string;
  permission: string | null;
  permission_basis: string;
  source: string;
  note?: string;
}

export interface MimirFacts {
  route_count: number;
  routes: MimirRouteFact[];
  streaming_routes: string[];
  mcp: { session_id: string; server_info: { name: string; version: string }; tools: string[] };
  credentials: { no_credential: string; bypass: string };
  rbac: { own_checks: string; denial: string };
  [key: string]: unknown;
}

export const MIMIR_FACTS: MimirFacts = JSON.parse(
  readFileSync(new URL('../fixtures/mimir-http-surface.json', import.meta.url), 'utf8'),
) as MimirFacts;

/** The facts file's pseudo-route for the static frontend and the SPA shell. */
export const SPA_ROUTE = 'GET /<any path not starting api|v1|mcp|health|models|auth>';
export const MIMIR_SESSION_ID = 'shared-global-session';
export const MIMIR_TOOLS: readonly string[] = MIMIR_FACTS.mcp.tools;
/** Mimir's GET /health `version` (src/http-server.ts; the MCP serverInfo says 4.0.0). */
const HEALTH_VERSION = '4.1.0';
/** The protocol version Mimir writes in its cached re-initialize answer and its auto-initialize. */
const CACHED_PROTOCOL_VERSION = '2024-11-05';
const DEFAULT_HEARTBEAT_MS = 30_000;

const factByRoute = new Map(MIMIR_FACTS.routes.map((r) => [`${r.method} ${r.path}`, r]));

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** Mimir's rbac.json (`MIMIR_RBAC_CONFIG`). */
export interface MimirRbacConfig {
  version?: string;
  claimPath?: string;
  defaultRole?: string;
  roleMappings: Record<string, { description?: string; permissions: string[] }>;
}

export interface StartMimirOptions {
  /** MIMIR_ENABLE_SECURITY=true with this MIMIR_JWT_SECRET. Default: security off. */
  security?: { jwtSecret: string };
  /** MIMIR_ENABLE_RBAC=true with this configuration. */
  rbac?: MimirRbacConfig;
  /** Interval of `: heartbeat` on /api/indexing-progress (Mimir: 30 s). */
  heartbeatMs?: number;
}

/** Mimir's `req.user` as apiKeyAuth sets it from a verified HS256 token. Values are the claims as sent. */
export interface MimirUser {
  id: unknown;
  email: unknown;
  roles: unknown;
}

/** Where Mimir's apiKeyAuth took the token from (the facts' `token_extraction_order`). */
export type CredentialChannel = 'authorization' | 'x-api-key' | 'cookie' | 'query:access_token' | 'query:api_key';

/**
 * What Mimir's credential check did with a request:
 * - `off`: security is off; Mimir checks nothing (identity is only what the X-User-* headers say);
 * - `not-checked`: security on, but Mimir never checks this path (GET /mcp, /v1, /models, /health, /auth, /api/health, frontend);
 * - `verified`: a token verified; `user` is set;
 * - `no-credential`: no credential on any channel: 401;
 * - `invalid-token`: a token that is not a valid HS256 Mimir JWT: 401;
 * - `bypass`: a credential passed the presence check but no token was extracted (e.g. `Authorization: Basic`),
 *   so the request was served unauthenticated.
 */
export type CredentialCheck = 'off' | 'not-checked' | 'verified' | 'no-credential' | 'invalid-token' | 'bypass';

export interface MimirIdentity {
  /** The identity headers as received (the hub's channel; Mimir's own code never reads them). */
  headers: { 'x-user-id'?: string; 'x-user-email'?: string; 'x-user-roles'?: string };
  check: CredentialCheck;
  channel: CredentialChannel | null;
  user: MimirUser | null;
}

/** The JSON a route of the double answers (besides Mimir's own shapes: /health, /auth/status, /auth/config, MCP, errors). */
export interface MimirEcho {
  route: string;
  params: Record<string, string>;
  query: Record<string, unknown>;
  identity: MimirIdentity;
  /** Only for methods other than GET and HEAD; null when there was none. */
  body?: unknown;
}

/** How Mimir answered a POST /mcp (see the facts' `mcp.session_behaviour`). */
export type McpAnswer = 'transport' | 'cached-initialize' | 'auto-initialize';

export interface MimirRequest {
  method: string;
  originalUrl: string;
  /** The path without the query. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The facts route that handled it (`"<METHOD> <path>"`), or null (404, 401 at the gate, CORS preflight, body errors). */
  route: string | null;
  identity: MimirIdentity;
  /** The parsed body as it arrived (JSON or form), before Mimir rewrites anything; undefined without one. */
  body?: unknown;
  /** For POST /mcp: the JSON-RPC method as sent and who answered it. */
  mcp?: { method: string; answer: McpAnswer };
  /** The status, once the response has finished (or the connection closed). */
  status?: number;
}

/** The execution-progress streams (`GET /api/execution-stream/:executionId`), paced by the test. */
export interface ExecutionStreams {
  /** Resolves when at least one client of this execution is connected (at once if one is). */
  opened(executionId: string): Promise<void>;
  /** Resolves when no client of this execution is connected any more (at once if none is). */
  closed(executionId: string): Promise<void>;
  /** Sends one event to every client of this execution, as Mimir's sendSSEEvent; returns how many got it. */
  release(executionId: string, event?: string, data?: unknown): number;
  /** Ends every stream of this execution, as Mimir's closeSSEConnections. */
  end(executionId: string): void;
  clients(executionId: string): number;
}

/** The indexing-progress streams (`GET /api/indexing-progress`). */
export interface IndexingStreams {
  opened(): Promise<void>;
  closed(): Promise<void>;
  /** Sends `data: <progress JSON>` to every client, as Mimir does for each indexed file. */
  progress(data: unknown): number;
  clients(): number;
  /** Heartbeats sent so far, over all clients. */
  heartbeats(): number;
}

export interface MimirMcpState {
  readonly sessionId: typeof MIMIR_SESSION_ID;
  /** Whether Mimir considers the shared session initialized (later initializes get the cached answer). */
  readonly initialized: boolean;
}

export interface Mimir {
  url: string;
  options: StartMimirOptions;
  received: MimirRequest[];
  /** Requests whose path starts with this prefix. */
  find(prefix: string): MimirRequest[];
  executions: ExecutionStreams;
  indexing: IndexingStreams;
  mcp: MimirMcpState;
  /** Ends every stream and connection, then stops listening. */
  close(): Promise<void>;
}

/**
 * Signs a token as Mimir's POST /auth/token and /auth/login do: HS256 over {sub, email, roles, iat}
 * with MIMIR_JWT_SECRET as raw UTF-8 bytes; no exp unless given.
 */
export async function signMimirJwt(secret: string, claims: JWTPayload & { email?: string; roles?: unknown }, options: { expiresIn?: number | string } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt();
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}

// ---------------------------------------------------------------------------------------------
// Small helpers: cookies, credentials, RBAC
// ---------------------------------------------------------------------------------------------

/** cookie-parser's reading of the Cookie header: first occurrence wins, quotes stripped, %-decoded, `j:` JSON. */
function parseCookies(header: string | undefined): Record<string, unknown> {
  const cookies: Record<string, unknown> = {};
  if (!header) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const name = pair.slice(0, eq).trim();
    if (!name || Object.hasOwn(cookies, name)) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (value.includes('%')) {
      try { value = decodeURIComponent(value); } catch { /* cookie keeps the raw value */ }
    }
    let parsed: unknown = value;
    if (value.startsWith('j:')) {
      try { parsed = JSON.parse(value.slice(2)); } catch { /* not JSON: kept as the string */ }
    }
    cookies[name] = parsed;
  }
  return cookies;
}

function cookiesOf(req: Request): Record<string, unknown> {
  return parseCookies(req.headers.cookie);
}

function queryValue(req: Request, name: string): unknown {
  return (req.query as Record<string, unknown>)[name];
}

/** hasAuthCredentials: presence on any channel, truthiness only (an Authorization header of ANY scheme counts). */
function hasCredentials(req: Request): boolean {
  return Boolean(req.headers.authorization || req.headers['x-api-key'] || cookiesOf(req).mimir_oauth_token
    || queryValue(req, 'access_token') || queryValue(req, 'api_key'));
}

/** apiKeyAuth's token extraction, in its order; null when no channel yields a token (the bypass). */
function extractToken(req: Request): { token: unknown; channel: CredentialChannel } | null {
  const authorization = req.headers.authorization;
  // Case-sensitive "Bearer ": "bearer x" or "Basic x" yield no token here.
  if (authorization?.startsWith('Bearer ')) {
    const token = authorization.slice(7);
    if (token) return { token, channel: 'authorization' };
  }
  const apiKey = req.headers['x-api-key'];
  if (apiKey) return { token: apiKey, channel: 'x-api-key' };
  const cookie = cookiesOf(req).mimir_oauth_token;
  if (cookie) return { token: cookie, channel: 'cookie' };
  const accessToken = queryValue(req, 'access_token');
  if (accessToken) return { token: accessToken, channel: 'query:access_token' };
  const apiKeyParam = queryValue(req, 'api_key');
  if (apiKeyParam) return { token: apiKeyParam, channel: 'query:api_key' };
  return null;
}

/** jwt.verify(token, secret, {algorithms: ['HS256']}): signature, exp and nbf if present; nothing else. */
async function verifyMimirJwt(token: unknown, secret: Uint8Array): Promise<MimirUser | null> {
  if (typeof token !== 'string') return null;
  try {
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
    return { id: payload.sub, email: payload.email, roles: payload.roles || ['viewer'] };
  } catch {
    return null;
  }
}

/** claims-extractor: the claim at a dot path, as strings (numbers and booleans stringified, objects by name/value/id). */
function claimValues(user: MimirUser, claimPath: string): string[] {
  let value: unknown = user;
  for (const part of claimPath.split('.')) {
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
    if (value === undefined || value === null) return [];
  }
  const one = (item: unknown): string | undefined => {
    if (typeof item === 'string') return item;
    if (typeof item === 'number' || typeof item === 'boolean') return String(item);
    if (item !== null && typeof item === 'object') {
      const o = item as Record<string, unknown>;
      for (const key of ['name', 'value', 'id']) if (typeof o[key] === 'string') return o[key];
      return JSON.stringify(item);
    }
    return undefined;
  };
  const values = Array.isArray(value) ? value.map(one) : [one(value)];
  return values.filter((v): v is string => v !== undefined);
}

function permissionsOf(user: MimirUser, rbac: MimirRbacConfig): Set<string> {
  let roles = claimValues(user, rbac.claimPath || 'roles');
  if (roles.length === 0 && rbac.defaultRole) roles = [rbac.defaultRole];
  const granted = new Set<string>();
  for (const role of roles) {
    const mapping = Object.hasOwn(rbac.roleMappings, role) ? rbac.roleMappings[role] : undefined;
    for (const permission of mapping?.permissions ?? []) granted.add(permission);
  }
  return granted;
}

function hasPermission(granted: Set<string>, permission: string): boolean {
  const namespace = permission.split(':')[0];
  return granted.has(permission) || granted.has('*') || (namespace !== undefined && granted.has(`${namespace}:*`));
}

function identityHeaders(req: Request): MimirIdentity['headers'] {
  const out: MimirIdentity['headers'] = {};
  for (const name of ['x-user-id', 'x-user-email', 'x-user-roles'] as const) {
    const value = req.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

const isWrite = (method: string) => method !== 'GET' && method !== 'HEAD';

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

export async function startMimir(options: StartMimirOptions = {}): Promise<Mimir> {
  const security = options.security;
  const secret = security ? new TextEncoder().encode(security.jwtSecret) : undefined;
  const rbac = options.rbac;
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const received: MimirRequest[] = [];
  const declared = new Set<string>();
  const app = express();

  const recordOf = (res: Response): MimirRequest => res.locals.mimirRequest as MimirRequest;
  const identityOf = (res: Response): MimirIdentity => recordOf(res).identity;

  // Recording comes first so that even requests Mimir refuses (body errors, 404) are seen.
  app.use((req, res, next) => {
    const record: MimirRequest = {
      method: req.method,
      originalUrl: req.originalUrl,
      path: req.path,
      headers: { ...req.headers },
      route: null,
      identity: { headers: identityHeaders(req), check: security ? 'not-checked' : 'off', channel: null, user: null },
    };
    received.push(record);
    res.locals.mimirRequest = record;
    const settle = () => { record.status ??= res.statusCode; };
    res.on('finish', settle);
    res.on('close', settle);
    next();
  });

  // bodyParser.json (1 mb) with Mimir's verify: a body that is not JSON fails verification, which
  // Mimir's error handler answers 500 (an empty body with a JSON content type included).
  app.use(express.json({
    limit: '1mb',
    verify: (_req, _res, buf, encoding) => {
      try { JSON.parse(buf.toString((encoding || 'utf8') as BufferEncoding)); } catch { throw new Error('Invalid JSON in request body'); }
    },
  }));
  app.use(express.urlencoded({ extended: true }));
  app.use((req, res, next) => {
    if (req.body !== undefined) recordOf(res).body = structuredClone(req.body);
    next();
  });
  app.use(corsAsMimir);

  /** The first handler of every route: records which facts route handled the request. */
  const mark = (route: string): RequestHandler => (_req, res, next) => { recordOf(res).route = route; next(); };

  /** Mimir's requirePermission: only with RBAC on; 401 without req.user, 403 without the permission. */
  const requirePermission = (permission: string): RequestHandler => (_req, res, next) => {
    if (!rbac) { next(); return; }
    const user = identityOf(res).user;
    if (!user) { res.status(401).json({ error: 'Unauthorized', message: 'Authentication required' }); return; }
    if (hasPermission(permissionsOf(user, rbac), permission)) { next(); return; }
    res.status(403).json({ error: 'Forbidden', message: `Permission denied: ${permission} required`, userRoles: user.roles || [] });
  };

  const echo: RequestHandler = (req, res) => {
    const record = recordOf(res);
    const answer: MimirEcho = {
      route: record.route!, params: req.params as Record<string, string>, query: req.query as Record<string, unknown>, identity: record.identity,
      ...(isWrite(req.method) ? { body: req.body ?? null } : {}),
    };
    res.json(answer);
  };

  /** Declares one facts route on a router mounted at `mount`, with Mimir's own check where the facts say it has one. */
  const route = (router: Router, mount: string, method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, handler: RequestHandler = echo) => {
    const full = mount === '/' ? path : path === '/' ? mount : `${mount}${path}`;
    const name = `${method.toUpperCase()} ${full}`;
    const fact = factByRoute.get(name);
    if (!fact) throw new Error(`mimir double: ${name} is not in the facts file`);
    declared.add(name);
    const own = fact.permission_basis.startsWith("Mimir's own requirePermission") && fact.permission ? [requirePermission(fact.permission)] : [];
    router[method](path, mark(name), ...own, handler);
  };

  /** apiKeyAuth: a token on some channel must verify (else 401); no token at all passes unauthenticated. */
  const authenticate = async (req: Request, res: Response): Promise<boolean> => {
    const identity = identityOf(res);
    const found = extractToken(req);
    if (!found) { identity.check = 'bypass'; return true; }
    identity.channel = found.channel;
    const user = await verifyMimirJwt(found.token, secret!);
    if (!user) {
      identity.check = 'invalid-token';
      res.status(401).json({ error: 'Invalid token' });
      return false;
    }
    identity.check = 'verified';
    identity.user = user;
    return true;
  };

  // --- auth router (public) --------------------------------------------------------------------
  const auth = express.Router();
  route(auth, '/', 'post', '/auth/token');
  route(auth, '/', 'post', '/auth/login');
  route(auth, '/', 'get', '/auth/oauth/login');
  route(auth, '/', 'get', '/auth/oauth/callback');
  route(auth, '/', 'post', '/auth/logout');
  route(auth, '/', 'get', '/auth/status', async (req, res) => {
    if (!security) { res.json({ authenticated: true, securityEnabled: false }); return; }
    // Only the cookie is read here, whatever other credential the request carries.
    const token = cookiesOf(req).mimir_oauth_token;
    if (!token) { res.json({ authenticated: false }); return; }
    const user = await verifyMimirJwt(token, secret!);
    if (!user) { res.json({ authenticated: false, error: 'Invalid token' }); return; }
    res.json({ authenticated: true, user: { id: user.id, email: user.email, username: user.email, roles: user.roles } });
  });
  route(auth, '/', 'get', '/auth/config', (_req, res) => { res.json({ devLoginEnabled: false, oauthProviders: [] }); });
  app.use(auth);

  // --- security gate on /api (only with security on) ----------------------------------------------
  if (security) {
    app.use('/api', async (req, res, next) => {
      if (req.path === '/health') { next(); return; }
      if (!hasCredentials(req)) {
        identityOf(res).check = 'no-credential';
        res.status(401).json({ error: 'Unauthorized', message: 'Authentication required' });
        return;
      }
      if (await authenticate(req, res)) next();
    });
  }

  // --- chat router at / ----------------------------------------------------------------------------
  const chat = express.Router();
  route(chat, '/', 'get', '/api/preambles');
  route(chat, '/', 'get', '/api/preambles/:name');
  route(chat, '/', 'get', '/api/tools');
  route(chat, '/', 'get', '/api/models');
  route(chat, '/', 'post', '/v1/chat/completions', chatCompletions);
  route(chat, '/', 'post', '/v1/embeddings');
  route(chat, '/', 'get', '/v1/models');
  route(chat, '/', 'get', '/models');
  app.use('/', chat);

  // --- orchestration router at /api ------------------------------------------------------------------
  const executions = executionStreams();
  const orchestration = express.Router();
  route(orchestration, '/api', 'get', '/agents');
  route(orchestration, '/api', 'get', '/agents/:id');
  route(orchestration, '/api', 'post', '/agents');
  route(orchestration, '/api', 'delete', '/agents/:id');
  route(orchestration, '/api', 'post', '/generate-plan');
  route(orchestration, '/api', 'post', '/save-plan');
  route(orchestration, '/api', 'get', '/plans');
  route(orchestration, '/api', 'get', '/execution-stream/:executionId', (req, res) => executions.attach(String(req.params.executionId), req, res));
  route(orchestration, '/api', 'post', '/cancel-execution/:executionId');
  route(orchestration, '/api', 'get', '/execution-state/:executionId');
  route(orchestration, '/api', 'get', '/execution-deliverable/:executionId/:filename');
  route(orchestration, '/api', 'get', '/execution-deliverables/:executionId');
  route(orchestration, '/api', 'get', '/executions/:executionId');
  route(orchestration, '/api', 'get', '/deliverables/:executionId/download');
  route(orchestration, '/api', 'get', '/deliverables/:executionId');
  route(orchestration, '/api', 'get', '/executions');
  route(orchestration, '/api', 'post', '/execute-workflow');
  route(orchestration, '/api', 'post', '/validate-lambda');
  app.use('/api', orchestration);

  // --- mcp-tools router at /api ----------------------------------------------------------------------
  const mcpTools = express.Router();
  route(mcpTools, '/api', 'post', '/mcp/index-folder');
  route(mcpTools, '/api', 'post', '/mcp/remove-folder');
  route(mcpTools, '/api', 'post', '/mcp/save-conversation');
  route(mcpTools, '/api', 'get', '/mcp/list-folders');
  app.use('/api', mcpTools);

  // --- index router at /api --------------------------------------------------------------------------
  const indexing = indexingStreams(heartbeatMs);
  const index = express.Router();
  route(index, '/api', 'get', '/indexed-folders');
  route(index, '/api', 'post', '/index-folder');
  route(index, '/api', 'delete', '/indexed-folders');
  route(index, '/api', 'patch', '/indexed-folders/reactivate');
  route(index, '/api', 'get', '/index-config');
  route(index, '/api', 'get', '/indexing-status');
  route(index, '/api', 'get', '/indexing-progress', (req, res) => indexing.attach(req, res));
  route(index, '/api', 'get', '/index-stats');
  route(index, '/api', 'post', '/migrate-indexed-folders');
  // Declared as '/api/migrate-file-paths' inside the router mounted at /api (facts: served at /api/api/...).
  route(index, '/api', 'post', '/api/migrate-file-paths');
  route(index, '/api', 'get', '/debug-file-paths');
  route(index, '/api', 'post', '/cleanup-invalid-watchconfigs');
  route(index, '/api', 'post', '/migrate-watchconfig-paths');
  app.use('/api', index);

  // --- nodes, keys, rbac routers (Mimir's own permission checks) -----------------------------------
  const nodes = express.Router();
  route(nodes, '/api/nodes', 'get', '/types');
  route(nodes, '/api/nodes', 'get', '/vector-search');
  route(nodes, '/api/nodes', 'get', '/types/:type');
  route(nodes, '/api/nodes', 'get', '/types/:type/:id/details');
  route(nodes, '/api/nodes', 'delete', '/:id');
  route(nodes, '/api/nodes', 'post', '/:id/embeddings');
  route(nodes, '/api/nodes', 'post', '/');
  route(nodes, '/api/nodes', 'put', '/:id');
  route(nodes, '/api/nodes', 'patch', '/:id');
  route(nodes, '/api/nodes', 'get', '/:id');
  app.use('/api/nodes', nodes);

  const keys = express.Router();
  route(keys, '/api/keys', 'post', '/generate');
  route(keys, '/api/keys', 'get', '/');
  route(keys, '/api/keys', 'delete', '/:keyId');
  app.use('/api/keys', keys);

  const rbacRouter = express.Router();
  route(rbacRouter, '/api/rbac', 'get', '/');
  route(rbacRouter, '/api/rbac', 'put', '/');
  route(rbacRouter, '/api/rbac', 'get', '/permissions');
  app.use('/api/rbac', rbacRouter);

  // (The static frontend would be here: the double has no asset files, so it never answers.)

  // --- /mcp -------------------------------------------------------------------------------------------
  const mcp = sharedMcp();
  declared.add('GET /mcp');
  app.get('/mcp', mark('GET /mcp'), async (req, res) => {
    // Mimir checks no credential on GET /mcp, even with security on, and injects no session id here.
    try {
      await (await mcp.transport()).handleRequest(req, res, null);
    } catch {
      if (!res.headersSent) res.status(500).json({ error: 'Internal server error' });
    }
  });
  declared.add('POST /mcp');
  app.post('/mcp', mark('POST /mcp'), async (req, res) => {
    try {
      if (security) {
        if (!hasCredentials(req)) {
          identityOf(res).check = 'no-credential';
          const body = req.body as { id?: unknown } | undefined;
          res.status(401).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Unauthorized: Authentication required' }, id: body?.id || null });
          return;
        }
        if (!await authenticate(req, res)) return;
      }
      await mcp.post(req, res, recordOf(res));
    } catch {
      if (!res.headersSent) res.status(500).json({ error: 'Internal server error' });
    }
  });

  // --- /health ----------------------------------------------------------------------------------------
  declared.add('GET /health');
  app.get('/health', mark('GET /health'), (_req, res) => {
    res.json({ status: 'healthy', version: HEALTH_VERSION, mode: 'shared-session', tools: MIMIR_TOOLS.length });
  });

  // --- SPA catch-all: a RegExp route, so case-sensitive (GET /API/unknown gets the shell) -------------
  declared.add(SPA_ROUTE);
  app.get(/^\/(?!api|v1|mcp|health|models|auth).*$/, mark(SPA_ROUTE), (_req, res) => {
    res.type('html').send('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Mimir</title></head><body><div id="root"></div></body></html>');
  });

  // --- Mimir's error handler: JSON syntax → 400 -32700, anything else → 500 -32603 ---------------------
  app.use((err: Error & { body?: unknown }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) { next(err); return; }
    if (err instanceof SyntaxError && 'body' in err) {
      res.status(400).json({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error: Invalid JSON in request body', data: { detail: err.message } } });
      return;
    }
    res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error', data: { detail: err.message } } });
  });

  const missing = MIMIR_FACTS.routes.map((r) => `${r.method} ${r.path}`).filter((r) => !declared.has(r));
  if (missing.length > 0 || declared.size !== MIMIR_FACTS.route_count) {
    throw new Error(`mimir double: routes of the facts file not served: ${missing.join(', ') || `(count ${declared.size} ≠ ${MIMIR_FACTS.route_count})`}`);
  }

  const server: HttpServer = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    options,
    received,
    find: (prefix) => received.filter((r) => r.path.startsWith(prefix)),
    executions: executions.controls,
    indexing: indexing.controls,
    mcp: mcp.state,
    async close() {
      executions.closeAll();
      indexing.closeAll();
      await mcp.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CORS as Mimir configures the cors package (MCP_ALLOWED_ORIGIN unset: every origin allowed)
// ---------------------------------------------------------------------------------------------

const CORS_METHODS = 'POST,GET,DELETE,PATCH,PUT';
const CORS_ALLOWED_HEADERS = 'Content-Type,Accept,Authorization,mcp-session-id,Cache-Control,X-API-Key';

function corsAsMimir(req: Request, res: Response, next: NextFunction): void {
  const origin = req.headers.origin;
  if (origin) res.setHeader('Access-Control-Allow-Origin', origin);
  res.vary('Origin');
  res.setHeader('Access-Control-Allow-Credentials', 'true');
  if (req.method === 'OPTIONS') {
    // Every OPTIONS is a preflight for the cors package: 204 whatever the path.
    res.setHeader('Access-Control-Allow-Methods', CORS_METHODS);
    res.setHeader('Access-Control-Allow-Headers', CORS_ALLOWED_HEADERS);
    res.setHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id');
    res.statusCode = 204;
    res.setHeader('Content-Length', '0');
    res.end();
    return;
  }
  res.setHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id');
  next();
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/** Waiters resolved when a condition becomes true. */
function conditions() {
  const waiting: Array<{ test: () => boolean; resolve: () => void }> = [];
  return {
    wait(test: () => boolean): Promise<void> {
      if (test()) return Promise.resolve();
      return new Promise<void>((resolve) => { waiting.push({ test, resolve }); });
    },
    check(): void {
      for (let i = waiting.length - 1; i >= 0; i -= 1) {
        const w = waiting[i]!;
        if (w.test()) { waiting.splice(i, 1); w.resolve(); }
      }
    },
  };
}

function executionStreams() {
  const clients = new Map<string, Set<Response>>();
  const changed = conditions();
  const count = (id: string) => clients.get(id)?.size ?? 0;
  const remove = (id: string, res: Response) => {
    const set = clients.get(id);
    set?.delete(res);
    if (set?.size === 0) clients.delete(id);
    changed.check();
  };
  const controls: ExecutionStreams = {
    opened: (id) => changed.wait(() => count(id) > 0),
    closed: (id) => changed.wait(() => count(id) === 0),
    release(id, event = 'status-update', data = {}) {
      const set = clients.get(id);
      for (const res of set ?? []) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      return set?.size ?? 0;
    },
    end(id) {
      for (const res of [...clients.get(id) ?? []]) { res.end(); remove(id, res); }
    },
    clients: count,
  };
  return {
    controls,
    attach(id: string, req: Request, res: Response) {
      res.setHeader('Content-Type', 'text/event-stream');
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('Connection', 'keep-alive');
      res.setHeader('X-Accel-Buffering', 'no');
      const set = clients.get(id) ?? new Set<Response>();
      set.add(res);
      clients.set(id, set);
      // Mimir's first event: the execution's state, or pending for an execution it does not know.
      res.write(`event: init\ndata: ${JSON.stringify({ status: 'pending' })}\n\n`);
      req.on('close', () => remove(id, res));
      changed.check();
    },
    closeAll() {
      for (const id of [...clients.keys()]) controls.end(id);
    },
  };
}

function indexingStreams(heartbeatMs: number) {
  const clients = new Map<Response, ReturnType<typeof setInterval>>();
  const changed = conditions();
  let heartbeats = 0;
  const remove = (res: Response) => {
    clearInterval(clients.get(res));
    clients.delete(res);
    changed.check();
  };
  const controls: IndexingStreams = {
    opened: () => changed.wait(() => clients.size > 0),
    closed: () => changed.wait(() => clients.size === 0),
    progress(data) {
      for (const res of clients.keys()) res.write(`data: ${JSON.stringify(data)}\n\n`);
      return clients.size;
    },
    clients: () => clients.size,
    heartbeats: () => heartbeats,
  };
  return {
    controls,
    attach(req: Request, res: Response) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Methods', 'GET, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-API-Key');
      res.setHeader('Content-Type', 'text/event-stream');
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('Connection', 'keep-alive');
      res.setHeader('X-Accel-Buffering', 'no');
      res.flushHeaders();
      // No indexing job runs in the double, so no initial progress: only heartbeats, and it never ends.
      const timer = setInterval(() => { heartbeats += 1; res.write(': heartbeat\n\n'); }, heartbeatMs);
      clients.set(res, timer);
      req.on('close', () => remove(res));
      changed.check();
    },
    closeAll() {
      for (const res of [...clients.keys()]) { res.end(); remove(res); }
    },
  };
}

/**
 * POST /v1/chat/completions. Mimir reads `stream` with a default of true, so a body without `stream`
 * streams too; only a falsy `stream` (false, null, 0) gets JSON. The text is this route's echo as JSON,
 * in 50-character chunks as Mimir splits its output.
 */
function chatCompletions(req: Request, res: Response): void {
  const record = res.locals.mimirRequest as MimirRequest;
  const body = (req.body ?? {}) as { stream?: unknown; model?: unknown };
  const stream = body.stream === undefined ? true : Boolean(body.stream);
  const model = typeof body.model === 'string' ? body.model : 'mimir-double';
  const echo = { route: record.route, identity: record.identity, body: req.body ?? null };
  const text = JSON.stringify(echo);
  const created = Math.floor(Date.now() / 1000);
  if (!stream) {
    res.json({
      ...echo,
      id: `chatcmpl-${Date.now()}`, object: 'chat.completion', created, model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    });
    return;
  }
  res.setHeader('Content-Type', 'text/event-stream');
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Connection', 'keep-alive');
  const chunk = (content: string, finish: string | null) => `data: ${JSON.stringify({
    id: `chatcmpl-${Date.now()}`, object: 'chat.completion.chunk', created, model,
    choices: [{ index: 0, delta: finish ? {} : { content }, finish_reason: finish }],
  })}\n\n`;
  res.write(': Retrieving relevant context...\n\n');
  for (let i = 0; i < text.length; i += 50) res.write(chunk(text.slice(i, i + 50), null));
  res.write(chunk('', 'stop'));
  res.write(': Response complete (0 tool calls)\n\n');
  res.write('data: [DONE]\n\n');
  res.end();
}

// ---------------------------------------------------------------------------------------------
// MCP: one SDK Server and one transport for the whole process
// ---------------------------------------------------------------------------------------------

function mcpServer(): Server {
  // Mimir adds sessionId and sessionMode to serverInfo in its first initialize answer; giving the
  // Server that serverInfo produces the same answer without rewriting the response.
  const serverInfo = { ...MIMIR_FACTS.mcp.server_info, sessionId: MIMIR_SESSION_ID, sessionMode: 'shared-global' };
  const server = new Server(serverInfo, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: MIMIR_TOOLS.map((name) => ({ name, description: `Mimir tool ${name} (test double)`, inputSchema: { type: 'object' as const, properties: {} } })),
  }));
  server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
    const { name, arguments: args } = request.params;
    if (!MIMIR_TOOLS.includes(name)) {
      return { content: [{ type: 'text' as const, text: JSON.stringify({ success: false, error: `Unknown tool: ${name}` }) }], isError: true };
    }
    const identity = extra.authInfo?.extra?.identity ?? null;
    return { content: [{ type: 'text' as const, text: JSON.stringify({ tool: name, arguments: args ?? {}, identity }) }] };
  });
  return server;
}

function sharedMcp() {
  let transport: StreamableHTTPServerTransport | undefined;
  let connected: Promise<void> | undefined;
  let initialized = false;

  /** Created by the first GET or POST /mcp, then the same for everybody. */
  const shared = async (): Promise<StreamableHTTPServerTransport> => {
    if (!transport) {
      transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => MIMIR_SESSION_ID, enableJsonResponse: true });
      connected = mcpServer().connect(transport);
    }
    await connected;
    return transport;
  };

  /** A request without Mcp-Session-Id gets the shared one (SDK ≥ 1.2x reads rawHeaders, so both). */
  const injectSessionId = (req: Request) => {
    if (req.headers['mcp-session-id']) return;
    req.headers['mcp-session-id'] = MIMIR_SESSION_ID;
    req.rawHeaders.push('mcp-session-id', MIMIR_SESSION_ID);
  };

  /** Mimir counts the session initialized once the transport's answer to an initialize parses as JSON (even an error). */
  const watchInitializeAnswer = (res: Response) => {
    const chunks: Buffer[] = [];
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    const keep = (chunk: unknown) => {
      if (typeof chunk === 'string' || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    res.write = ((chunk: unknown, ...rest: unknown[]) => { keep(chunk); return write(chunk, ...rest); }) as Response['write'];
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'function') keep(chunk);
      try { JSON.parse(Buffer.concat(chunks).toString('utf8')); initialized = true; } catch { /* not JSON: not initialized */ }
      return end(chunk, ...rest);
    }) as Response['end'];
  };

  return {
    transport: shared,
    state: {
      sessionId: MIMIR_SESSION_ID,
      get initialized() { return initialized; },
    } as MimirMcpState,
    async post(req: Request, res: Response, record: MimirRequest) {
      const body = req.body as Record<string, unknown> | undefined;
      const sent = body?.method;
      let method = (sent || 'unknown') as string;
      const t = await shared();
      let answer: McpAnswer = 'transport';
      if (!initialized && method !== 'initialize') {
        // Before the first initialize, the first other request is turned into an initialize
        // (a request without a JSON body throws here, and Mimir answers 500 as the double does).
        body!.method = 'initialize';
        body!.params = { protocolVersion: CACHED_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'http-auto-init', version: '1.0' } };
        method = 'initialize';
        answer = 'auto-initialize';
      }
      record.mcp = { method: typeof sent === 'string' ? sent : 'unknown', answer };
      if (initialized && method === 'initialize') {
        record.mcp.answer = 'cached-initialize';
        res.setHeader('Mcp-Session-Id', MIMIR_SESSION_ID);
        res.json({
          jsonrpc: '2.0',
          id: body?.id,
          result: {
            protocolVersion: CACHED_PROTOCOL_VERSION,
            capabilities: { tools: {} },
            serverInfo: { ...MIMIR_FACTS.mcp.server_info, sessionId: MIMIR_SESSION_ID, sessionMode: 'shared-global' },
          },
        });
        return;
      }
      injectSessionId(req);
      res.setHeader('Mcp-Session-Id', MIMIR_SESSION_ID);
      if (method === 'initialize') watchInitializeAnswer(res);
      // What the tools report as the identity Mimir saw for this request.
      (req as Request & { auth?: AuthInfo }).auth = { token: '', clientId: '', scopes: [], extra: { identity: record.identity } };
      await t.handleRequest(req, res, req.body);
    },
    async close() {
      await transport?.close().catch(() => undefined);
    },
  };
}
