/**
 * API keys: `mimir_<id>_<secret>`. The prefix lets secret scanners find leaked keys; the id
 * finds the record; only a SHA-256 of the secret is stored (the secret is 256 random bits, so a
 * fast hash is enough) and it is compared in constant time. Shown once, at creation.
 */
import { digestEqual, hashSecret, randomId, randomToken, safeEqual } from '../crypto/index.ts';
import { LastUseRecorder, lastUses, requestCounts } from '../metrics/request-counts.ts';
import type { Store } from '../storage/adapter.ts';

export interface ApiKeyRecord {
  id: string;
  name: string;
  roles: string[];
  /** Scopes set at creation: the key gets its roles' permissions ∩ these (none: its roles'). */
  scopes?: string[];
  hash: string;
  createdAt: number;
  expiresAt?: number;
  revokedAt?: number;
  lastUsedAt?: number;
  /**
   * A personal key (the account page): the user it was made by and speaks for. Its requests reach
   * the upstream as that user (their X-User-ID), within the permissions they held when they made it.
   */
  owner?: ApiKeyOwner;
}

/** The signed-in user a personal API key belongs to. */
export interface ApiKeyOwner {
  sub: string;
  provider?: string;
  email?: string;
  name?: string;
}

export type ApiKeyView = Omit<ApiKeyRecord, 'hash'> & { status: 'active' | 'expired' | 'revoked'; requestCount?: number };

const KIND = 'api_key';
const KEY_PATTERN = /^mimir_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_REVOKED_CHANNEL = 'api-key-revoked';

/** A hash that matches nothing, compared against when the id is unknown so timing does not tell. */
const DUMMY_HASH = hashSecret('mimir-auth-hub-no-such-key');

export function looksLikeApiKey(value: string): boolean {
  return value.startsWith('mimir_') && KEY_PATTERN.test(value);
}

export class ApiKeys {
  readonly #store: Store;
  readonly #now: () => number;

  readonly #lastUse: LastUseRecorder;

  constructor(store: Store, options: { now?: () => number } = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#lastUse = new LastUseRecorder(store, 'api_key');
  }

