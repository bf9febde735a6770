/**
 * The pushed authorization request endpoint (RFC 9126 §2): `POST /auth/par`. A confidential client
 * authenticates as at the token endpoint, a public one names itself by `client_id`; the request is
 * checked exactly as /auth/authorize checks it, then stored (src/oauth/par/pushed-requests.ts), and
 * the answer is 201 with its `request_uri` and `expires_in`.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorCodes, OAuthError, toOAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import { TOKEN_CORS, withCors } from '../../http/cors.ts';
import { FORM_BODY_LIMIT } from '../../http/form.ts';
import { limitPerMinute } from '../../http/rate-limit.ts';
import { noStore, sendError } from '../../http/reply.ts';
import { askedScopes, authorizationResources } from '../authorize/routes.ts';
import { AuthorizePageError, AuthorizeRedirectError, checkAuthorizationRequest } from '../authorize/request.ts';
import type { OAuthClient } from '../clients/metadata.ts';
import { authenticateOAuthClient, readClientCredentials } from '../token/authenticate-client.ts';
import { parseBody, type Params } from '../token/parse-body.ts';
import { authorizationRequestParams, pushRequest, PUSHED_REQUEST_LIFETIME } from './pushed-requests.ts';

export const PAR_PATH = '/auth/par';

export function pushedAuthorizationRoutes(hub: Hub) {
  const where = authorizationResources(hub);
  return async function routes(app: FastifyInstance): Promise<void> {
    // The form limit for any body: a JSON one is refused below, after at most this much is read.
    app.post(PAR_PATH, { ...withCors(app, [PAR_PATH], TOKEN_CORS), bodyLimit: FORM_BODY_LIMIT }, async (req, reply) => {
      let clientId: string | undefined;
      try {
        // Before anything is read or stored: anyone may push (public clients name themselves).
        await limitPerMinute(hub.store, hub.now, reply, req.ip, { counter: 'par_rate', limit: hub.config.authorizationServer.parRateLimit, what: 'pushed authorization requests' });
        // RFC 9126 §2.1: the request is form-encoded (and so under the 64 KiB form limit).
        if (!isForm(req.headers['content-type'])) {
          throw new OAuthError('invalid_request', 'A pushed authorization request must be sent as application/x-www-form-urlencoded (RFC 9126 §2.1).');
        }
        const params = parseBody(req.body);
        const client = await authenticate(hub, params, req.headers.authorization);
        clientId = client.client_id;
        const request = await checkPushed(hub, client, params, where);
        const requestUri = await pushRequest(hub.store, { clientId: client.client_id, params: request }, PUSHED_REQUEST_LIFETIME);
        hub.audit.record({ type: 'login', outcome: 'success', action: 'authorization_request_pushed', client: client.client_id, ip: req.ip, request_id: req.id });
        return noStore(reply).code(201).send({ request_uri: requestUri, expires_in: PUSHED_REQUEST_LIFETIME });
      } catch (e) {
        hub.audit.record({ type: 'login', outcome: 'failure', action: 'authorization_request_pushed', reason: toOAuthError(e).error, client: clientId, ip: req.ip, request_id: req.id });
        return sendError(reply, e);
      }
    });
  };
}

function isForm(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

/** RFC 9126 §2.1: the client authenticates as at the token endpoint (public clients: client_id alone). */
async function authenticate(hub: Hub, params: Params, authorization: string | string[] | undefined): Promise<OAuthClient> {
  const creds = readClientCredentials(params, Array.isArray(authorization) ? authorization[0] : authorization);
  const clientId = creds?.clientId ?? params.client_id;
  if (!clientId) throw new OAuthError('invalid_request', 'client_id is required (or client authentication naming the client).');
  const client = await authenticateOAuthClient(hub, clientId, creds);
  // §2.1: a client_id sent along must be the authenticated client's.
  if (params.client_id !== undefined && params.client_id !== client.client_id) throw new OAuthError('invalid_request', 'client_id differs from the authenticated client.');
  return client;
}

/**
 * The authorization request's parameters, checked as /auth/authorize checks them
 * (src/oauth/authorize/request.ts) with its errors as RFC 6749 §5.2 JSON: one the authorization
 * endpoint would send back to the client keeps its code (`invalid_scope`, `invalid_target`, ...),
 * one it would show on a page is `invalid_request`. §2.1: `request_uri` cannot be pushed.
 */
async function checkPushed(hub: Hub, client: OAuthClient, params: Params, where: { resources: readonly string[]; defaultResource: string }): Promise<Record<string, string>> {
  if (params.request_uri !== undefined) throw new OAuthError('invalid_request', 'A pushed authorization request cannot carry a request_uri (RFC 9126 §2.1).');
  if (params.request !== undefined) throw new OAuthError('invalid_request', 'Request objects (the request parameter) are not supported.');
  // Only the authorization request's own parameters are checked and kept; client authentication
  // and anything unknown are no part of it.
  const request = authorizationRequestParams({ ...params, client_id: client.client_id });
  try {
    const checked = await checkAuthorizationRequest(request, hub.clients, where);
    askedScopes(hub, checked);
  } catch (e) {
    if (e instanceof AuthorizePageError) throw new OAuthError('invalid_request', e.message);
    if (e instanceof AuthorizeRedirectError) {
      throw new OAuthError(Object.hasOwn(ErrorCodes, e.error) ? e.error as keyof typeof ErrorCodes : 'invalid_request', e.description, { status: 400 });
    }
    throw e;
  }
  return request;
}
