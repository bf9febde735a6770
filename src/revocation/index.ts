/**
 * The revocation list: credentials revoked before their natural end. RFC 7009 §2.1: an access token
 * is remembered by `jti` until its `exp`; a login (session or refresh family) by `sid`; a signing key
 * by `kid`. Every entry is written to the Store (so it survives restarts and reaches new instances)
 * and published; every instance keeps a local set fed by that pub/sub channel, so a check is a map
 * lookup with no storage round trip, and a revocation reaches all instances within milliseconds.
 * Messages lost while a subscriber was cut off are made up for by a resync from the Store as soon
 * as the hub's heartbeat shows the gap (./contact.ts), and until then the hub answers 503 rather
 * than trust this list; a periodic resync remains as a backstop.
 */
import type { Store } from '../storage/adapter.ts';

export type RevokedType = 'jti' | 'sid' | 'kid';

export interface RevokedEntry {
  type: RevokedType;
  id: string;
  /** Epoch seconds after which no credential it names can be valid anyway. */
  until: number;
}

const KIND = 'revoked';
export const REVOKED_CHANNEL = 'credential-revoked';
const TYPES: ReadonlySet<string> = new Set<RevokedType>(['jti', 'sid', 'kid']);
const MAX_ID = 256;

export interface RevocationListOptions {
  now?: () => number;
  /** How often the local set is rebuilt from the Store (default 30 s; 0 = never). */
  resyncMs?: number;
  onError?: (err: unknown) => void;
}

export class RevocationList {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  /** By type, id → until (epoch seconds). Separate maps: a lookup builds no key string. */
  readonly #local: Record<RevokedType, Map<string, number>> = { jti: new Map(), sid: new Map(), kid: new Map() };
  readonly #listeners = new Set<(entry: RevokedEntry) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(store: Store, options: RevocationListOptions) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
  }

  /** Subscribes first, then loads, so no revocation falls between the two. */
  static async open(store: Store, options: RevocationListOptions = {}): Promise<RevocationList> {
    const list = new RevocationList(store, options);
    await store.subscribe(REVOKED_CHANNEL, (message) => list.#receive(message));
    await list.resync();
    const every = options.resyncMs ?? 30_000;
    if (every > 0) {
      list.#timer = setInterval(() => { list.resync().catch(list.#onError); }, every);
      list.#timer.unref();
    }
    return list;
  }

  /** Revokes now, here and (through the Store's pub/sub) on every instance. */
  async revoke(type: RevokedType, id: string, until: number): Promise<void> {
    if (!TYPES.has(type) || !id || id.length > MAX_ID) throw new Error(`cannot revoke ${type} "${id.slice(0, 32)}"`);
    const ttl = Math.max(1, Math.ceil(until - this.#seconds()));
    const entry: RevokedEntry = { type, id, until };
    this.#add(entry);
    await this.#store.upsert(KIND, `${type}.${id}`, entry, ttl);
    await this.#store.publish(REVOKED_CHANNEL, JSON.stringify(entry));
  }

  /**
   * Local lookup only: never waits on storage. `fid` (the refresh family a token was minted
   * from) is looked up among revoked logins, as `sid` is.
   */
  isRevoked(claims: { jti?: unknown; sid?: unknown; fid?: unknown; kid?: unknown }): RevokedType | null {
    return this.#check('jti', claims.jti) ?? this.#check('sid', claims.sid) ?? this.#check('sid', claims.fid) ?? this.#check('kid', claims.kid);
  }

  /** Called for every revocation this instance learns of (e.g. to drop cached verifications). */
  onRevoked(listener: (entry: RevokedEntry) => void): void {
    this.#listeners.add(listener);
  }

  get size(): number {
    return this.#local.jti.size + this.#local.sid.size + this.#local.kid.size;
  }

  /** Rebuilds the local set from the Store (entries there expire with the credentials they name). */
  async resync(): Promise<void> {
    const stored = await this.#store.list<RevokedEntry>(KIND);
    const now = this.#seconds();
    for (const map of Object.values(this.#local)) for (const [id, until] of map) if (until <= now) map.delete(id);
    for (const { payload } of stored) if (isEntry(payload)) this.#add(payload);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  #receive(message: string): void {
    let entry: unknown;
    try { entry = JSON.parse(message); } catch { return; }
    if (isEntry(entry)) this.#add(entry);
  }

  #check(type: RevokedType, id: unknown): RevokedType | null {
    const map = this.#local[type];
    if (map.size === 0 || typeof id !== 'string') return null;
    const until = map.get(id);
    if (until === undefined) return null;
    if (until > this.#seconds()) return type;
    map.delete(id);
    return null;
  }

  #add(entry: RevokedEntry): void {
    const map = this.#local[entry.type];
    if ((map.get(entry.id) ?? 0) >= entry.until) return;
    map.set(entry.id, entry.until);
    for (const listener of this.#listeners) {
      try { listener(entry); } catch (e) { this.#onError(e); }
    }
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

function isEntry(v: unknown): v is RevokedEntry {
  const e = v as RevokedEntry;
  return typeof e === 'object' && e !== null && TYPES.has(e.type) && typeof e.id === 'string' && e.id.length > 0
    && e.id.length <= MAX_ID && typeof e.until === 'number' && Number.isFinite(e.until);
}