  async create(input: { name: string; roles: string[]; scopes?: string[]; expiresInSeconds?: number; owner?: ApiKeyOwner }): Promise<{ key: string; record: ApiKeyView }> {
    const id = randomId(16);
    const secret = randomToken(32);
    const now = this.#seconds();
    const record: ApiKeyRecord = {
      id, name: input.name, roles: [...new Set(input.roles)], hash: hashSecret(secret), createdAt: now,
      ...(input.scopes?.length ? { scopes: [...new Set(input.scopes)] } : {}),
      ...(input.expiresInSeconds ? { expiresAt: now + input.expiresInSeconds } : {}),
      ...(input.owner ? { owner: { ...input.owner } } : {}),
    };
    if (!(await this.#store.insert(KIND, id, record))) throw new Error('API key id collision; try again');
    return { key: `mimir_${id}_${secret}`, record: this.#view(record) };
  }

  /** The key's record when the presented value is a valid, active key; otherwise null. */
  async verify(presented: string): Promise<ApiKeyRecord | null> {
    const m = KEY_PATTERN.exec(presented);
    if (!m) return null;
    const [, id, secret] = m as unknown as [string, string, string];
    const found = await this.#store.find<ApiKeyRecord>(KIND, id);
    const ok = digestEqual(hashSecret(secret), found?.payload.hash ?? DUMMY_HASH);
    if (!found || !ok) return null;
    const record = found.payload;
    if (record.revokedAt !== undefined) return null;
    if (record.expiresAt !== undefined && record.expiresAt <= this.#seconds()) return null;
    return record;
  }

  /** Records use without a write per request: at most once a minute per key and instance. */
  touch(record: ApiKeyRecord): Promise<void> | undefined {
    return this.#lastUse.touch(record.id, this.#seconds());
  }

  async get(id: string): Promise<ApiKeyView | null> {
    const found = await this.#store.find<ApiKeyRecord>(KIND, id);
    return found ? this.#view(found.payload) : null;
  }

  /**
   * Whether some active key satisfies `test`, reading only the keys themselves (no request counts or
   * last uses, which {@link list} joins in): what the start banner asks, on stores of any size. The
   * keys are scanned a page at a time, and the scan stops at the first that does. `limit`: read at
   * most this many keys; undefined when none of them does and more remain unread (the answer is not
   * known).
   */
  async anyActive(test: (record: ApiKeyRecord) => boolean, { limit = Number.POSITIVE_INFINITY }: { limit?: number } = {}): Promise<boolean | undefined> {
    const now = this.#seconds();
    let read = 0;
    for await (const { payload: r } of this.#store.scan<ApiKeyRecord>(KIND)) {
      if (read++ >= limit) return undefined;
      if (r.revokedAt === undefined && (r.expiresAt === undefined || r.expiresAt > now) && test(r)) return true;
    }
    return false;
  }

  async list(): Promise<ApiKeyView[]> {
    const all = await this.#store.list<ApiKeyRecord>(KIND);
    const [counts, used] = await Promise.all([requestCounts(this.#store, 'api_key'), lastUses(this.#store, 'api_key')]);
    return all.map((r) => withLastUse({ ...this.#view(r.payload), requestCount: counts.get(r.payload.id) ?? 0 }, used.get(r.payload.id))).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Marks the key revoked (kept for audit and listing). Returns false when unknown. */
  async revoke(id: string): Promise<boolean> {
    const found = await this.#store.find<ApiKeyRecord>(KIND, id);
    if (!found) return false;
    if (found.payload.revokedAt === undefined) {
      await this.#store.upsert(KIND, id, { ...found.payload, revokedAt: this.#seconds() });
    }
    await this.#store.publish(API_KEY_REVOKED_CHANNEL, id).catch(() => undefined);
    return true;
  }

  async count(): Promise<number> {
    return (await this.#store.list(KIND)).length;
  }

  #view(r: ApiKeyRecord): ApiKeyView {
    const { hash: _hash, ...rest } = r;
    const now = this.#seconds();
    const status = r.revokedAt !== undefined ? 'revoked' : r.expiresAt !== undefined && r.expiresAt <= now ? 'expired' : 'active';
    return { ...rest, status };
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

function withLastUse<T extends { lastUsedAt?: number }>(view: T, at: number | undefined): T {
  return at === undefined ? view : { ...view, lastUsedAt: Math.max(at, view.lastUsedAt ?? 0) };
}

/** Legacy static keys from MIMIR_API_KEYS, compared in constant time against every entry. */
export function matchLegacyKey(presented: string, keys: ReadonlyArray<{ key: string; roles: readonly string[] }>): { index: number; roles: readonly string[] } | null {
  let hit: { index: number; roles: readonly string[] } | null = null;
  keys.forEach((k, index) => {
    if (safeEqual(presented, k.key) && hit === null) hit = { index, roles: k.roles };
  });
  return hit;
}

/** The longest lifetime a key may be given: 10 years (3650d), in seconds. */
export const MAX_DURATION_SECONDS = 3650 * 86400;

/**
 * "30d", "12h", "45m", "90s" or plain seconds → seconds, at most `max` (10 years unless told):
 * beyond it an expiry would be no expiry, and far enough beyond it no date at all.
 */
export function parseDuration(text: string, max = MAX_DURATION_SECONDS): number {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration like 30d, 12h, 45m, 90s`);
  return checkDuration(Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'], text, max);
}

/** `seconds` when it is a whole number from 1 to `max`; otherwise an error naming the accepted range. */
export function checkDuration(seconds: number, text: string, max = MAX_DURATION_SECONDS): number {
  if (!(seconds > 0)) throw new Error(`"${text}" must be greater than zero`);
  if (!Number.isSafeInteger(seconds) || seconds > max) throw new Error(`"${text}" is too long: accepted is 1 second to ${max / 86400}d`);
  return seconds;
}
