/**
 * POST /auth/token (RFC 6749 §3.2): an ordered list of small checks, then the grant — one of the
 * hub's own (`hub.grants`, src/oauth/token/grants.ts).
 */
import { dpopForTokenRequest } from '../../dpop/token-request.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import type { ServiceAccountRecord } from '../../service-accounts/index.ts';
import { authenticateClient, readClientCredentials } from './authenticate-client.ts';
import { parseBody, type Params } from './parse-body.ts';

export interface TokenResponse {
  body: { access_token: string; token_type: string; expires_in: number; scope?: string; refresh_token?: string; issued_token_type?: string; [k: string]: unknown };
  /** Non-secret facts for the audit log. */
  audit: { jti: string; sub: string; [k: string]: unknown };
}

export interface TokenRequest {
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  method: string;
  url: string;
}

export interface GrantContext {
  hub: Hub;
  params: Params;
  request: TokenRequest;
  /** The authenticated client, when the grant needs one. */
  client?: ServiceAccountRecord;
  /** RFC 9449 §5: thumbprint of the verified DPoP proof key; the issued token is bound to it. */
  dpopJkt?: string;
}

export type GrantHandler = (ctx: GrantContext) => Promise<TokenResponse>;

export interface Grant {
  /** Whether the client must authenticate (confidential clients only). */
  requiresClient: boolean;
  /** The grant authenticates its own clients (OAuth clients rather than service accounts). */
  authenticatesItself?: boolean;
  handle: GrantHandler;
}

/** `dpopNonce`: RFC 9449 §8.2, a fresh nonce for the `DPoP-Nonce` header of the answer. */
export async function handleTokenRequest(hub: Hub, request: TokenRequest): Promise<TokenResponse & { grantType: string; clientId?: string; dpopNonce?: string }> {
  const params = parseBody(request.body);
  const grantType = checkGrantType(hub, params);
  const grant = hub.grants.get(grantType)!;
  const authorization = first(request.headers.authorization);
  const creds = readClientCredentials(params, authorization);
  let client: ServiceAccountRecord | undefined;
  if (!grant.authenticatesItself && (grant.requiresClient || creds)) {
    client = await authenticateClient(hub, creds);
  }
  const dpop = await dpopForTokenRequest(hub, request);
  const ctx: GrantContext = { hub, params, request, ...(client ? { client } : {}), ...(dpop ? { dpopJkt: dpop.jkt } : {}) };
  const result = { ...await grant.handle(ctx), grantType, ...(dpop?.nextNonce ? { dpopNonce: dpop.nextNonce } : {}) };
  return client ? { ...result, clientId: client.clientId } : result;
}

function checkGrantType(hub: Hub, params: Params): string {
  const grantType = params.grant_type;
  if (!grantType) throw new OAuthError('invalid_request', 'The grant_type parameter is missing.');
  if (!hub.grants.has(grantType)) throw new OAuthError('unsupported_grant_type', `The grant type "${grantType.slice(0, 100)}" is not supported.`);
  return grantType;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
