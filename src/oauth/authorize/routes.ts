/**
 * The hub as the OAuth 2.1 authorization server for MCP clients and the CLI:
 * /auth/authorize (+ consent), /auth/register (RFC 7591), RFC 9728 protected resource metadata,
 * and the authorization_code grant. Sign-in itself is federated to the configured IdP through
 * the session the sign-in routes create.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import { REGISTRATION_CORS, withCors } from '../../http/cors.ts';
import { limitPerMinute } from '../../http/rate-limit.ts';
import { noStore, sendError } from '../../http/reply.ts';
import { sendErrorPage, sendPage } from '../../pages/respond.ts';
import { DEFAULT_ROUTES, routePermission } from '../../rbac/routes.ts';
import { comesFromOwnOrigin } from '../../sessions/origin.ts';
import type { Principal } from '../../authn/principal.ts';
import { unmetAuthentication } from '../../authz/authentication.ts';
import { reauthenticationQuery } from '../../oidc/login.ts';
import { isOpenIdProvider } from '../openid/provider.ts';
import { authorizationRequestParams, pushRequest, takePushedRequest } from '../par/pushed-requests.ts';
import { classifyScope, IDENTITY_SCOPES, narrowToHeld, parseScope } from '../token/scope.ts';
import { issueCode } from './codes.ts';
import { hasConsent, rememberConsent, savePending, takePending } from './consent.ts';
import { consentPage } from './page.ts';
import { AuthorizePageError, AuthorizeRedirectError, checkAuthorizationRequest, redirectBack, type AuthorizationRequest } from './request.ts';

const NEXT_STEP = 'Go back to the application that sent you here and start its sign-in again. If this page comes back, '
  + 'the application is not set up for this server: tell its developer or your administrator, with the request id below.';

export function mcpResource(hub: Hub): string {
  return `${hub.config.publicUrl}/mcp`;
}

/**
 * The resources (RFC 8707) an authorization request may ask for: only audiences the hub accepts
 * (a token for anything else would be useless here, and passthrough-prone). The origin root is
 * good for every path; /mcp only for /mcp (src/authz).
 */
export function authorizationResources(hub: Hub): { resources: string[]; defaultResource: string } {
  return { resources: [...new Set([mcpResource(hub), hub.config.jwt.audience, hub.config.publicUrl])], defaultResource: mcpResource(hub) };
}

/**
 * The scopes asked, as the hub knows them (RFC 6749 §3.3): an unknown one is `invalid_scope`
 * (§4.1.2.1), never ignored, and so is `openid` where the hub issues no ID tokens. Throws OAuthError.
 */
export function askedScopes(hub: Hub, request: Pick<AuthorizationRequest, 'scope'>): { permissions: string[]; identity: string[] } {
  const asked = classifyScope(parseScope(request.scope), hub.authorizer, true);
  if (!isOpenIdProvider(hub.config) && asked.identity.includes('openid')) throw new OAuthError('invalid_scope', 'This hub signs with HS256 and publishes no key: it issues no ID tokens (scope "openid").');
  return asked;
}

/** RFC 9126 §4: the parameters of an authorization request, from the query or, given a request_uri, as they were pushed. */
async function requestParameters(hub: Hub, query: Record<string, unknown>): Promise<{ params: Record<string, unknown>; pushed: boolean }> {
  const requestUri = query.request_uri;
  if (requestUri === undefined) return { params: query, pushed: false };
  const clientId = query.client_id;
  if (typeof requestUri !== 'string' || typeof clientId !== 'string' || clientId === '') {
    throw new AuthorizePageError('A request with a request_uri needs it and the client_id, once each.');
  }
  const pushed = await takePushedRequest(hub.store, requestUri);
  // §4: only what was pushed counts; the rest of the query is ignored.
  if (!pushed || pushed.clientId !== clientId) {
    throw new AuthorizePageError('This authorization request is unknown, expired or was already used.');
  }
  return { params: pushed.params, pushed: true };
}

