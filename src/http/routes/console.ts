/**
 * The admin console (/auth/admin/, screens under /auth/admin/console/) and the personal API keys
 * page (/auth/account/api-keys), for a browser signed in through the hub's normal session (the
 * IdP). Thin, like the admin API: every screen and form calls the admin service
 * (src/admin/service.ts), which authorizes with the one rule (`admin:manage`, the privilege
 * ceiling; any signed-in user for their own keys), validates and audits — so the console can do
 * exactly what the admin API lets the same person do, never more.
 *
 * Forms are POSTs carrying a CSRF token bound to the session (an HMAC of its id under the session
 * key), on top of the hub-wide same-origin check of cookie requests (src/oidc/routes.ts). Pages go
 * out with the pages' headers (src/pages/respond.ts): CSP with the hub's own script file only.
 */
import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpActor } from '../../admin/service.ts';
import type { Principal } from '../../authn/principal.ts';
import { safeEqual } from '../../crypto/index.ts';
import { OAuthError, toOAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import {
  apiKeysScreen, auditScreen, clientsScreen, consoleRefusal, CONSOLE_PATH, CONSOLE_SCRIPT, CONSOLE_SCRIPT_PATH, overviewScreen, PERSONAL_KEYS_PATH,
  personalKeysScreen, revocationsScreen, serviceAccountsScreen, sessionsScreen, signingKeysScreen, type AuditFilterView, type Flash, type ScreenContext,
} from '../../pages/console.ts';
import { sendPage } from '../../pages/respond.ts';
import { sessionKey } from '../../sessions/key.ts';

/** What a finished action says on the screen it returns to (`?done=`): fixed words, nothing reflected. */
const NOTICES: Record<string, string> = {
  api_key_revoked: 'The API key was revoked.',
  service_account_disabled: 'The service account was disabled: its tokens stop working.',
  service_account_enabled: 'The service account was enabled.',
  client_revoked: 'The client was revoked, with every refresh token issued to it.',
  allowlist_changed: 'The metadata document allowlist was saved; every instance applies it from now on.',
  session_ended: 'The session was ended: its cookie and tokens stop working on every instance.',
  signing_key_rotated: 'A new signing key is current; the previous one still verifies the tokens it signed.',
  revoked: 'Revoked on every instance.',
};

/** The CSRF token of a session: an HMAC of its id, so nothing more is stored and every instance agrees. */
export function csrfToken(key: Buffer, sid: string): string {
  return createHmac('sha256', key).update(`console-csrf\n${sid}`).digest('base64url');
}

/** `a b c` or `a,b` → ['a', 'b', 'c']; a checkbox group arrives as a string or an array. */
function words(v: unknown): string[] {
  const all = Array.isArray(v) ? v : [v];
  return all.filter((x): x is string => typeof x === 'string').flatMap((x) => x.split(/[\s,]+/)).filter(Boolean);
}

const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

/** `YYYY-MM-DDTHH:MM` (a datetime-local input, read as UTC) → epoch ms; undefined when empty or not a time. */
function utcMs(v: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v)) return undefined;
  const ms = Date.parse(`${v}Z`);
  return Number.isFinite(ms) ? ms : undefined;
}

