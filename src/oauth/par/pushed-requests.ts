/**
 * Pushed authorization requests (RFC 9126): the parameters of an authorization request, stored
 * in the hub's Store (so any instance can answer the authorization endpoint) under the hash of a
 * random `request_uri`, short-lived and single use (§4: "one-time use"; Store.consume is atomic
 * across instances).
 */
import { hashSecret, randomToken } from '../../crypto/index.ts';
import type { Store } from '../../storage/adapter.ts';

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
 * Stores the parameters; returns the `request_uri` that stands for them.
 *
 * @example
 * const uri = await pushRequest(hub.store, { clientId: 'c1', params }, PUSHED_REQUEST_LIFETIME);
 * // 'urn:ietf:params:oauth:request_uri:Yx9…'
 */
export async function pushRequest(store: Store, request: PushedRequest, ttlSeconds: number): Promise<string> {
  const token = randomToken(32);
  await store.upsert(KIND, hashSecret(token), request, ttlSeconds);
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
