/**
 * Authentication at the HTTP edge, for the route modules: the request's Principal from the
 * authenticator (or from what the fast path already worked out for it), with the authentication
 * metrics and the audit event of a refusal, recorded in one place.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthInput } from '../authn/authenticate.ts';
import type { Principal } from '../authn/principal.ts';
import { OAuthError } from '../errors.ts';
import type { Hub } from '../hub.ts';
import { observeAuthentication } from '../metrics/observe.ts';
import { applyUserContext } from '../proxy/user-context.ts';
import { takeHandover, type Handover } from './handover.ts';
import { sendError } from './reply.ts';

/**
 * The authenticator's view of a request; the absolute URL (only DPoP needs it) is built on first
 * use. A fresh DPoP nonce (RFC 9449 §8.2) goes out with whatever answers the request.
 */
function authInput(req: FastifyRequest, reply: FastifyReply): AuthInput {
  return {
    headers: req.headers,
    cookies: req.cookies,
    method: req.method,
    get url() { return `${req.protocol}://${req.host}${req.url}`; },
    dpopNonce: (nonce) => { reply.header('dpop-nonce', nonce); },
  };
}

/** `early`: what the fast path handed over; when it recorded the authentication already, it is not recorded twice. */
function accepted(hub: Hub, req: FastifyRequest, principal: Principal, startedAt: number, early: Handover | undefined): void {
  req.principal = principal;
  if (early?.observedAs === undefined) observeAuthentication(hub, req, principal, startedAt);
}

/** Renders a refusal some other way than RFC 6750 JSON (a browser sent to sign in), or undefined. */
export type RefusalPage = (req: FastifyRequest, reply: FastifyReply, e: unknown) => FastifyReply | undefined;

function refused(hub: Hub, req: FastifyRequest, reply: FastifyReply, e: unknown, startedAt: number, page?: RefusalPage): FastifyReply {
  observeAuthentication(hub, req, e, startedAt);
  if (e instanceof OAuthError && e.error === 'use_dpop_nonce') {
    // RFC 9449 §9: a nonce challenge is a step of the protocol every DPoP client meets once a
    // window, not a failed credential: audited as a denial with its reason, not as a failed sign-in.
    hub.audit.record({ type: 'access_denied', outcome: 'failure', reason: e.error, method: req.method, path: req.url.split('?')[0]!.slice(0, 200), ip: req.ip, request_id: req.id });
  } else if (e instanceof OAuthError && e.status === 401) {
    hub.audit.record({ type: 'authentication_failed', outcome: 'failure', reason: e.error, method: req.method, path: req.url.split('?')[0]!.slice(0, 200), ip: req.ip, request_id: req.id });
  }
  return page?.(req, reply, e) ?? sendError(reply, e);
}

/**
 * Authenticates the request, setting `req.principal`; replies with the error on failure and
 * resolves to that reply (undefined on success). For handlers that authenticate part-way.
 * `page` may render a refusal its own way (the proxy sends a browser to sign in).
 */
export function authenticateRequest(hub: Hub, page?: RefusalPage) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const early = takeHandover(req.raw);
    const startedAt = early?.startedAt ?? performance.now();
    try {
      const result = early ? early.result() : hub.authenticator.resolve(authInput(req, reply));
      accepted(hub, req, result instanceof Promise ? await result : result, startedAt, early);
    } catch (e) {
      return refused(hub, req, reply, e, startedAt, page);
    }
    return undefined;
  };
}

/**
 * The same as a callback-style `preHandler`: a request whose credential is cached goes on
 * without a promise or a trip through the microtask queue.
 */
export function authenticateHook(hub: Hub) {
  return (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    // What the fast path already worked out for this request, else the authenticator now.
    const early = takeHandover(req.raw);
    const startedAt = early?.startedAt ?? performance.now();
    let result: Principal | Promise<Principal>;
    try {
      result = early ? early.result() : hub.authenticator.resolve(authInput(req, reply));
    } catch (e) {
      refused(hub, req, reply, e, startedAt);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (principal) => { accepted(hub, req, principal, startedAt, early); done(); },
        (e: unknown) => { refused(hub, req, reply, e, startedAt); },
      );
      return;
    }
    accepted(hub, req, result, startedAt, early);
    done();
  };
}

/**
 * Who the caller is toward Mimir: a trusted service account may act for a user (X-User-ID, and
 * optionally email and roles); from anyone else the headers are ignored (and audited). The proxy
 * and /auth/me both ask this, so /auth/me shows exactly whom the proxy would forward.
 */
export async function actingPrincipal(hub: Hub, req: FastifyRequest): Promise<Principal> {
  checkIdentityHeaders(hub, req.raw.rawHeaders);
  const original = req.principal!;
  const result = await applyUserContext({ authorizer: hub.authorizer, identities: hub.identities, serviceAccounts: hub.serviceAccounts, names: hub.config.userContext }, original, req.headers);
  if (result.outcome === 'asserted') {
    hub.audit.record({ type: 'user_context_asserted', outcome: 'success', principal: result.principal, client: original.client_id, ip: req.ip, request_id: req.id });
  } else if (result.outcome === 'ignored') {
    hub.audit.record({ type: 'user_context_ignored', outcome: 'failure', reason: result.reason, principal: original, ip: req.ip, request_id: req.id });
  }
  req.principal = result.principal;
  return result.principal;
}

/**
 * Identity headers sent more than once are refused (400) from anyone: node:http joins repeats
 * of most fields into one value (`joe, boss`), which one reader would take as one id and another
 * as two.
 */
function checkIdentityHeaders(hub: Hub, raw: readonly string[]): void {
  const names = hub.config.userContext;
  const watched = [names.idHeader, names.emailHeader, names.rolesHeader].map((h) => h.toLowerCase());
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (!watched.includes(n)) continue;
    if (seen.has(n)) throw new OAuthError('invalid_request', `The ${raw[i]} header is repeated.`);
    seen.add(n);
  }
}

