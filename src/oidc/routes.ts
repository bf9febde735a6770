/**
 * HTTP edge of the sign-in: /auth/login, /auth/callback, /auth/logout, /auth/account and the
 * pages' stylesheet, over the hub's providers and sessions; and the guard on cookie-authenticated
 * state-changing requests (CSRF), hub-wide.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { OAuthError, toOAuthError } from '../errors.ts';
import type { Hub } from '../hub.ts';
import { sendError } from '../http/reply.ts';
import { accountPage, continuePage, loginPage, signedOutPage, STYLESHEET_PATH, stylesheet } from '../pages/render.ts';
import { sendErrorPage, sendPage, type PageOptions } from '../pages/respond.ts';
import { comesFromOwnOrigin, isStateChanging } from '../sessions/origin.ts';
import { completeLogin } from './callback.ts';
import { beginLogin, readReauthentication, reauthenticationQuery, type LoginDeps, type Reauthentication } from './login.ts';
import { safeReturnTo } from './return-to.ts';
import * as client from 'openid-client';

const LOGIN_CLIENT_ID = 'mimir-login';

export function oidcRoutes(hub: Hub) {
  return fp(async function signInRoutes(app: FastifyInstance): Promise<void> {
    const { config, providers, sessions } = hub;
    // Sessions' storage: `cookie` mode keeps only the sign-out list in the hub store.
    const deps: LoginDeps = { store: hub.store, providers, security: config.security, now: hub.now };
    const cookie = config.session.cookie;
    const bindingCookie = cookie.loginName;
    const sessionCookieOptions = { path: '/', httpOnly: cookie.httpOnly, secure: cookie.secure, sameSite: cookie.sameSite } as const;

    // CSRF: a state-changing request carrying only the session cookie must come from our origin.
    // Callback style: it runs on every request, and nearly always just lets it through.
    app.addHook('onRequest', (req, reply, done) => {
      if (req.headers.cookie === undefined || !isStateChanging(req.method) || !req.cookies?.[cookie.name]) return done();
      if (req.headers.authorization !== undefined || req.headers['x-api-key'] !== undefined) return done();
      if (!comesFromOwnOrigin(req.headers, config.publicUrl)) {
        hub.audit.record({ type: 'access_denied', outcome: 'failure', reason: 'cross_origin_cookie_request', method: req.method, path: req.url.split('?')[0]!.slice(0, 200), ip: req.ip, request_id: req.id });
        sendError(reply, new OAuthError('access_denied', 'Cross-site requests with the session cookie are refused.', { status: 403 }));
        return undefined;
      }
      return done();
    });

    const wantsJson = (req: FastifyRequest) => {
      const accept = String(req.headers.accept ?? '');
      return /application\/json/.test(accept) && !/text\/html/.test(accept);
    };

    const { brand } = config;
    const css = stylesheet(brand);
    const page = (reply: FastifyReply, status: number, html: string, options: PageOptions = {}) => sendPage(reply, status, html, { ...options, brand });

    const fail = (req: FastifyRequest, reply: FastifyReply, e: unknown, retryHref = '/auth/login') => {
      const err = toOAuthError(e);
      if (wantsJson(req)) return sendError(reply, err);
      return sendErrorPage(reply, { status: err.status, title: titleFor(err), message: err.description, next: nextStepFor(err), retryHref }, {
        brand, error: err.error, ...(err.detail ? { detail: err.detail } : {}),
      });
    };

    app.get(STYLESHEET_PATH, async (_req, reply) =>
      reply.header('cache-control', 'public, max-age=3600').type('text/css; charset=utf-8').send(css));

    app.get('/auth/login', async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const returnTo = safeReturnTo(q.returnTo);
      let providerId = typeof q.provider === 'string' ? q.provider : undefined;
      // RFC 9470 step-up: `prompt=login`, `max_age`, `acr_values`, passed on to the IdP.
      let reauthenticate: Reauthentication | undefined;
      try {
        reauthenticate = readReauthentication(q);
      } catch (e) {
        return fail(req, reply, e);
      }
      if (!providerId) {
        // One provider: straight to it (the seed's Test 1 expects a 302). Several: choose.
        if (providers.all.length !== 1) {
          const status = providers.all.length ? 200 : 404;
          const again = reauthenticate ? reauthenticationQuery(reauthenticate) : {};
          return page(reply, status, loginPage(providers.all.map((p) => ({ id: p.id, name: p.name })), returnTo, brand, again));
        }
        providerId = providers.all[0]!.id;
      }
      try {
        const { redirectTo, binding } = await beginLogin(deps, { providerId, returnTo, reauthenticate });
        reply.setCookie(bindingCookie, binding, {
          path: '/auth/callback', httpOnly: true, secure: cookie.secure, sameSite: 'lax', maxAge: config.security.stateTimeout,
        });
        return reply.header('cache-control', 'no-store').redirect(redirectTo, 302);
      } catch (e) {
        hub.audit.record({ type: 'login', outcome: 'failure', reason: toOAuthError(e).error, provider: providerId.slice(0, 64), ip: req.ip, request_id: req.id });
        return fail(req, reply, e, `/auth/login?provider=${encodeURIComponent(providerId)}`);
      }
    });

    app.get('/auth/callback', async (req, reply) => {
      reply.clearCookie(bindingCookie, { path: '/auth/callback' });
      try {
        const done = await completeLogin(deps, { query: req.query as Record<string, unknown>, binding: req.cookies?.[bindingCookie] });
        const p = done.identity.principal;
        if (done.userinfo.status === 'failed') {
          // The sign-in goes on with the ID token's claims (OIDC Core §5.3 is a completion, not a condition).
          req.log.warn({ provider: done.provider.id, missing: done.userinfo.missing, detail: done.userinfo.reason },
            'userinfo could not be read; the sign-in goes on with the ID token\'s claims');
        }
        if (done.identity.groupsOverage) {
          req.log.warn({ provider: done.provider.id, sub: p.sub }, 'Azure groups overage: groups are not in the token; group-based roles not applied');
        }
        const identity = {
          sub: p.sub, roles: p.roles, groups: p.groups, provider: done.provider.id,
          ...(p.email ? { email: p.email } : {}), ...(p.name ? { name: p.name } : {}), ...(p.tenant ? { tenant: p.tenant } : {}),
          ...done.authentication,
        };
        // A new session with a fresh id, never an earlier cookie (no session fixation).
        const old = req.cookies?.[cookie.name];
        if (old) await sessions.destroy(old).catch(() => null);
        // The family names the session (sid), so a refresh can find it to renew the IdP tokens.
        const id = sessions.newId();
        // When and how the user authenticated, for step-up (RFC 9470): only as the IdP asserted it.
        // A sign-in is not an authentication: without prompt=login the IdP may answer from its own
        // session of days ago, and many omit auth_time unless max_age was asked. Unknown stays
        // unknown (no claim), and a max_age is then unmet (src/authz/authentication.ts); the hub's
        // step-up sends max_age, which makes auth_time REQUIRED (OIDC Core §3.1.2.1).
        const authentication = { ...(done.authentication.authTime !== undefined ? { authTime: done.authentication.authTime } : {}), ...(done.authentication.acr ? { acr: done.authentication.acr } : {}) };
        const refresh = await hub.refreshTokens.issue({
          sub: p.sub, clientId: LOGIN_CLIENT_ID, scope: '', roles: p.roles, groups: p.groups, provider: done.provider.id,
          publicClient: true, sid: id.sid, ...authentication,
          ...(p.email ? { email: p.email } : {}), ...(p.name ? { name: p.name } : {}), ...(p.tenant ? { tenant: p.tenant } : {}),
        });
        const { cookie: value, session } = await sessions.create(identity, {
          refreshFamily: refresh.familyId, groupsOverage: done.identity.groupsOverage,
          ...(done.idpRefreshToken ? { idpRefreshToken: done.idpRefreshToken } : {}), ...(done.idToken ? { idToken: done.idToken } : {}),
          ...(done.idpAccessToken ? { idpAccessToken: done.idpAccessToken } : {}),
          ...(done.idpAccessTokenExpiresAt ? { idpAccessTokenExpiresAt: done.idpAccessTokenExpiresAt } : {}),
        }, id);
        reply.setCookie(cookie.name, value, sessionCookieOptions);
        hub.audit.record({
          type: 'login', outcome: 'success', principal: { sub: p.sub, auth_method: 'session', provider: done.provider.id },
          sid: session.sid, groups_overage: done.identity.groupsOverage || undefined, ip: req.ip, request_id: req.id,
        });
        if (wantsJson(req)) {
          const access = await hub.signer.issue({
            sub: p.sub, client_id: LOGIN_CLIENT_ID, roles: p.roles, groups: p.groups, auth_method: 'oauth', provider: done.provider.id, sid: session.sid, fid: refresh.familyId,
            ...(authentication.authTime !== undefined ? { auth_time: authentication.authTime } : {}), ...(authentication.acr ? { acr: authentication.acr } : {}),
            ...(p.email ? { email: p.email } : {}), ...(p.name ? { name: p.name } : {}), ...(p.tenant ? { tenant: p.tenant } : {}),
          }, config.jwt.accessTokenLifetime);
          return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({
            access_token: access.token, refresh_token: refresh.token, token_type: 'Bearer', expires_in: access.expiresIn,
          });
        }
        return page(reply, 200, continuePage(done.returnTo, brand));
      } catch (e) {
        const err = toOAuthError(e);
        hub.audit.record({ type: 'login', outcome: 'failure', reason: err.error, detail: err.detail, ip: req.ip, request_id: req.id });
        return fail(req, reply, err);
      }
    });

    app.post('/auth/logout', async (req, reply) => {
      const value = req.cookies?.[cookie.name];
      // With the attributes it was set with: a browser ignores a __Host- cookie's removal without Secure.
      reply.clearCookie(cookie.name, sessionCookieOptions);
      const session = value ? await sessions.destroy(value) : null;
      let endSessionUrl: string | undefined;
      if (session) {
        // Every Mimir access token of this login stops working at once (RFC 7009 §2.1: tokens of
        // the same grant), for as long as any of them could still live.
        const until = Math.floor(hub.now() / 1000) + Math.max(config.jwt.accessTokenLifetime, config.serviceAccounts.tokenLifetime);
        await hub.revocations.revoke('sid', session.sid, until);
        if (session.refreshFamily) await hub.refreshTokens.revokeFamily(session.refreshFamily, 'logout').catch(() => false);
        hub.audit.record({ type: 'logout', outcome: 'success', principal: { sub: session.identity.sub, auth_method: 'session', provider: session.identity.provider }, sid: session.sid, ip: req.ip, request_id: req.id });
        endSessionUrl = await idpLogoutUrl(session.identity.provider, sessions.open(session, 'idToken'));
      }
      if (wantsJson(req)) return reply.header('cache-control', 'no-store').send({ signed_out: Boolean(session), ...(endSessionUrl ? { end_session_url: endSessionUrl } : {}) });
      if (endSessionUrl) return reply.redirect(endSessionUrl, 303);
      return page(reply, 200, signedOutPage(brand));
    });

    app.get('/auth/account', async (req, reply) => {
      const value = req.cookies?.[cookie.name];
      const found = value ? await sessions.read(value) : null;
      if (!found) return reply.header('cache-control', 'no-store').redirect('/auth/login?returnTo=%2Fauth%2Faccount', 302);
      if (found.reissue) reply.setCookie(cookie.name, found.reissue, sessionCookieOptions);
      const s = found.session;
      const provider = providers.get(s.identity.provider);
      const roles = s.identity.roles;
      const defaultRole = hub.rbac.config.defaultRole;
      // Through the one authorization rule (src/authz), as a session of these roles is authorized.
      const permissions = hub.authorizer.permissions({ roles, scopes: [], auth_method: 'session' });
      // Its sign-out form is answered by a redirect to the IdP's end-session endpoint, which form-action would block.
      return page(reply, 200, accountPage({
        sub: s.identity.sub, provider: provider?.name ?? s.identity.provider, roles, permissions,
        signedInAt: Math.floor(s.createdAt), expiresAt: sessions.expiresAt(s),
        ...(defaultRole && !roles.some((r) => hub.rbac.isKnownRole(r)) ? { defaultRole } : {}),
        ...(s.identity.name ? { name: s.identity.name } : {}), ...(s.identity.email ? { email: s.identity.email } : {}),
        ...(s.groupsOverage ? { groupsOverage: true } : {}),
      }, brand), { formAction: 'unrestricted' });
    });

    /** RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2) where the IdP supports it. */
    async function idpLogoutUrl(providerId: string, idToken: string | undefined): Promise<string | undefined> {
      const p = providers.get(providerId);
      if (!p) return undefined;
      try {
        const c = await providers.configuration(p);
        if (!c.serverMetadata().end_session_endpoint) return undefined;
        return client.buildEndSessionUrl(c, {
          post_logout_redirect_uri: `${config.publicUrl}/auth/login`,
          client_id: p.clientId,
          ...(idToken ? { id_token_hint: idToken } : {}),
        }).href;
      } catch {
        return undefined; // the IdP is down: the hub session is still ended
      }
    }
  }, { name: 'mimir-sign-in' });
}

/** What the person on an error page of the sign-in can do about it. */
function nextStepFor(e: OAuthError): string {
  switch (e.error) {
    case 'access_denied': return 'Sign in with an account that is allowed here, or ask your administrator for access.';
    case 'bad_gateway': return 'Try again in a few minutes; if the identity provider stays unreachable, tell your administrator.';
    case 'invalid_request':
    case 'invalid_grant': return 'Start the sign-in again from the beginning, in this browser.';
    default: return e.status >= 500 ? 'Try again; if it keeps happening, tell your administrator the request id below.' : 'Start the sign-in again.';
  }
}

function titleFor(e: OAuthError): string {
  switch (e.error) {
    case 'access_denied': return 'Access denied';
    case 'bad_gateway': return 'The identity provider is unreachable';
    case 'invalid_request': return 'The sign-in could not be completed';
    case 'invalid_grant': return 'The sign-in could not be verified';
    default: return e.status >= 500 ? 'Something went wrong' : 'The sign-in failed';
  }
}
