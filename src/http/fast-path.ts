/**
 * Issue 7's hot path: requests with a cached credential answered straight from node:http —
 * `GET /auth/me`, plain requests the proxy relays to the upstream (src/proxy/routes.ts), and
 * form-encoded introspection requests (RFC 7662) from a caller that authenticates itself.
 *
 * Measured on 2 cores, Fastify's per-request pipeline (router, Request/Reply objects, hook runners,
 * reply serializer, response listeners) costs more CPU than the cached authentication it wraps.
 * Here the request is answered with exactly what the Fastify route writes (same status, headers,
 * body, request id, metrics and audit events). Whatever this path is not sure about goes to
 * Fastify untouched, and an answer that needs I/O (a cache miss) or is a refusal is handed over,
 * not worked out a second time: the routes take it from {@link takeHandover}, so every refusal
 * is still decided and rendered in one place.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthInput } from '../authn/authenticate.ts';
import type { Principal } from '../authn/principal.ts';
import { handOver, handOverBody } from './handover.ts';
import { ME_PATH, meBody, meDecision } from './routes/me.ts';
import type { Hub } from '../hub.ts';
import { observeAuthentication } from '../metrics/observe.ts';
import { INTROSPECTION_PATH, introspection } from '../oauth/introspect/routes.ts';
import { FORM_BODY_LIMIT, parseForm } from './form.ts';
import { baseHeaders, OAuthError, SECURITY_HEADERS, writeError } from './reply.ts';
import { proxyFastPath } from '../proxy/routes.ts';

export interface FastPathOptions {
  hub: Hub;
  /** The server's request-id generator (shared with Fastify's `genReqId`). */
  nextId: () => string;
  /** Cookie header parser (the one Fastify's requests use). */
  parseCookie: (header: string) => Record<string, string | undefined>;
  /** False while the server is closing (Fastify answers 503 then). */
  open: () => boolean;
  /** Whether Fastify's router gives this request to the proxy's catch-all route. */
  proxied: (method: string, path: string) => boolean;
}

export interface FastPath {
  /**
   * True when it took the request; false: pass it to Fastify. A request taken may still be passed
   * to Fastify later, by calling `fastify` (an MCP message read here that the route must decide).
   */
  (req: IncomingMessage, res: ServerResponse, fastify: (req: IncomingMessage, res: ServerResponse) => void): boolean;
  /** Requests answered here (tests and the bench read it). */
  readonly answered: number;
}

/** `GET /auth/me`'s headers after the request id, in the Fastify route's order. */
const ME_HEADERS = [...Object.entries(SECURITY_HEADERS).flat(), 'cache-control', 'no-store', 'content-type', 'application/json; charset=utf-8'];

/** Introspection's answer headers after the request id, in the Fastify route's order (noStore, then send). */
const INTROSPECTION_HEADERS = [...Object.entries(SECURITY_HEADERS).flat(), 'cache-control', 'no-store', 'pragma', 'no-cache', 'content-type', 'application/json; charset=utf-8'];
/**
 * The form bodies this path reads: the two spellings clients send. @fastify/formbody takes any
 * parameters too; those requests go to Fastify.
 */
const FORM_TYPE = /^application\/x-www-form-urlencoded(?:; ?charset=utf-8)?$/i;
/** A Content-Length this path reads: 1 to FORM_BODY_LIMIT bytes (an empty body is Fastify's). */
const FORM_LENGTH = /^[1-9][0-9]{0,5}$/;

/** A 200 JSON answer: the request id, then `headers` (the route's, in its order), then the length. */
function writeJson(res: ServerResponse, id: string, headers: readonly string[], json: string): void {
  res.writeHead(200, ['x-request-id', id, ...headers, 'content-length', String(Buffer.byteLength(json))]);
  res.end(json);
}

