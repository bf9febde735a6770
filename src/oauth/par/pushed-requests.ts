/**
 * Pushed authorization requests (RFC 9126): the parameters of an authorization request, stored
 * in the hub's Store (so any instance can answer the authorization endpoint) under the hash of a
 * random `request_uri`, short-lived and single use (§4: "one-time use"; Store.consume is atomic
 * across instances).
 */
import { hashSecret, randomToken } from '../../crypto/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Store } from '../../storage/adapter.ts';
import { AUTHORIZATION_REQUEST_PARAMS } from '../authorize/request.ts';

/** RFC 9126 §2.2: the URN prefix of the request URIs the hub hands out. */
export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';

/** Seconds a pushed request lives (RFC 9126 §2.2: short-lived; FAPI 2.0 §5.3.2.2: under 600; here at most a minute). */
export const PUSHED_REQUEST_LIFETIME = 60;

const KIND = 'par_request';

export interface PushedRequest {
  clientId: string;
  /** The authorization request's parameters, client authentication left out. */
  params: Record<string, string>;
}

/**
 * Largest pushed request stored, in bytes of its JSON: an unauthenticated public client may push,
 * so what it can make the hub keep is bounded (a real request is a few hundred bytes).
 */
export const MAX_PUSHED_REQUEST_BYTES = 4096;

/** The authorization request's own parameters only (string values); anything else is dropped, never stored. */
export function authorizationRequestParams(params: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of AUTHORIZATION_REQUEST_PARAMS) {
    const value = params[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

/**
 * Stores the authorization request's parameters (unknown ones dropped); returns the `request_uri`
 * that stands for them. A request over MAX_PUSHED_REQUEST_BYTES is `invalid_request`.
 *
 * @example
 * const uri = await pushRequest(hub.store, { clientId: 'c1', params }, PUSHED_REQUEST_LIFETIME);
 * // 'urn:ietf:params:oauth:request_uri:Yx9…'
 */
export async function pushRequest(store: Store, request: PushedRequest, ttlSeconds: number): Promise<string> {
  const record: PushedRequest = { clientId: request.clientId, params: authorizationRequestParams(request.params) };
  if (Buffer.byteLength(JSON.stringify(record)) > MAX_PUSHED_REQUEST_BYTES) {
    throw new OAuthError('invalid_request', `The authorization request is larger than ${MAX_PUSHED_REQUEST_BYTES} bytes, the most a pushed request may hold.`);
  }
  const token = randomToken(32);
  await store.upsert(KIND, hashSecret(token), record, ttlSeconds);
  return `${REQUEST_URI_PREFIX}${token}`;
}

/**
 * The pushed request a `request_uri` stands for, used up: null when it is malformed, unknown,
 * expired or already used (all alike to the caller). Exactly one caller across instances gets it.
 */
export async function takePushedRequest(store: Store, requestUri: string): Promise<PushedRequest | null> {
  if (!requestUri.startsWith(REQUEST_URI_PREFIX)) return null;
  const token = requestUri.slice(REQUEST_URI_PREFIX.length);
  if (!/^[A-Za-z0-9_-]{20,128}$/.test(token)) return null;
  const id = hashSecret(token);
  const found = await store.find<PushedRequest>(KIND, id);
  if (!found || found.consumedAt !== undefined || !(await store.consume(KIND, id))) return null;
  return found.payload;
}
