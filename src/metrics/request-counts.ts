/**
 * Per-credential request counts (the seed's token monitor): counter records in the Store, one per
 * API key or service account, added to by every hub instance (AuthMetrics.flush), read by listings.
 */
import type { Store } from '../storage/adapter.ts';

export const REQUEST_COUNT_KIND = 'request_count';
export type CountedCredential = 'api_key' | 'service_account';

/** Request counts of every credential of one kind, by id. */
export async function requestCounts(store: Store, kind: CountedCredential): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const r of await store.list<{ value?: number }>(REQUEST_COUNT_KIND)) {
    if (r.id.startsWith(`${kind}.`) && typeof r.payload.value === 'number') out.set(r.id.slice(kind.length + 1), r.payload.value);
  }
  return out;
}

const LAST_USED_KIND = 'last_used';

/** Last-use writes without a write per request: at most once a minute per credential and instance. */
export class LastUseRecorder {
  readonly #store: Store;
  readonly #kind: CountedCredential;
  readonly #written = new Map<string, number>();

  constructor(store: Store, kind: CountedCredential) {
    this.#store = store;
    this.#kind = kind;
  }

  /**
   * Synchronous on the hot path: nearly every call writes nothing and returns undefined. A write's
   * promise never rejects (a failed write is dropped: last use is a hint); callers need not wait for it.
   */
  touch(id: string, atSeconds: number): Promise<void> | undefined {
    const last = this.#written.get(id);
    if (last !== undefined && atSeconds - last < 60) return;
    if (this.#written.size >= 10_000) this.#written.clear();
    this.#written.set(id, atSeconds);
    return recordLastUse(this.#store, this.#kind, id, atSeconds).catch(() => undefined);
  }
}

/**
 * Records a credential's last use in a record of its own — never by rewriting the credential,
 * which could race with a revocation on another instance and undo it.
 */
export async function recordLastUse(store: Store, kind: CountedCredential, id: string, atSeconds: number): Promise<void> {
  await store.upsert(LAST_USED_KIND, `${kind}.${id}`, { at: atSeconds });
}

/** Last use of every credential of one kind, by id (epoch seconds). */
export async function lastUses(store: Store, kind: CountedCredential): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const r of await store.list<{ at?: number }>(LAST_USED_KIND)) {
    if (r.id.startsWith(`${kind}.`) && typeof r.payload.at === 'number') out.set(r.id.slice(kind.length + 1), r.payload.at);
  }
  return out;
}
