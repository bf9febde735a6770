/**
 * Admin HTTP API: /auth/admin/api-keys, /auth/admin/service-accounts, /auth/admin/clients,
 * /auth/admin/signing-keys, /auth/admin/sessions, /auth/admin/cimd-allowlist, /auth/admin/audit (/auth/admin/revocations: src/revocation/routes.ts). Thin: a route
 * authenticates the caller, hands the request to the admin service (src/admin/service.ts) — which
 * authorizes (`admin:manage`, the privilege ceiling), validates, makes the change and audits it —
 * and renders the answer. A fault is `server_error` 500 carrying the request id, never its cause.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpActor } from '../../admin/service.ts';
import type { Hub } from '../../hub.ts';
import { OAuthError } from '../../errors.ts';
import { noStore, sendError } from '../reply.ts';
import { authenticateHook } from '../authenticate.ts';

/** The authenticated caller of an admin route, with what the audit trail records of the request. */
export function adminActor(req: FastifyRequest): HttpActor {
  return { kind: 'principal', principal: req.principal!, method: req.method, path: req.url.split('?')[0]!, ip: req.ip, requestId: req.id };
}

/**
 * What every admin route scope has: no caching of answers (they hold secrets shown once), and the
 * request id in the body of every 5xx, whatever produced it, so an operator can find its log line.
 */
export function adminScope(app: FastifyInstance): void {
  app.addHook('onRequest', (_req, reply, done) => {
    reply.header('cache-control', 'no-store');
    done();
  });
  app.addHook('preSerialization', (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, value: unknown) => void) => {
    const withId = reply.statusCode >= 500 && payload !== null && typeof payload === 'object' && !Array.isArray(payload);
    done(null, withId ? { ...payload, request_id: req.id } : payload);
  });
}

/** A handler whose refusals and faults are rendered (OAuthError as is, anything else as server_error). */
export function adminHandler<T>(fn: (req: FastifyRequest, reply: FastifyReply) => Promise<T>) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      return await fn(req, reply);
    } catch (e) {
      return sendError(reply, e);
    }
  };
}

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

export function adminRoutes(hub: Hub) {
  const { admin } = hub;
  return async function routes(app: FastifyInstance): Promise<void> {
    adminScope(app);
    const opts = { preHandler: authenticateHook(hub) };
    const handle = adminHandler;

    app.get('/auth/admin/api-keys', opts, handle(async (req) => ({ api_keys: await admin.listApiKeys(adminActor(req)) })));
    app.post('/auth/admin/api-keys', opts, handle(async (req, reply) => {
      const { key, record } = await admin.createApiKey(adminActor(req), req.body);
      return noStore(reply).code(201).send({ ...record, key });
    }));
    app.delete('/auth/admin/api-keys/:id', opts, handle(async (req) => {
      await admin.revokeApiKey(adminActor(req), idOf(req));
      return { id: idOf(req), revoked: true };
    }));

    app.get('/auth/admin/service-accounts', opts, handle(async (req) => ({ service_accounts: await admin.listServiceAccounts(adminActor(req)) })));
    app.post('/auth/admin/service-accounts', opts, handle(async (req, reply) => {
      const { clientSecret, account } = await admin.createServiceAccount(adminActor(req), req.body);
      return noStore(reply).code(201).send({ ...account, client_id: account.clientId, client_secret: clientSecret });
    }));
    app.post('/auth/admin/service-accounts/:id/rotate-secret', opts, handle(async (req, reply) => {
      const rotated = await admin.rotateServiceAccountSecret(adminActor(req), idOf(req));
      return noStore(reply).send({ client_id: rotated.clientId, client_secret: rotated.clientSecret, previous_secret_valid_until: rotated.previousValidUntil });
    }));
    for (const [action, disabled] of [['disable', true], ['enable', false]] as const) {
      app.post(`/auth/admin/service-accounts/:id/${action}`, opts, handle(async (req) => {
        const done = await admin.setServiceAccountDisabled(adminActor(req), idOf(req), disabled);
        return { client_id: done.clientId, disabled: done.disabled };
      }));
    }
    app.delete('/auth/admin/service-accounts/:id', opts, handle(async (req) => {
      const done = await admin.deleteServiceAccount(adminActor(req), idOf(req));
      return { client_id: done.clientId, deleted: true };
    }));

    // OAuth clients of the authorization server; a client_id URL goes percent-encoded in the path.
    app.get('/auth/admin/clients', opts, handle(async (req) => ({ clients: await admin.listClients(adminActor(req)) })));
    app.delete('/auth/admin/clients/:id', opts, handle(async (req) => {
      const done = await admin.revokeClient(adminActor(req), idOf(req));
      return { client_id: done.clientId, revoked: true, refresh_families_revoked: done.refreshFamiliesRevoked };
    }));

    // Live sign-in sessions, of users whose id, email or name contains ?user= when given; ending one.
    app.get('/auth/admin/sessions', opts, handle(async (req) => {
      const user = (req.query as Record<string, unknown>).user;
      const sessions = await admin.listSessions(adminActor(req), typeof user === 'string' ? user.slice(0, 200) : undefined);
      if (sessions === null) throw new OAuthError('not_found', 'Sessions are kept in the browsers\' cookies (MIMIR_SESSION_STORAGE=cookie) and cannot be listed; end one by id with POST /auth/admin/revocations.');
      return { sessions };
    }));
    app.delete('/auth/admin/sessions/:id', opts, handle(async (req) => {
      await admin.endSession(adminActor(req), idOf(req));
      return { sid: idOf(req), ended: true };
    }));

    // The hosts client ID metadata documents may come from (empty: any).
    app.get('/auth/admin/cimd-allowlist', opts, handle(async (req) => ({ hosts: await admin.cimdAllowlist(adminActor(req)) })));
    app.put('/auth/admin/cimd-allowlist', opts, handle(async (req) => ({ hosts: await admin.setCimdAllowlist(adminActor(req), req.body) })));

    // The audit log kept in the store (MIMIR_AUDIT_RETENTION_DAYS), newest first; from/to in epoch milliseconds.
    app.get('/auth/admin/audit', opts, handle(async (req) => {
      const q = req.query as Record<string, unknown>;
      const int = (v: unknown) => (typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v);
      const found = await admin.queryAudit(adminActor(req), {
        ...(q.principal !== undefined ? { principal: q.principal } : {}), ...(q.type !== undefined ? { type: q.type } : {}),
        ...(q.outcome !== undefined ? { outcome: q.outcome } : {}), ...(q.from !== undefined ? { from: int(q.from) } : {}),
        ...(q.to !== undefined ? { to: int(q.to) } : {}), ...(q.page !== undefined ? { page: int(q.page) } : {}),
        ...(q.per_page !== undefined ? { per_page: int(q.per_page) } : {}),
      });
      return { events: found.events, total: found.total, page: found.page, pages: found.pages };
    }));

    app.get('/auth/admin/signing-keys', opts, handle(async (req) => admin.listSigningKeys(adminActor(req))));
    app.post('/auth/admin/signing-keys/rotate', opts, handle(async (req) => {
      const { kid, alg } = await admin.rotateSigningKey(adminActor(req));
      return { kid, alg };
    }));
  };
}
