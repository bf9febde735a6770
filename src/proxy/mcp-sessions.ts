/**
 * MCP sessions (revision 2025-11-25, `Mcp-Session-Id`) held by the hub for each principal. The
 * upstream's session id is never shown to the client: the hub hands out its own random id, bound
 * to the principal that initialized it and mapped to the upstream's. Mimir answers every
 * `initialize` with the same id (`shared-global-session`), so two principals would otherwise
 * share — and evict — one session; and the MCP security best practices forbid a session id
 * being a credential: a leaked hub id is worthless to anyone else. Kept in the shared store
 * (every hub instance agrees), the hub id only as a hash.
 */
import { digestEqual, hashSecret, randomToken } from '../crypto/index.ts';
import type { RecordCache } from '../cache/records.ts';
import type { Store, StoredRecord } from '../storage/adapter.ts';

const KIND = 'mcp_session';
/** Published with the stored key of a session that ended, so every instance drops it from its cache. */
export const MCP_SESSION_ENDED_CHANNEL = 'mcp-session-ended';
/** Bindings by stored key (the hash of the hub id), as the store gave them (their expiry with them). */
export type McpSessionCache = RecordCache<StoredRecord<McpBinding>>;
/** How many hub sessions map to one upstream session (Mimir's is shared by all). */
const UPSTREAM_KIND = 'mcp_upstream_session';
/** Sessions idle longer than this must be re-initialized through the hub (see {@link MCP_SESSION_SLIDE_SECONDS}). */
export const MCP_SESSION_TTL_SECONDS = 24 * 3600;

export interface McpBinding {
  /** Hash of the owner (the principal's upstream id, its client, its actors). */
  owner: string;
  /** The upstream's own session id. */
  upstream: string;
  /** The sign-in session and refresh family of the credential that opened it: when either ends, so does the session. */
  sid?: string;
  fid?: string;
}

/** A new hub session for `owner`, mapped to the upstream's id; returns the id the client gets. */
export async function bindSession(store: Store, upstreamId: string, owner: string, lineage: { sid?: string | undefined; fid?: string | undefined }): Promise<string> {
  const hubId = randomToken(24);
  const binding: McpBinding = {
    owner: hashSecret(owner), upstream: upstreamId,
    ...(lineage.sid ? { sid: lineage.sid } : {}), ...(lineage.fid ? { fid: lineage.fid } : {}),
  };
  await store.upsert(KIND, hashSecret(hubId), binding, MCP_SESSION_TTL_SECONDS);
  await store.increment(UPSTREAM_KIND, hashSecret(upstreamId), 1, MCP_SESSION_TTL_SECONDS);
  return hubId;
}

/**
 * The expiry slides at most once per this many seconds: a write for every MCP message (a commit
 * and a sync of the file on SQLite, a second round trip on Redis) was most of what the hub added
 * to a `tools/call`. A session idle for {@link MCP_SESSION_TTL_SECONDS} less this may already be gone.
 */
export const MCP_SESSION_SLIDE_SECONDS = 3600;

/**
 * The binding of a hub session id, only when `owner` opened it (sliding expiry); null otherwise.
 * `now`: epoch ms. `cache`: bindings read before (the hub's, fed by {@link MCP_SESSION_ENDED_CHANNEL}
 * and read again after MIMIR_CREDENTIAL_CACHE_MAX_AGE), so a message costs no store round trip.
 */
export async function resolveSession(store: Store, hubId: string, owner: string, now: number = Date.now(), cache?: McpSessionCache): Promise<McpBinding | null> {
  if (hubId.length > 256) return null;
  const key = hashSecret(hubId);
  const load = () => store.find<McpBinding>(KIND, key);
  const found = cache ? await cache.get(key, load) : await load();
  const state = judge(found, owner, now);
  if (state === 'foreign') return null;
  // A cached binding whose expiry has passed is as gone as the stored one.
  if (state === 'gone') {
    cache?.forget(key);
    return null;
  }
  if (state === 'slide') {
    await store.upsert(KIND, key, found!.payload, MCP_SESSION_TTL_SECONDS);
    cache?.forget(key); // read again, with its new expiry
  }
  return found!.payload;
}

/**
 * {@link resolveSession} without I/O, for the fast path (src/http/fast-path.ts): the cached binding
 * when it is `owner`'s, alive, and its expiry needs no slide; undefined whenever the route must
 * decide (not cached, someone else's, gone, to be slid).
 */
export function peekSession(cache: McpSessionCache, hubId: string, owner: string, now: number): McpBinding | undefined {
  if (hubId.length > 256) return undefined;
  const found = cache.peekUncounted(hashSecret(hubId));
  if (!found || judge(found, owner, now) !== 'live') return undefined;
  cache.countHit();
  return found.payload;
}

/** What a looked-up binding is to `owner` at `now` (epoch ms): its own and live, to slide, gone, or not its own (or none). */
function judge(found: StoredRecord<McpBinding> | null | undefined, owner: string, now: number): 'live' | 'slide' | 'gone' | 'foreign' {
  // Both are hashSecret digests: compared in constant time as they are (hashing them again, as
  // safeEqual does for strings of any length, was two of the five SHA-256 of an MCP message).
  if (!found || typeof found.payload.owner !== 'string' || !digestEqual(hashSecret(owner), found.payload.owner)) return 'foreign';
  const left = found.expiresAt === undefined ? 0 : found.expiresAt - Math.floor(now / 1000);
  if (found.expiresAt !== undefined && left <= 0) return 'gone';
  return left < MCP_SESSION_TTL_SECONDS - MCP_SESSION_SLIDE_SECONDS ? 'slide' : 'live';
}

/**
 * Ends a hub session. `last`: no other hub session maps to its upstream session any more, so the
 * upstream's may end too (never when it is shared, as Mimir's is).
 */
export async function unbindSession(store: Store, hubId: string, binding: McpBinding, cache?: McpSessionCache): Promise<{ last: boolean }> {
  const key = hashSecret(hubId);
  const removed = await store.destroy(KIND, key);
  cache?.forget(key);
  if (!removed) return { last: false };
  await store.publish(MCP_SESSION_ENDED_CHANNEL, key);
  const left = await store.increment(UPSTREAM_KIND, hashSecret(binding.upstream), -1, MCP_SESSION_TTL_SECONDS);
  return { last: left <= 0 };
}
