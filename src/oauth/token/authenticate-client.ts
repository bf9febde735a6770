/**
 * Client authentication, one place for every endpoint that authenticates clients (token,
 * revocation, introspection, refresh): RFC 6749 §2.3.1 `client_secret_basic` /
 * `client_secret_post`, and RFC 7523 §2.2 `private_key_jwt` (a JWT signed with the client's key,
 * RFC 7521 §4.2). Service accounts and OAuth clients of the authorization server (RFC 7591) both
 * authenticate through here, each by the method it was made with.
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { serviceAccountFinder } from '../../cache/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import {
  ASSERTION_ALGORITHMS, audienceIsIssuer, CLIENT_ASSERTION_TYPE, CLOCK_SKEW_SECONDS, peekJwt, typOf, useOnce,
} from '../../jwt/assertions.ts';
import { authenticatesWithKey, type ServiceAccountRecord } from '../../service-accounts/index.ts';
import type { OAuthClient } from '../clients/metadata.ts';
import { ClientKeysUnavailable, type KeySource } from './client-keys.ts';
import type { Params } from './parse-body.ts';

export type ClientCredentials =
  | { clientId: string; secret: string; method: 'client_secret_basic' | 'client_secret_post' }
  /** RFC 7523 §2.2: `clientId` is the assertion's (unverified) `sub`, checked when it is verified. */
  | { clientId: string; assertion: string; method: 'private_key_jwt' };

/**
 * The longest a client assertion may live from now (RFC 7523 §3 item 4 allows the server to
 * refuse long-lived ones; FAPI 2.0 and the MCP SDK use 5 minutes), plus the clock skew.
 */
export const MAX_CLIENT_ASSERTION_SECONDS = 300;

/** `typ`s a client assertion may carry: none, JWT, or the RFC 7523bis explicit type. */
const CLIENT_ASSERTION_TYPS = new Set([undefined, 'jwt', 'client-authentication+jwt']);

/** RFC 6749 §2.3.1 and RFC 7521 §4.2: one of Basic, client_secret or client_assertion — never two. */
export function readClientCredentials(params: Params, authorization: string | undefined): ClientCredentials | null {
  const basic = authorization && /^basic /i.test(authorization) ? authorization.slice(6).trim() : undefined;
  const assertion = params.client_assertion !== undefined || params.client_assertion_type !== undefined;
  if ([basic !== undefined, params.client_secret !== undefined, assertion].filter(Boolean).length > 1) {
    throw new OAuthError('invalid_request', 'Use one client authentication method, not several (Basic, client_secret, client_assertion).');
  }
  if (basic !== undefined) {
    let decoded: string;
    try {
      decoded = Buffer.from(basic, 'base64').toString('utf8');
    } catch {
      throw new OAuthError('invalid_client', 'Client authentication failed.');
    }
    const colon = decoded.indexOf(':');
    if (colon < 1) throw new OAuthError('invalid_client', 'Client authentication failed.');
    // The credentials are form-urlencoded before Basic encoding (RFC 6749 §2.3.1).
    const clientId = safeDecode(decoded.slice(0, colon));
    const secret = safeDecode(decoded.slice(colon + 1));
    if (params.client_id !== undefined && params.client_id !== clientId) {
      throw new OAuthError('invalid_request', 'client_id differs from the authenticated client.');
    }
    return { clientId, secret, method: 'client_secret_basic' };
  }
  if (params.client_secret !== undefined) {
    if (!params.client_id) throw new OAuthError('invalid_client', 'Client authentication failed.');
    return { clientId: params.client_id, secret: params.client_secret, method: 'client_secret_post' };
  }
  if (assertion) return readClientAssertion(params);
  return null;
}

/**
 * RFC 7521 §4.2: `client_assertion_type` names the JWT profile and `client_assertion` is one JWT
 * whose `sub` is the client id (RFC 7523 §3 item 2); a `client_id` sent along must name the same
 * client. Nothing here is trusted before {@link verifyClientAssertion}.
 */
function readClientAssertion(params: Params): ClientCredentials {
  const { client_assertion: assertion, client_assertion_type: type } = params;
  if (assertion === undefined || type === undefined) {
    throw new OAuthError('invalid_request', 'client_assertion and client_assertion_type go together (RFC 7521 §4.2).');
  }
  if (type !== CLIENT_ASSERTION_TYPE) throw new OAuthError('invalid_client', `The client_assertion_type must be ${CLIENT_ASSERTION_TYPE}.`);
  const sub = peekJwt(assertion)?.claims.sub;
  if (typeof sub !== 'string' || sub === '') throw new OAuthError('invalid_client', 'Client authentication failed.', { detail: 'client_assertion is no JWT with a sub' });
  if (params.client_id !== undefined && params.client_id !== sub) {
    throw new OAuthError('invalid_client', 'Client authentication failed.', { detail: 'client_id differs from the client_assertion sub' });
  }
  return { clientId: sub, assertion, method: 'private_key_jwt' };
}