export function authorizationServerRoutes(hub: Hub) {
  const clients = hub.clients;
  const { resources, defaultResource } = authorizationResources(hub);


  const session = async (req: FastifyRequest): Promise<Principal | null> => {
    try {
      const p = await hub.authenticator.authenticate({ headers: {}, cookies: req.cookies });
      return p.auth_method === 'session' ? p : null;
    } catch {
      return null;
    }
  };

  const { brand } = hub.config;
  // Until the client and its redirect URI are known good nothing can be sent back to the
  // application (RFC 6749 §4.1.2.1): the page says what to do instead.
  const showError = (reply: FastifyReply, status: number, message: string, next = NEXT_STEP) =>
    sendErrorPage(reply, { status, title: 'This sign-in request cannot be completed', message, next }, { brand });

  const finish = async (reply: FastifyReply, request: AuthorizationRequest, user: Principal, scopes: string[], status = 302) => {
    const code = await issueCode(hub.store, {
      clientId: request.client.client_id, redirectUri: request.redirectUri, redirectUriSent: request.redirectUriSent, codeChallenge: request.codeChallenge,
      resource: request.resource, scope: scopes.join(' '), ...(request.nonce !== undefined ? { nonce: request.nonce } : {}),
      user: {
        sub: user.sub, roles: user.roles, groups: user.groups,
        ...(user.email ? { email: user.email } : {}), ...(user.name ? { name: user.name } : {}),
        ...(user.provider ? { provider: user.provider } : {}), ...(user.tenant ? { tenant: user.tenant } : {}),
        ...(user.sid ? { sid: user.sid } : {}),
        ...(user.auth_time !== undefined ? { authTime: user.auth_time } : {}), ...(user.acr ? { acr: user.acr } : {}), ...(user.amr ? { amr: user.amr } : {}),
      },
    }, hub.config.authorizationServer.codeLifetime);
    hub.audit.record({ type: 'login', outcome: 'success', action: 'authorization_code_issued', principal: user, client: request.client.client_id, resource: request.resource });
    return reply.code(status).header('cache-control', 'no-store')
      .redirect(redirectBack(request.redirectUri, { code, state: request.state, iss: hub.config.jwt.issuer }), status);
  };

  const rules = hub.rbac.config.routes ?? DEFAULT_ROUTES;
  // The documented default of /mcp: the permissions its requests need (tools/call: mcp:*), none of the rest.
  // (A table without a rule for /mcp makes the proxy ask for upstream:access there.)
  const mcpDefault = [...new Set(['mcp:*', ...['POST', 'GET', 'DELETE']
    .map((m) => routePermission(rules, m, '/mcp').permission)
    .map((p) => p === undefined ? 'upstream:access' : p)
    .filter((p): p is string => typeof p === 'string')])];

  /**
   * The permissions a request leaves unsaid: the client's registered `scope` (its known
   * permissions), else the resource's default — for /mcp what MCP needs, for the origin root or
   * the general audience everything the user holds.
   */
  const defaultPermissions = (request: AuthorizationRequest, held: readonly string[]): readonly string[] => {
    const registered = (request.client.scope ?? '').split(' ').filter((s) => s && !IDENTITY_SCOPES.includes(s) && hub.authorizer.knows(s));
    if (registered.length) return registered;
    return request.resource === mcpResource(hub) ? mcpDefault : held;
  };

  /**
   * Scopes granted (RFC 6749 §3.3): an unknown scope is `invalid_scope` (§4.1.2.1), never
   * ignored; of the permissions asked (or, none asked, of {@link defaultPermissions}), what the
   * user holds; and the OpenID Connect scopes asked. Throws OAuthError invalid_scope.
   */
  const grantedScopes = (request: AuthorizationRequest, user: Principal): { permissions: string[]; identity: string[] } => {
    const asked = askedScopes(hub, request);
    const held = hub.authorizer.permissions(user);
    const wanted = asked.permissions.length ? asked.permissions : defaultPermissions(request, held);
    return { permissions: narrowToHeld(wanted, held), identity: asked.identity };
  };

  return async function routes(app: FastifyInstance): Promise<void> {
    app.get('/auth/authorize', async (req, reply) => {
      let request: AuthorizationRequest;
      let params: Record<string, unknown>;
      let pushed: boolean;
      try {
        ({ params, pushed } = await requestParameters(hub, req.query as Record<string, unknown>));
        request = await checkAuthorizationRequest(params, clients, { resources, defaultResource });
        if (hub.config.authorizationServer.requirePar && !pushed) {
          throw new AuthorizeRedirectError(request.redirectUri, 'invalid_request',
            'This server accepts pushed authorization requests only (RFC 9126): POST the request to its pushed_authorization_request_endpoint and send the request_uri.', request.state);
        }
      } catch (e) {
        if (e instanceof AuthorizePageError) return showError(reply, e.status, e.message);
        if (e instanceof AuthorizeRedirectError) {
          return reply.redirect(redirectBack(e.redirectUri, { error: e.error, error_description: e.description, state: e.state, iss: hub.config.jwt.issuer }));
        }
        throw e;
      }
      const user = await session(req);
      // OIDC Core §3.1.2.1 / RFC 9470: a sign-in too old (max_age) or of another class (acr_values) is done again at the IdP.
      const stepUp = request.maxAge !== undefined || request.acrValues ? { ...(request.maxAge !== undefined ? { maxAge: request.maxAge } : {}), ...(request.acrValues ? { acrValues: request.acrValues } : {}) } : undefined;
      if (!user || (stepUp && unmetAuthentication(user, stepUp, Math.floor(hub.now() / 1000)))) {
        // Sign in through the IdP first (the same one, to step up), then come back here. A pushed
        // request was used up: the way back carries a new one, alive as long as a sign-in may take,
        // of the request's own parameters only (one for one: the old one is gone).
        const returnTo = pushed
          ? `/auth/authorize?${new URLSearchParams({ client_id: request.client.client_id, request_uri: await pushRequest(hub.store, { clientId: request.client.client_id, params: authorizationRequestParams(params) }, hub.config.security.stateTimeout) })}`
          : req.url;
        const login = new URLSearchParams({ returnTo, ...(user?.provider ? { provider: user.provider } : {}), ...(stepUp ? reauthenticationQuery(stepUp) : {}) });
        return reply.redirect(`/auth/login?${login}`);
      }
      let granted: { permissions: string[]; identity: string[] };
      try {
        granted = grantedScopes(request, user);
      } catch (e) {
        if (!(e instanceof OAuthError)) throw e;
        return reply.redirect(redirectBack(request.redirectUri, { error: e.error, error_description: e.description, state: request.state, iss: hub.config.jwt.issuer }));
      }
      if (granted.permissions.length === 0) {
        return reply.redirect(redirectBack(request.redirectUri, { error: 'access_denied', error_description: 'This user holds none of the permissions asked for.', state: request.state, iss: hub.config.jwt.issuer }));
      }
      const scopes = [...granted.permissions, ...granted.identity];
      // Remembered per user as the hub names them (alice of provider A is not alice of provider B).
      const who = hub.identities.idOf(user);
      if (await hasConsent(hub.store, who, request, scopes)) return finish(reply, request, user, scopes);
      const pendingId = await savePending(hub.store, { request, scopes, sub: who, sid: user.sid }, 600);
      // The decision is answered by a redirect to the client: its origin must be a form-action source.
      return sendPage(reply, 200, consentPage({ client: request.client, redirectUri: request.redirectUri, scopes, resource: request.resource, pendingId, user: user.email ?? user.name ?? user.sub }, brand),
        { formAction: [new URL(request.redirectUri).origin], brand });
    });

    app.post('/auth/authorize/decision', async (req, reply) => {
      if (!comesFromOwnOrigin(req.headers, hub.config.publicUrl)) return showError(reply, 403, 'This decision did not come from the hub\'s own consent page.');
      const body = (req.body ?? {}) as Record<string, unknown>;
      const id = typeof body.request === 'string' ? body.request : '';
      const user = await session(req);
      const pending = id ? await takePending(hub.store, id) : null;
      if (!pending || !user || pending.sub !== hub.identities.idOf(user) || pending.sid !== user.sid) {
        return showError(reply, 400, 'This consent request expired or belongs to another session. Start again from your application.');
      }
      const { request, scopes } = pending;
      if (body.decision !== 'allow') {
        hub.audit.record({ type: 'login', outcome: 'failure', reason: 'access_denied', principal: user, client: request.client.client_id });
        return reply.redirect(redirectBack(request.redirectUri, { error: 'access_denied', error_description: 'The user denied the request.', state: request.state, iss: hub.config.jwt.issuer }), 303);
      }
      await rememberConsent(hub.store, hub.identities.idOf(user), request, scopes);
      return finish(reply, request, user, scopes, 303);
    });

    app.post('/auth/register', withCors(app, ['/auth/register'], REGISTRATION_CORS), async (req, reply) => {
      try {
        if (!hub.config.authorizationServer.dynamicRegistration) throw new OAuthError('not_found', 'Dynamic client registration is disabled.');
        await limitPerMinute(hub.store, hub.now, reply, req.ip, { counter: 'dcr_rate', limit: hub.config.authorizationServer.registrationRateLimit, what: 'registrations' });
        const { client, clientSecret } = await clients.register(req.body);
        hub.audit.record({ type: 'admin', outcome: 'success', action: 'client_registered', client: client.client_id, ip: req.ip, request_id: req.id });
        const { client_secret_hash: _h, source: _s, ...metadata } = client;
        return noStore(reply).code(201).send({
          ...metadata,
          ...(clientSecret ? { client_secret: clientSecret, client_secret_expires_at: 0 } : {}),
        });
      } catch (e) {
        return sendError(reply, e);
      }
    });
  };
}
