/**
 * Binds an MCP session (revision 2025-11-25, `Mcp-Session-Id`) to the principal that opened
 * it. The MCP security best practices forbid using a session id as authentication: with the
 * binding, a leaked or guessed session id is worthless to anyone else. Stored hashed, in the
 * shared store, so every hub instance agrees.
 */
import { hashSecret, safeEqual } from '../crypto/index.ts';
import type { Store } from '../storage/adapter.ts';

const KIND = 'mcp_session';
/** Sessions idle longer than this must be re-initialized through the hub. */
export const MCP_SESSION_TTL_SECONDS = 24 * 3600;

/** `owner`: who opened the session, as the proxy names principals (their upstream id, client and actors). */
export async function bindSession(store: Store, sessionId: string, owner: string): Promise<void> {
  await store.upsert(KIND, hashSecret(sessionId), { owner: hashSecret(owner) }, MCP_SESSION_TTL_SECONDS);
}

/** `true` only when the session was opened through the hub by this same principal. */
export async function ownsSession(store: Store, sessionId: string, owner: string): Promise<boolean> {
  const found = await store.find<{ owner: string }>(KIND, hashSecret(sessionId));
  if (!found) return false;
  if (!safeEqual(found.payload.owner, hashSecret(owner))) return false;
  // Sliding expiry: an active session stays bound.
  await store.upsert(KIND, hashSecret(sessionId), found.payload, MCP_SESSION_TTL_SECONDS);
  return true;
}

export async function unbindSession(store: Store, sessionId: string): Promise<void> {
  await store.destroy(KIND, hashSecret(sessionId));
}