export function consoleRoutes(hub: Hub) {
  return async function routes(app: FastifyInstance): Promise<void> {
    const { admin, config } = hub;
    const { brand } = config;
    const key = sessionKey(config);
    const roles = Object.keys(hub.rbac.config.roleMappings).sort();

    app.get(CONSOLE_SCRIPT_PATH, async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=3600').type('text/javascript; charset=utf-8').send(CONSOLE_SCRIPT));

    /** The signed-in browser session's Principal, or null (any other credential is not a console user). */
    const signedIn = async (req: FastifyRequest): Promise<Principal | null> => {
      try {
        const p = await hub.authenticator.authenticate({ headers: {}, cookies: req.cookies });
        return p.auth_method === 'session' && p.sid ? p : null;
      } catch (e) {
        // The store out of reach is not "signed out": it is a 503 page, as elsewhere.
        if (toOAuthError(e).status >= 500) throw e;
        return null;
      }
    };

    const actorOf = (req: FastifyRequest, principal: Principal): HttpActor =>
      ({ kind: 'principal', principal, method: req.method, path: req.url.split('?')[0]!, ip: req.ip, requestId: req.id });

    const page = (reply: FastifyReply, status: number, html: string) => sendPage(reply, status, html, { brand, scripts: true, formAction: 'self' });

    const refusal = (reply: FastifyReply, principal: Principal | null, err: OAuthError) => {
      const title = err.status === 403 ? 'Not allowed' : 'Something went wrong';
      const message = err.status === 403 ? `${err.description} Ask an administrator for the admin:manage permission.` : err.description;
      return page(reply, err.status, consoleRefusal(title, message, { brand, csrf: principal?.sid ? csrfToken(key, principal.sid) : '' }));
    };

    const notSignedIn = (req: FastifyRequest, reply: FastifyReply) => {
      if (req.method === 'GET' || req.method === 'HEAD') return reply.header('cache-control', 'no-store').redirect(`/auth/login?returnTo=${encodeURIComponent(req.url)}`, 302);
      return refusal(reply, null, new OAuthError('invalid_token', 'You are not signed in, or your session ended. Sign in and try again.', { status: 401 }));
    };

    type Render = (actor: HttpActor, ctx: ScreenContext) => Promise<string>;

    /** Renders a screen for the signed-in reader; a refusal of the admin service becomes the console's refusal page. */
    const show = async (req: FastifyRequest, reply: FastifyReply, adminScreen: boolean, render: Render, flash?: Flash, status = 200) => {
      const principal = await signedIn(req);
      if (!principal) return notSignedIn(req, reply);
      const actor = actorOf(req, principal);
      const done = (req.query as Record<string, unknown>).done;
      const notice = typeof done === 'string' && Object.hasOwn(NOTICES, done) ? NOTICES[done] : undefined;
      const isAdmin = adminScreen || hub.authorizer.decide(principal, { permission: 'admin:manage', path: actor.path }).allowed;
      const ctx: ScreenContext = { brand, csrf: csrfToken(key, principal.sid!), admin: isAdmin, flash: { ...(notice ? { notice } : {}), ...flash } };
      try {
        return page(reply, status, await render(actor, ctx));
      } catch (e) {
        const err = toOAuthError(e);
        if (err.status >= 500) throw e;
        return refusal(reply, principal, err);
      }
    };

    type Act = (actor: HttpActor, body: Record<string, unknown>) => Promise<{ redirect: string } | { flash: Flash; status?: number }>;

    /**
     * A form's POST: the session, its CSRF token, then the admin service. A refusal (a bad field,
     * the ceiling) shows the screen again with the reason; success goes back to the screen with a
     * notice, or shows a secret this once.
     */
    const act = (adminScreen: boolean, render: Render, fn: Act) => async (req: FastifyRequest, reply: FastifyReply) => {
      const principal = await signedIn(req);
      if (!principal) return notSignedIn(req, reply);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const presented = typeof body.csrf === 'string' ? body.csrf : '';
      if (!safeEqual(presented, csrfToken(key, principal.sid!))) {
        hub.audit.record({ type: 'access_denied', outcome: 'failure', reason: 'csrf_token_mismatch', method: req.method, path: req.url.split('?')[0]!.slice(0, 200), principal, ip: req.ip, request_id: req.id });
        return refusal(reply, principal, new OAuthError('access_denied', 'This form is out of date or did not come from this console: reload the page and try again.', { status: 403 }));
      }
      const actor = actorOf(req, principal);
      let outcome: Awaited<ReturnType<Act>>;
      try {
        outcome = await fn(actor, body);
      } catch (e) {
        const err = toOAuthError(e);
        if (err.status >= 500) throw e;
        // Not allowed at all: the refusal page. Allowed, but this change refused: the screen again, saying why.
        if (err.status === 401 || (err.status === 403 && !hub.authorizer.decide(principal, { permission: adminScreen ? 'admin:manage' : null, path: actor.path }).allowed)) {
          return refusal(reply, principal, err);
        }
        return show(req, reply, adminScreen, render, { error: err.description }, err.status);
      }
      if ('redirect' in outcome) return reply.header('cache-control', 'no-store').redirect(outcome.redirect, 303);
      return show(req, reply, adminScreen, render, outcome.flash, outcome.status ?? 200);
    };

    // --- Overview ---
    app.get('/auth/admin', async (_req, reply) => reply.redirect('/auth/admin/', 301));
    app.get('/auth/admin/', async (req, reply) => show(req, reply, true, async (actor, ctx) => overviewScreen({ minutes: admin.activity(actor) }, ctx)));

    // --- API keys ---
    const apiKeys: Render = async (actor, ctx) => apiKeysScreen(await admin.listApiKeys(actor), roles, ctx);
    app.get(`${CONSOLE_PATH}/api-keys`, async (req, reply) => show(req, reply, true, apiKeys));
    app.post(`${CONSOLE_PATH}/api-keys`, act(true, apiKeys, async (actor, b) => {
      const role = text(b.role);
      const scopes = words(b.scopes);
      const { key: secret, record } = await admin.createApiKey(actor, {
        name: text(b.name), roles: role ? [role] : [], ...(scopes.length ? { scopes } : {}), ...(text(b.expires_in) ? { expires_in: text(b.expires_in) } : {}),
      });
      return { status: 201, flash: { notice: `API key "${record.name}" created.`, secret: { label: 'The new API key', value: secret } } };
    }));
    app.post(`${CONSOLE_PATH}/api-keys/revoke`, act(true, apiKeys, async (actor, b) => {
      await admin.revokeApiKey(actor, text(b.id));
      return { redirect: `${CONSOLE_PATH}/api-keys?done=api_key_revoked` };
    }));

    // --- Service accounts ---
    const accounts: Render = async (actor, ctx) => serviceAccountsScreen(await admin.listServiceAccounts(actor), roles, ctx);
    app.get(`${CONSOLE_PATH}/service-accounts`, async (req, reply) => show(req, reply, true, accounts));
    app.post(`${CONSOLE_PATH}/service-accounts`, act(true, accounts, async (actor, b) => {
      const role = text(b.role);
      const scopes = words(b.scopes);
      const { clientSecret, account } = await admin.createServiceAccount(actor, {
        client_id: text(b.client_id), roles: role ? [role] : [], ...(text(b.name) ? { name: text(b.name) } : {}), ...(scopes.length ? { scopes } : {}),
      });
      return { status: 201, flash: { notice: `Service account "${account.clientId}" created.`, ...(clientSecret ? { secret: { label: `The client secret of ${account.clientId}`, value: clientSecret } } : {}) } };
    }));
    app.post(`${CONSOLE_PATH}/service-accounts/rotate`, act(true, accounts, async (actor, b) => {
      const rotated = await admin.rotateServiceAccountSecret(actor, text(b.id));
      return { flash: { notice: `New secret for "${rotated.clientId}"; the previous one keeps working until the grace period ends.`, secret: { label: `The new client secret of ${rotated.clientId}`, value: rotated.clientSecret } } };
    }));
    for (const [action, disabled] of [['disable', true], ['enable', false]] as const) {
      app.post(`${CONSOLE_PATH}/service-accounts/${action}`, act(true, accounts, async (actor, b) => {
        await admin.setServiceAccountDisabled(actor, text(b.id), disabled);
        return { redirect: `${CONSOLE_PATH}/service-accounts?done=service_account_${action}d` };
      }));
    }

    // --- OAuth clients ---
    const clients: Render = async (actor, ctx) => clientsScreen(await admin.listClients(actor), await admin.cimdAllowlist(actor), ctx);
    app.get(`${CONSOLE_PATH}/clients`, async (req, reply) => show(req, reply, true, clients));
    app.post(`${CONSOLE_PATH}/clients/revoke`, act(true, clients, async (actor, b) => {
      await admin.revokeClient(actor, text(b.id));
      return { redirect: `${CONSOLE_PATH}/clients?done=client_revoked` };
    }));

    app.post(`${CONSOLE_PATH}/clients/allowlist/add`, act(true, clients, async (actor, b) => {
      await admin.setCimdAllowlist(actor, { hosts: [...await admin.cimdAllowlist(actor), text(b.host)] });
      return { redirect: `${CONSOLE_PATH}/clients?done=allowlist_changed` };
    }));
    app.post(`${CONSOLE_PATH}/clients/allowlist/remove`, act(true, clients, async (actor, b) => {
      const host = text(b.host).toLowerCase();
      await admin.setCimdAllowlist(actor, { hosts: (await admin.cimdAllowlist(actor)).filter((h) => h !== host) });
      return { redirect: `${CONSOLE_PATH}/clients?done=allowlist_changed` };
    }));

    // --- Sessions ---
    const userOf = (req: FastifyRequest) => text((req.query as Record<string, unknown>).user).slice(0, 200);
    app.get(`${CONSOLE_PATH}/sessions`, async (req, reply) => show(req, reply, true, async (actor, ctx) => {
      const user = userOf(req);
      return sessionsScreen(await admin.listSessions(actor, user), user, ctx);
    }));
    app.post(`${CONSOLE_PATH}/sessions/end`, act(true, async (actor, ctx) => sessionsScreen(await admin.listSessions(actor), '', ctx), async (actor, b) => {
      await admin.endSession(actor, text(b.id));
      const user = text(b.user).slice(0, 200);
      return { redirect: `${CONSOLE_PATH}/sessions?${new URLSearchParams({ ...(user ? { user } : {}), done: 'session_ended' })}` };
    }));

    // --- Signing keys ---
    const signingKeys: Render = async (actor, ctx) => signingKeysScreen(await admin.listSigningKeys(actor), ctx);
    app.get(`${CONSOLE_PATH}/signing-keys`, async (req, reply) => show(req, reply, true, signingKeys));
    app.post(`${CONSOLE_PATH}/signing-keys/rotate`, act(true, signingKeys, async (actor) => {
      await admin.rotateSigningKey(actor);
      return { redirect: `${CONSOLE_PATH}/signing-keys?done=signing_key_rotated` };
    }));

    // --- Revocations ---
    const revocations: Render = async (actor, ctx) => {
      // Reading the screen is an admin action too: the one rule, through the service.
      await admin.listSigningKeys(actor);
      return revocationsScreen(ctx);
    };
    app.get(`${CONSOLE_PATH}/revocations`, async (req, reply) => show(req, reply, true, revocations));
    app.post(`${CONSOLE_PATH}/revocations`, act(true, revocations, async (actor, b) => {
      await admin.revoke(actor, { type: text(b.type), id: text(b.id) });
      return { redirect: `${CONSOLE_PATH}/revocations?done=revoked` };
    }));

    // --- Audit log ---
    app.get(`${CONSOLE_PATH}/audit`, async (req, reply) => show(req, reply, true, async (actor, ctx) => {
      const q = req.query as Record<string, unknown>;
      const f: AuditFilterView = { principal: text(q.principal).slice(0, 200), type: text(q.type), outcome: text(q.outcome), from: text(q.from), to: text(q.to) };
      const from = utcMs(f.from);
      const to = utcMs(f.to);
      const pageNo = Number.parseInt(text(q.page), 10);
      try {
        const found = await admin.queryAudit(actor, {
          ...(f.principal ? { principal: f.principal } : {}), ...(f.type ? { type: f.type } : {}), ...(f.outcome ? { outcome: f.outcome } : {}),
          ...(from !== undefined ? { from } : {}),
          // "To 14:05" includes the whole minute.
          ...(to !== undefined ? { to: to + 59_999 } : {}),
          ...(pageNo > 0 ? { page: pageNo } : {}),
        });
        return auditScreen(found, f, ctx);
      } catch (e) {
        if (e instanceof OAuthError && e.error === 'not_found') return auditScreen(null, f, ctx);
        if (e instanceof OAuthError && e.error === 'invalid_request') return auditScreen({ events: [], total: 0, page: 1, pages: 1 }, f, { ...ctx, flash: { error: e.description } });
        throw e;
      }
    }));

    // --- Personal API keys: any signed-in user ---
    const personal: Render = async (actor, ctx) => {
      const p = actor.principal;
      const permissions = hub.authorizer.permissions(p);
      return personalKeysScreen(await admin.listOwnApiKeys(actor), permissions, p.email ?? p.name ?? p.sub, ctx);
    };
    app.get(PERSONAL_KEYS_PATH, async (req, reply) => show(req, reply, false, personal));
    app.post(PERSONAL_KEYS_PATH, act(false, personal, async (actor, b) => {
      const scopes = words(b.scopes);
      const { key: secret, record } = await admin.createOwnApiKey(actor, {
        name: text(b.name), ...(scopes.length ? { scopes } : {}), ...(text(b.expires_in) ? { expires_in: text(b.expires_in) } : {}),
      });
      return { status: 201, flash: { notice: `API key "${record.name}" created.`, secret: { label: 'Your new API key', value: secret } } };
    }));
    app.post(`${PERSONAL_KEYS_PATH}/revoke`, act(false, personal, async (actor, b) => {
      await admin.revokeOwnApiKey(actor, text(b.id));
      return { redirect: `${PERSONAL_KEYS_PATH}?done=api_key_revoked` };
    }));
  };
}
