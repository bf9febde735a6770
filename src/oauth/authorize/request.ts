/**
 * The authorization request (RFC 6749 §4.1.1, OAuth 2.1), checked in order. Until the client
 * and its redirect URI are known good, errors are shown to the user, never redirected
 * (RFC 6749 §4.1.2.1); after that they go back to the client with `state` and `iss` (RFC 9207).
 */
import { OAuthError } from '../../errors.ts';
import { parseAcrValues } from '../../authz/authentication.ts';
import type { OAuthClient } from '../clients/metadata.ts';
import { checkRedirectUri, redirectUriMatches } from '../clients/metadata.ts';
import type { ClientRegistry } from '../clients/registry.ts';

export interface AuthorizationRequest {
  client: OAuthClient;
  redirectUri: string;
  /** Whether the request named `redirectUri` (else: the client's one registered URI). */
  redirectUriSent: boolean;
  state?: string;
  codeChallenge: string;
  scope?: string;
  resource: string;
  /** OIDC Core §3.1.2.1: the client's value, echoed in the ID token. */
  nonce?: string;
  /** OIDC Core §3.1.2.1 / RFC 9470: the user must have authenticated at most this many seconds ago. */
  maxAge?: number;
  /** OIDC Core §3.1.2.1 / RFC 9470: authentication context classes asked for, in order of preference. */
  acrValues?: string[];
}

/** An error to show on a page (the redirect URI cannot be trusted). */
export class AuthorizePageError extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

/** An error to send back to the client's redirect URI. */
export class AuthorizeRedirectError extends Error {
  readonly redirectUri: string;
  readonly error: string;
  readonly description: string;
  readonly state: string | undefined;
  constructor(redirectUri: string, error: string, description: string, state: string | undefined) {
    super(description);
    this.redirectUri = redirectUri;
    this.error = error;
    this.description = description;
    this.state = state;
  }
}

type Query = Record<string, unknown>;

/** Every parameter `checkAuthorizationRequest` reads: all of an authorization request the hub keeps (RFC 9126 §2.1 pushes, re-pushes). */
export const AUTHORIZATION_REQUEST_PARAMS = [
  'client_id', 'redirect_uri', 'state', 'response_type', 'code_challenge', 'code_challenge_method',
  'resource', 'scope', 'nonce', 'max_age', 'acr_values',
] as const;

/**
 * A parameter sent at most once (RFC 6749 §3.1). Repeated: `repeated` is what is thrown — a page
 * until the client and its redirect URI are known good, after that an error sent back to the client.
 */