export function createFastPath(o: FastPathOptions): FastPath {
  const { hub } = o;
  const proxy = proxyFastPath(hub, o.proxied);
  let answered = 0;

  /** The request's cookies, parsed as Fastify's requests have them. */
  const cookiesOf = (req: IncomingMessage): Record<string, string | undefined> => {
    const cookie = req.headers.cookie;
    return cookie === undefined ? {} : o.parseCookie(cookie);
  };

  /** The cached Principal, or undefined after handing the authenticator's answer to Fastify. */
  const authenticate = (req: IncomingMessage, startedAt: number): Principal | undefined => {
    const input: AuthInput = { headers: req.headers, cookies: cookiesOf(req), method: req.method! };
    let principal: Principal | Promise<Principal>;
    try {
      principal = hub.authenticator.resolve(input);
    } catch (e) {
      handOver(req, { startedAt, result: () => { throw e; } });
      return undefined;
    }
    if (principal instanceof Promise) {
      // The route awaits it; keep an early rejection from counting as unhandled meanwhile.
      principal.catch(() => undefined);
      const pending = principal;
      handOver(req, { startedAt, result: () => pending });
      return undefined;
    }
    return principal;
  };

  /** Records an authentication this path answers (metrics, audit) under a new request id. */
  const accepted = (req: IncomingMessage, principal: Principal, startedAt: number): string => {
    const id = o.nextId();
    observeAuthentication(hub, { headers: req.headers, ip: req.socket.remoteAddress, id }, principal, startedAt);
    return id;
  };

  const names = hub.config.userContext;
  const userContext = [names.idHeader, names.emailHeader, names.rolesHeader].map((h) => h.toLowerCase());
  const me = (req: IncomingMessage, res: ServerResponse): boolean => {
    const headers = req.headers;
    if (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined) return false;
    // User context (a trusted service acting for a user) is the route's to work out.
    if (headers[userContext[0]!] !== undefined || headers[userContext[1]!] !== undefined || headers[userContext[2]!] !== undefined) return false;
    const startedAt = performance.now();
    const principal = authenticate(req, startedAt);
    if (!principal) return false;
    if (!meDecision(hub, principal).allowed) {
      // Refused: the route decides again, audits and renders the refusal.
      handOver(req, { startedAt, result: () => principal });
      return false;
    }
    // The body first: should it throw, Fastify takes the request over and nothing was recorded yet.
    const body = JSON.stringify(meBody(hub, principal));
    writeJson(res, accepted(req, principal, startedAt), ME_HEADERS, body);
    return true;
  };

  const proxied = (req: IncomingMessage, res: ServerResponse, path: string): boolean => {
    const startedAt = performance.now();
    const principal = authenticate(req, startedAt);
    if (!principal) return false;
    if (proxy!.relay(req, res, path, principal, () => accepted(req, principal, startedAt))) return true;
    // Denied: the route decides again, audits and renders the refusal.
    handOver(req, { startedAt, result: () => principal });
    return false;
  };

  /**
   * `POST /mcp` in a cached session (src/proxy/routes.ts `relayMcp`): once taken, its
   * authentication is recorded (as the route records it before reading the body), then the body is
   * read and the message relayed here when allowed, else handed to the route with the Principal,
   * the body and the request id it was recorded under.
   */
  const mcp = (req: IncomingMessage, res: ServerResponse, fastify: (req: IncomingMessage, res: ServerResponse) => void): boolean => {
    const startedAt = performance.now();
    const principal = authenticate(req, startedAt);
    if (!principal) return false;
    const taken = proxy!.relayMcp(req, res, principal, {
      since: startedAt,
      accept: () => { answered++; return accepted(req, principal, startedAt); },
      handOver: (id, body) => {
        answered--;
        // Fastify no longer routes once it is closing (its bare 503): the hub's own refusal instead.
        if (!o.open()) return writeError(res, baseHeaders(id), new OAuthError('service_unavailable', 'The server is shutting down.'), hub.log);
        handOver(req, { startedAt, result: () => principal, observedAs: id });
        handOverBody(req, body);
        fastify(req, res);
      },
    });
    if (!taken) handOver(req, { startedAt, result: () => principal });
    return taken;
  };

  /**
   * `POST /auth/introspect` with a form body of known length and an Authorization header (a
   * caller that authenticates itself, so the session cookie's CSRF check has nothing to judge).
   * Once taken, the request is answered here: the body is read with the parser and limit the
   * routes use, and {@link introspection} decides and audits as for the route; its answer or
   * refusal is written as the route writes it.
   */
  const introspect = (req: IncomingMessage, res: ServerResponse): boolean => {
    const headers = req.headers;
    const length = headers['content-length'];
    if (headers.authorization === undefined || headers['transfer-encoding'] !== undefined || headers['content-encoding'] !== undefined
      || length === undefined || !FORM_LENGTH.test(length) || Number(length) > FORM_BODY_LIMIT || !FORM_TYPE.test(headers['content-type'] ?? '')) return false;
    const id = o.nextId();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      let body: unknown;
      try {
        body = parseForm(Buffer.concat(chunks).toString());
      } catch (e) {
        writeError(res, baseHeaders(id), e, hub.log);
        return;
      }
      const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
      introspection(hub, {
        body, headers, cookies: cookiesOf(req), method: 'POST',
        url: `${proto}://${headers.host}${req.url}`, ip: req.socket.remoteAddress ?? '', id,
      }).then(
        (result) => writeJson(res, id, INTROSPECTION_HEADERS, JSON.stringify(result)),
        (e: unknown) => writeError(res, baseHeaders(id), e, hub.log),
      ).catch((e: unknown) => {
        hub.log.error({ detail: e instanceof Error ? e.message : String(e), request_id: id }, 'introspection answer failed');
        res.destroy();
      });
    });
    return true;
  };

  const fast = ((req: IncomingMessage, res: ServerResponse, fastify: (req: IncomingMessage, res: ServerResponse) => void): boolean => {
    if (!o.open()) return false;
    const url = req.url!;
    // Not DPoP: its proof covers the absolute URL, which Fastify works out.
    const authorization = req.headers.authorization;
    if (authorization !== undefined && /^dpop\s/i.test(authorization)) return false;
    let done = false;
    if (url === ME_PATH) {
      done = req.method === 'GET' && me(req, res);
    } else if (url === INTROSPECTION_PATH) {
      done = req.method === 'POST' && introspect(req, res);
    } else if (proxy?.acceptsMcp(req)) {
      return mcp(req, res, fastify); // counted when relayed, not when taken
    } else if (proxy) {
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      done = proxy.accepts(req, path) && proxied(req, res, path);
    }
    if (done) answered++;
    return done;
  }) as FastPath;
  Object.defineProperty(fast, 'answered', { get: () => answered });
  return fast;
}