/**
 * A service account by its secret or its key; the same invalid_client answer whichever part was
 * wrong. `find` reads the record (the hub's record cache by default, see src/cache).
 */
export async function authenticateClient(
  hub: Hub, creds: ClientCredentials | null,
  find: (clientId: string) => Promise<ServiceAccountRecord | null> = serviceAccountFinder(hub.caches, hub.serviceAccounts),
): Promise<ServiceAccountRecord> {
  if (!creds) throw new OAuthError('invalid_client', 'Client authentication is required.');
  const enabled = hub.config.serviceAccounts.enabled;
  if (creds.method === 'private_key_jwt') {
    const account = enabled ? await find(creds.clientId) : null;
    if (!account || account.disabled || !authenticatesWithKey(account)) {
      throw new OAuthError('invalid_client', 'Client authentication failed.', { detail: 'no enabled service account with keys' });
    }
    await verifyClientAssertion(hub, creds, { jwks: account.jwks, jwksUri: account.jwksUri }, true);
    return account;
  }
  const account = enabled ? await hub.serviceAccounts.authenticate(creds.clientId, creds.secret, find) : null;
  if (!account) throw new OAuthError('invalid_client', 'Client authentication failed.');
  return account;
}

/**
 * An OAuth client of the authorization server (RFC 7591 registration, a client ID metadata
 * document, the built-in CLI) by the method it registered: public clients name themselves (no
 * credentials), confidential ones send their secret or a client assertion.
 */
export async function authenticateOAuthClient(hub: Hub, clientId: string, creds: ClientCredentials | null): Promise<OAuthClient> {
  if (creds?.method !== 'private_key_jwt') return hub.clients.authenticate(clientId, creds?.secret, creds?.method);
  const client = creds.clientId === clientId ? await hub.clients.get(clientId).catch(() => null) : null;
  if (!client || client.token_endpoint_auth_method !== 'private_key_jwt') {
    throw new OAuthError('invalid_client', 'Client authentication failed.', { detail: 'no OAuth client registered for private_key_jwt' });
  }
  await verifyClientAssertion(hub, creds, { jwks: client.jwks, jwksUri: client.jwks_uri }, false);
  return client;
}

/**
 * RFC 7523 §3 for a client assertion, every failure `invalid_client` (RFC 7521 §4.2.1):
 * signature by one of the client's keys (asymmetric algorithms only); `iss` = `sub` = the client
 * id; `aud` = the hub's issuer alone (RFC 7523bis / FAPI 2.0: the token endpoint URL, or any
 * second audience, is refused); `exp` required and at most MAX_CLIENT_ASSERTION_SECONDS ahead;
 * `iat` required and not in the future; `jti` required and used once (kept until `exp`).
 */
async function verifyClientAssertion(hub: Hub, creds: Extract<ClientCredentials, { method: 'private_key_jwt' }>, keys: KeySource, trusted: boolean): Promise<void> {
  const fail = (detail: string) => new OAuthError('invalid_client', 'Client authentication failed.', { detail: `client_assertion: ${detail}` });
  const now = hub.now();
  let payload: JWTPayload;
  try {
    const verified = await jwtVerify(creds.assertion, hub.clientKeys.resolver(keys, trusted), {
      algorithms: [...ASSERTION_ALGORITHMS],
      issuer: creds.clientId,
      subject: creds.clientId,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
      clockTolerance: CLOCK_SKEW_SECONDS,
      // iat no older than the longest lifetime, and not in the future (jose checks both).
      maxTokenAge: MAX_CLIENT_ASSERTION_SECONDS,
      currentDate: new Date(now),
    });
    payload = verified.payload;
    if (!CLIENT_ASSERTION_TYPS.has(typOf(verified.protectedHeader))) throw fail('typ is not a client assertion\'s');
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    if (e instanceof ClientKeysUnavailable) throw fail(e.message);
    throw fail(e instanceof errors.JOSEError ? e.code : 'cannot be verified');
  }
  if (!audienceIsIssuer(payload.aud, hub.config.jwt.issuer)) throw fail('aud is not the issuer alone');
  const seconds = Math.floor(now / 1000);
  if (payload.exp! > seconds + MAX_CLIENT_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS) throw fail(`exp is more than ${MAX_CLIENT_ASSERTION_SECONDS} s ahead`);
  if (typeof payload.jti !== 'string' || payload.jti === '') throw fail('jti is missing');
  if (!(await useOnce(hub.store, 'client', creds.clientId, payload.jti, creds.assertion, payload.exp!, seconds))) throw fail('replayed (jti used before)');
}

function safeDecode(s: string): string {
  // Most client ids and secrets hold neither (a regular expression and a decode per request saved).
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