function single(q: Query, name: typeof AUTHORIZATION_REQUEST_PARAMS[number], repeated?: (description: string) => Error): string | undefined {
  const v = q[name];
  if (Array.isArray(v)) {
    const description = `The parameter ${name} is repeated.`;
    throw repeated ? repeated(description) : new AuthorizePageError(description);
  }
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export async function checkAuthorizationRequest(
  query: Query,
  clients: ClientRegistry,
  options: { resources: readonly string[]; defaultResource: string },
): Promise<AuthorizationRequest> {
  // 1. the client
  const clientId = single(query, 'client_id');
  if (!clientId) throw new AuthorizePageError('The request has no client_id.');
  let client: OAuthClient;
  try {
    client = await clients.get(clientId);
  } catch (e) {
    throw new AuthorizePageError(e instanceof OAuthError ? e.description : 'The client is unknown.');
  }

  // 2. its redirect URI: exact match (loopback: any port)
  const presented = single(query, 'redirect_uri');
  const redirectUri = presented ?? (client.redirect_uris.length === 1 ? client.redirect_uris[0] : undefined);
  if (!redirectUri) throw new AuthorizePageError('The request has no redirect_uri and the client registered several.');
  // The rules registration applies (RFC 6749 §3.1.2: no fragment; no credentials), before matching:
  // the loopback rule's any-port match must not let userinfo or a fragment through.
  try {
    checkRedirectUri(redirectUri);
  } catch (e) {
    throw new AuthorizePageError(e instanceof OAuthError ? e.description : 'The redirect_uri is malformed.');
  }
  if (!redirectUriMatches(client.redirect_uris, redirectUri)) {
    throw new AuthorizePageError('The redirect_uri does not match any URI registered for this client.');
  }

  // From here on, errors go back to the client (`state` with them, once it is known to be one value).
  const state = single(query, 'state', (description) => new AuthorizeRedirectError(redirectUri, 'invalid_request', description, undefined));
  const fail = (error: string, description: string) => new AuthorizeRedirectError(redirectUri, error, description, state);
  const param = (name: typeof AUTHORIZATION_REQUEST_PARAMS[number]) => single(query, name, (description) => fail('invalid_request', description));

  const responseType = param('response_type');
  if (responseType === undefined) throw fail('invalid_request', 'The request has no response_type; send response_type=code.');
  if (responseType !== 'code') throw fail('unsupported_response_type', 'Only response_type=code is supported.');
  if (!client.grant_types.includes('authorization_code')) throw fail('unauthorized_client', 'This client may not use the authorization code grant.');

  // 3. PKCE, S256 only (OAuth 2.1 §4.1.1; RFC 7636 §4.2 — "plain" refused)
  const codeChallenge = param('code_challenge');
  const method = param('code_challenge_method');
  if (!codeChallenge) throw fail('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256.');
  if (method !== 'S256') throw fail('invalid_request', 'Only code_challenge_method=S256 is accepted.');
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(codeChallenge)) throw fail('invalid_request', 'The code_challenge is malformed.');

  // 4. RFC 8707 resource: the token's audience
  // RFC 8707 §2: several may be asked for; the hub issues a token for one (invalid_target, §2.2).
  const resource = single(query, 'resource', () => fail('invalid_target', 'Send one resource: a token of the hub is for one resource.')) ?? options.defaultResource;
  if (!options.resources.includes(resource.replace(/\/$/, '')) && !options.resources.includes(resource)) {
    throw fail('invalid_target', `The resource ${resource.slice(0, 200)} is not served by this authorization server.`);
  }

  const scope = param('scope');
  if (scope !== undefined && !/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/.test(scope)) {
    throw fail('invalid_scope', 'The scope is malformed.');
  }
  // OIDC Core §3.1.2.1: redirect_uri is REQUIRED in an OpenID Connect request (plain OAuth may leave it out).
  if (presented === undefined && scope?.split(' ').includes('openid')) {
    throw fail('invalid_request', 'An OpenID Connect request (scope openid) must send redirect_uri.');
  }
  // OIDC Core §3.1.2.1: any string; bounded here, as it is stored with the code and signed into the ID token.
  const nonce = param('nonce');
  if (nonce !== undefined && nonce.length > 512) throw fail('invalid_request', 'The nonce is longer than 512 characters.');
  // RFC 9470 step-up, as OIDC Core §3.1.2.1 spells it: how recently and how the user must have authenticated.
  const maxAge = param('max_age');
  if (maxAge !== undefined && !/^\d{1,9}$/.test(maxAge)) throw fail('invalid_request', 'The max_age must be a whole number of seconds.');
  const acr = param('acr_values');
  const acrValues = acr === undefined ? undefined : parseAcrValues(acr);
  if (acrValues === null) throw fail('invalid_request', 'The acr_values must be up to 10 space-separated values of at most 200 characters.');
  return {
    ...(maxAge !== undefined ? { maxAge: Number(maxAge) } : {}),
    ...(acrValues ? { acrValues } : {}),
    client, redirectUri, redirectUriSent: presented !== undefined, codeChallenge, resource: resource.replace(/\/$/, ''),
    ...(state !== undefined ? { state } : {}),
    ...(scope !== undefined ? { scope } : {}),
    ...(nonce !== undefined ? { nonce } : {}),
  };
}

/** The redirect back to the client (RFC 6749 §4.1.2) carrying `iss` (RFC 9207 §2). */
export function redirectBack(redirectUri: string, params: Record<string, string | undefined>): string {
  const u = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.toString();
}
