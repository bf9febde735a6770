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
import { takeHandover } from './handover.ts';
import { sendError } from './reply.ts';

/** The authenticator's view of a request; the absolute URL (only DPoP needs it) is built on first use. */
function authInput(req: FastifyRequest): AuthInput {
  return {
    headers: req.headers,
    cookies: req.cookies,
    method: req.method,
    get url() { return `${req.protocol}://${req.host}${req.url}`; },
  };
}

function accepted(hub: Hub, req: FastifyRequest, principal: Principal, startedAt: number): void {
  req.principal = principal;
  observeAuthentication(hub, req, principal, startedAt);
}

function refused(hub: Hub, req: FastifyRequest, reply: FastifyReply, e: unknown, startedAt: number): FastifyReply {
  observeAuthentication(hub, req, e, startedAt);
  if (e instanceof OAuthError && e.status === 401) {
    hub.audit.record({ type: 'authentication_failed', outcome: 'failure', reason: e.error, ip: req.ip, request_id: req.id });
  }
  return sendError(reply, e);
}

/**
 * Authenticates the request, setting `req.principal`; replies with the error on failure and
 * resolves to that reply (undefined on success). For handlers that authenticate part-way.
 */
export function authenticateRequest(hub: Hub) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const early = takeHandover(req.raw);
    const startedAt = early?.startedAt ?? performance.now();
    try {
      const result = early ? early.result() : hub.authenticator.resolve(authInput(req));
      accepted(hub, req, result instanceof Promise ? await result : result, startedAt);
    } catch (e) {
      return refused(hub, req, reply, e, startedAt);
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
      result = early ? early.result() : hub.authenticator.resolve(authInput(req));
    } catch (e) {
      refused(hub, req, reply, e, startedAt);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (principal) => { accepted(hub, req, principal, startedAt); done(); },
        (e: unknown) => { refused(hub, req, reply, e, startedAt); },
      );
      return;
    }
    accepted(hub, req, result, startedAt);
    done();
  };
}
