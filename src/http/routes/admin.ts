/**
 * Admin HTTP API: /auth/admin/api-keys, /auth/admin/service-accounts, /auth/admin/signing-keys.
 * Needs a principal whose roles grant `admin:manage` (Mimir's `admin` role has `*`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../../api-keys/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import type { CredentialRights } from '../../authz/index.ts';
import { refusal } from '../../authz/refusal.ts';
import { ServiceAccountExists } from '../../service-accounts/index.ts';
import { noStore, sendError } from '../reply.ts';
import { authenticateRequest } from '../authenticate.ts';

const roleList = z.array(z.string().regex(/^[\w.:*-]{1,64}$/)).max(50);
const scopeList = z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/)).max(100);
const createKey = z.object({
  name: z.string().min(1).max(100),
  roles: roleList.default([]),
  scopes: scopeList.optional(),
  expires_in: z.union([z.string(), z.number().int().positive()]).optional(),
});
const createAccount = z.object({
  client_id: z.string().min(1).max(128),
  name: z.string().max(100).optional(),
  roles: roleList.default([]),
  scopes: scopeList.optional(),
  allow_user_context: z.boolean().optional(),
  allow_token_exchange: z.boolean().optional(),
});

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new OAuthError('invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return r.data;
}

export function adminRoutes(hub: Hub) {
  const authenticate = authenticateRequest(hub);
  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply) => {
    const failed = await authenticate(req, reply);
    if (failed) return failed;
    const p = req.principal!;
    const decision = hub.authorizer.decide(p, { permission: 'admin:manage', path: req.url.split('?')[0]! });
    if (!decision.allowed) {
      hub.audit.record({ type: 'access_denied', outcome: 'failure', reason: decision.reason, permission: 'admin:manage', method: req.method, path: req.url.split('?')[0]!.slice(0, 200), principal: p, ip: req.ip, request_id: req.id });
      return sendError(reply, refusal(decision, 'The admin API needs the admin:manage permission.'));
    }
    return undefined;
  };
  /**
   * The privilege ceiling: nobody creates or takes control of a credential holding a permission
   * or a flag they do not hold themselves (403, naming what is missing).
   */
  const withinCeiling = (req: FastifyRequest, rights: CredentialRights): void => {
    const missing = hub.authorizer.exceeds(req.principal!, rights);
    if (missing === undefined) return;
    hub.audit.record({ type: 'access_denied', outcome: 'failure', reason: 'privilege_ceiling', permission: missing, method: req.method, path: req.url.split('?')[0]!.slice(0, 200), principal: req.principal, ip: req.ip, request_id: req.id });
    throw refusal({ allowed: false, reason: 'insufficient_scope', permission: missing }, `This would hand out or control "${missing}", which you do not hold yourself.`);
  };
  const accountRights = async (id: string): Promise<CredentialRights> => {
    const account = await hub.serviceAccounts.get(id);
    if (!account) throw new OAuthError('not_found', 'No service account with that id.');
    return { roles: account.roles, scopes: account.scopes, allowUserContext: account.allowUserContext, allowTokenExchange: account.allowTokenExchange };
  };
  const audit = (req: FastifyRequest, action: string, target: string) =>
    hub.audit.record({ type: 'admin', outcome: 'success', action, target, principal: req.principal, ip: req.ip, request_id: req.id });

  return async function routes(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (req, reply) => {
      if (req.url.startsWith('/auth/admin/')) reply.header('cache-control', 'no-store');
    });
    const wrap = <T>(fn: (req: FastifyRequest, reply: FastifyReply) => Promise<T>) => async (req: FastifyRequest, reply: FastifyReply) => {
      try {
        return await fn(req, reply);
      } catch (e) {
        return sendError(reply, e);
      }
    };
    const opts = { preHandler: requireAdmin };

    app.get('/auth/admin/api-keys', opts, wrap(async () => ({ api_keys: await hub.apiKeys.list() })));
    app.post('/auth/admin/api-keys', opts, wrap(async (req, reply) => {
      const input = parse(createKey, req.body);
      let expiresInSeconds: number | undefined;
      try {
        expiresInSeconds = input.expires_in === undefined ? undefined : typeof input.expires_in === 'number' ? input.expires_in : parseDuration(input.expires_in);
      } catch (e) {
        throw new OAuthError('invalid_request', `expires_in: ${(e as Error).message}`);
      }
      withinCeiling(req, { roles: input.roles, ...(input.scopes ? { scopes: input.scopes } : {}) });
      const { key, record } = await hub.apiKeys.create({ name: input.name, roles: input.roles, ...(input.scopes ? { scopes: input.scopes } : {}), ...(expiresInSeconds ? { expiresInSeconds } : {}) });
      audit(req, 'api_key_created', record.id);
      return noStore(reply).code(201).send({ ...record, key });
    }));
    app.delete('/auth/admin/api-keys/:id', opts, wrap(async (req) => {
      const target = await hub.apiKeys.get(idOf(req));
      if (!target) throw new OAuthError('not_found', 'No API key with that id.');
      withinCeiling(req, { roles: target.roles, ...(target.scopes ? { scopes: target.scopes } : {}) });
      if (!(await hub.apiKeys.revoke(idOf(req)))) throw new OAuthError('not_found', 'No API key with that id.');
      audit(req, 'api_key_revoked', idOf(req));
      return { id: idOf(req), revoked: true };
    }));

    app.get('/auth/admin/service-accounts', opts, wrap(async () => ({ service_accounts: await hub.serviceAccounts.list() })));
    app.post('/auth/admin/service-accounts', opts, wrap(async (req, reply) => {
      const input = parse(createAccount, req.body);
      withinCeiling(req, { roles: input.roles, ...(input.scopes ? { scopes: input.scopes } : {}), allowUserContext: input.allow_user_context ?? false, allowTokenExchange: input.allow_token_exchange ?? false });
      try {
        const { clientSecret, account } = await hub.serviceAccounts.create({
          clientId: input.client_id, roles: input.roles,
          ...(input.name ? { name: input.name } : {}), ...(input.scopes ? { scopes: input.scopes } : {}),
          allowUserContext: input.allow_user_context ?? false, allowTokenExchange: input.allow_token_exchange ?? false,
        });
        audit(req, 'service_account_created', account.clientId);
        return noStore(reply).code(201).send({ ...account, client_id: account.clientId, client_secret: clientSecret });
      } catch (e) {
        if (e instanceof ServiceAccountExists) throw new OAuthError('conflict', e.message);
        if (e instanceof Error && !(e instanceof OAuthError)) throw new OAuthError('invalid_request', e.message);
        throw e;
      }
    }));
    app.post('/auth/admin/service-accounts/:id/rotate-secret', opts, wrap(async (req, reply) => {
      withinCeiling(req, await accountRights(idOf(req)));
      const rotated = await hub.serviceAccounts.rotateSecret(idOf(req));
      if (!rotated) throw new OAuthError('not_found', 'No service account with that id.');
      audit(req, 'service_account_secret_rotated', idOf(req));
      return noStore(reply).send({ client_id: idOf(req), client_secret: rotated.clientSecret, previous_secret_valid_until: rotated.previousValidUntil });
    }));
    for (const [action, disabled] of [['disable', true], ['enable', false]] as const) {
      app.post(`/auth/admin/service-accounts/:id/${action}`, opts, wrap(async (req) => {
        withinCeiling(req, await accountRights(idOf(req)));
        if (!(await hub.serviceAccounts.setDisabled(idOf(req), disabled))) throw new OAuthError('not_found', 'No service account with that id.');
        audit(req, `service_account_${action}d`, idOf(req));
        return { client_id: idOf(req), disabled };
      }));
    }
    app.delete('/auth/admin/service-accounts/:id', opts, wrap(async (req) => {
      withinCeiling(req, await accountRights(idOf(req)));
      if (!(await hub.serviceAccounts.delete(idOf(req)))) throw new OAuthError('not_found', 'No service account with that id.');
      audit(req, 'service_account_deleted', idOf(req));
      return { client_id: idOf(req), deleted: true };
    }));

    app.get('/auth/admin/signing-keys', opts, wrap(async () => ({ current: hub.keys.currentKid, keys: hub.keys.list() })));
    app.post('/auth/admin/signing-keys/rotate', opts, wrap(async (req) => {
      const record = await hub.keys.rotate();
      hub.audit.record({ type: 'signing_key_rotated', outcome: 'success', kid: record.kid, principal: req.principal, ip: req.ip, request_id: req.id });
      return { kid: record.kid, alg: record.alg };
    }));
  };
}
