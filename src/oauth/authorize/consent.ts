/**
 * Consent, remembered per user and client: a client the user approved before gets a code
 * without asking again, as long as it asks for no more than was approved. This closes the
 * confused-deputy hole of a proxy authorization server (MCP security best practices).
 */
import { hashSecret, randomToken } from '../../crypto/index.ts';
import type { Store } from '../../storage/adapter.ts';
import type { AuthorizationRequest } from './request.ts';

const CONSENT = 'consent';
const PENDING = 'authz_pending';
/** Remembered consent lasts 90 days. */
const CONSENT_TTL = 90 * 86400;

const key = (sub: string, clientId: string) => hashSecret(`${sub}\n${clientId}`);

interface Consent {
  scopes: string[];
  redirectUris: string[];
  /** RFC 8707 resources the user approved tokens for (a token for the origin root reaches more than one for /mcp). */
  resources?: string[];
}

/** Whether the user approved this client before for these scopes, this redirect origin and this resource. */
export async function hasConsent(store: Store, sub: string, request: AuthorizationRequest, scopes: readonly string[]): Promise<boolean> {
  const found = await store.find<Consent>(CONSENT, key(sub, request.client.client_id));
  if (!found) return false;
  return scopes.every((s) => found.payload.scopes.includes(s)) && found.payload.redirectUris.includes(new URL(request.redirectUri).origin)
    && (found.payload.resources ?? []).includes(request.resource);
}

export async function rememberConsent(store: Store, sub: string, request: AuthorizationRequest, scopes: readonly string[]): Promise<void> {
  const previous = await store.find<Consent>(CONSENT, key(sub, request.client.client_id));
  const merged: Consent = {
    scopes: [...new Set([...(previous?.payload.scopes ?? []), ...scopes])],
    redirectUris: [...new Set([...(previous?.payload.redirectUris ?? []), new URL(request.redirectUri).origin])],
    resources: [...new Set([...(previous?.payload.resources ?? []), request.resource])],
  };
  await store.upsert(CONSENT, key(sub, request.client.client_id), merged, CONSENT_TTL);
}

export interface PendingAuthorization {
  request: AuthorizationRequest;
  scopes: string[];
  sub: string;
  sid: string | undefined;
}

/** A request waiting for the user's decision, bound to the session that saw the consent page. */
export async function savePending(store: Store, pending: PendingAuthorization, ttlSeconds: number): Promise<string> {
  const id = randomToken(24);
  await store.upsert(PENDING, hashSecret(id), pending, ttlSeconds);
  return id;
}

/** Single use: a decision can be submitted once. */
export async function takePending(store: Store, id: string): Promise<PendingAuthorization | null> {
  const hashed = hashSecret(id);
  const found = await store.find<PendingAuthorization>(PENDING, hashed);
  if (!found || !(await store.consume(PENDING, hashed))) return null;
  return found.payload;
}
