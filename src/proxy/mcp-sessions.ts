/**
 * Binds an MCP session (revision 2025-11-25, `Mcp-Session-Id`) to the principal that opened
 * it. The MCP security best practices forbid using a session id as authentication: with the
 * binding, a leaked or guessed session id is worthless to anyone else. Stored hashed, in the
 * shared store, so every hub instance agrees.
 */
import type { Principal } from '../authn/principal.ts';
import { hashSecret, safeEqual } from '../crypto/index.ts';
import type { Store } from '../storage/adapter.ts';

const KIND = 'mcp_session';
/** Sessions idle longer than this must be re-initialized through the hub. */
export const MCP_SESSION_TTL_SECONDS = 24 * 3600;

/** Who a principal is, for session ownership: the user and every actor in the chain. */
export function ownerOf(p: Principal): string {
  const chain: string[] = [];
  for (let a = p.act; a; a = a.act) chain.push(a.sub);
  return JSON.stringify([p.sub, p.client_id ?? null, chain]);
}

export async function bindSession(store: Store, sessionId: string, p: Principal): Promise<void> {
  await store.upsert(KIND, hashSecret(sessionId), { owner: hashSecret(ownerOf(p)) }, MCP_SESSION_TTL_SECONDS);
}

/** `true` only when the session was opened through the hub by this same principal. */
export async function ownsSession(store: Store, sessionId: string, p: Principal): Promise<boolean> {
  const found = await store.find<{ owner: string }>(KIND, hashSecret(sessionId));
  if (!found) return false;
  if (!safeEqual(found.payload.owner, hashSecret(ownerOf(p)))) return false;
  // Sliding expiry: an active session stays bound.
  await store.upsert(KIND, hashSecret(sessionId), found.payload, MCP_SESSION_TTL_SECONDS);
  return true;
}

export async function unbindSession(store: Store, sessionId: string): Promise<void> {
  await store.destroy(KIND, hashSecret(sessionId));
}
