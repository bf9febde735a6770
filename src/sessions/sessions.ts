/**
 * Sign-in sessions. Server-side (the hub Store: redis, memory or sqlite), keyed by the session
 * id — a hash prefix of the cookie value, so a store dump yields no usable cookie, and the refresh
 * grant (which knows only `sid`) can find the session; or `cookie` mode, where the whole session is
 * sealed (AES-256-GCM) into the cookie and kept under the 4 KB cookie limit, and only the IdP
 * tokens live server-side (the refresh grant must renew them without the browser).
 * Idle timeout slides with use; the absolute lifetime never moves. IdP tokens are sealed,
 * bound to the session id. An ended session leaves a tombstone until it would have expired,
 * so every grant tied to it can be refused.
 */
import type { Principal } from '../authn/principal.ts';
import { hashSecret, randomToken, reseal, seal, unseal } from '../crypto/index.ts';
import type { RecordCache } from '../cache/records.ts';
import type { Store } from '../storage/adapter.ts';

/** Published with the session id when a session ends, so every instance drops its cached copy. */
export const SESSION_ENDED_CHANNEL = 'session-ended';

export interface SessionIdentity {
  sub: string;
  email?: string;
  name?: string;
  roles: string[];
  groups: string[];
  provider: string;
  tenant?: string;
  /** OIDC Core §2, from the IdP's ID token when it says: when (epoch seconds) and how the user authenticated. */
  authTime?: number;
  acr?: string;
  amr?: string[];
}

export interface SessionData {
  /** Public id (a hash prefix of the cookie), safe for logs and the `sid` claim. */
  sid: string;
  identity: SessionIdentity;
  createdAt: number;
  lastSeenAt: number;
  absoluteExpiresAt: number;
  /** Sealed IdP refresh token, if the IdP issued one (store mode; cookie mode keeps it server-side). */
  idpRefreshToken?: string;
  /** Sealed IdP access token and its expiry (epoch seconds), renewed on Mimir refresh when due. */
  idpAccessToken?: string;
  idpAccessTokenExpiresAt?: number;
  /** Sealed ID token, for RP-initiated logout's id_token_hint. */
  idToken?: string;
  /** The Mimir refresh-token family started at sign-in, revoked at sign-out. */
  refreshFamily?: string;
  groupsOverage?: boolean;
}

/** A live session as an administrator sees it: who and when, never its tokens. */
export interface SessionSummary {
  sid: string;
  sub: string;
  provider: string;
  email?: string;
  name?: string;
  roles: string[];
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

export interface SessionOptions {
  mode: 'store' | 'cookie';
  key: Buffer;
  cookieName: string;
  idleSeconds: number;
  absoluteSeconds: number;
  now?: () => number;
  /**
   * Server-side sessions by id, so a request does not cost a storage round trip: dropped at once
   * when a session ends here or (SESSION_ENDED_CHANNEL) anywhere, and re-read after its max age.
   */
  cache?: RecordCache<SessionData>;
  /**
   * How long an ended session is remembered as ended: as long as a grant made through it can
   * live (the refresh-token lifetime), so no refresh family of that session mints tokens again.
   */
  endedSeconds?: number;
}

/** Browsers drop cookies over 4096 bytes (name + value + attributes); keep a margin. */
export const MAX_COOKIE_VALUE_BYTES = 3800;
/** The IdP tokens of a session, opened. */
export interface IdpTokens {
  refreshToken?: string;
  accessToken?: string;
  /** Epoch seconds. */
  accessTokenExpiresAt?: number;
}

export interface CreateExtra {
  idpRefreshToken?: string;
  idpAccessToken?: string;
  idpAccessTokenExpiresAt?: number;
  idToken?: string;
  refreshFamily?: string;
  groupsOverage?: boolean;
}

const KIND = 'session';
const REVOKED = 'session_revoked';
/** Cookie mode: the IdP tokens of a session, server-side under its sid. */
const IDP_TOKENS = 'session_idp_tokens';

/**
 * A stored session record (or the IdP tokens kept beside it) with its sealed fields sealed again
 * under `to` (storage copy); undefined for a record of another kind, null when none of `from` opens
 * a field.
 */
export function resealSessionRecord(kind: string, sid: string, payload: Record<string, unknown>, from: readonly Buffer[], to: Buffer): Record<string, unknown> | null | undefined {
  const fields: Record<string, string> = kind === KIND ? { idToken: 'id-token' } : kind === IDP_TOKENS ? { idpRefreshToken: 'idp-refresh', idpAccessToken: 'idp-access' } : {};
  if (!Object.keys(fields).length) return undefined;
  const out = { ...payload };
  for (const [field, purpose] of Object.entries(fields)) {
    const box = payload[field];
    if (typeof box !== 'string') continue;
    const next = reseal(box, `${purpose}:${sid}`, from, to);
    if (next === null) return null;
    out[field] = next;
  }
  return out;
}
type IdpBox = Pick<SessionData, 'idpRefreshToken' | 'idpAccessToken' | 'idpAccessTokenExpiresAt'>;

/**
 * Where sessions live: the one part that differs between the storage modes, chosen once when
 * the hub is built (no branching on the mode elsewhere).
 */
interface SessionStorage {
  /** Keeps a new session and its sealed IdP tokens; returns the cookie value. */
  save(session: SessionData, idp: IdpBox, secret: string, identity: SessionIdentity): Promise<string>;
  /** The session a cookie value carries or names, live or not; null when there is none. */
  load(cookie: string, now: number): Promise<SessionData | null>;
  /** A session found past its end: forget it. */
  expired(session: SessionData, now: number): Promise<void>;
  /** Records a slide of the idle timeout; returns the cookie to set again when the cookie holds the session. */
  slide(session: SessionData): Promise<string | undefined>;
  /** The session a cookie names from memory alone, or undefined when that takes I/O (or this mode keeps none). */
  cached(cookie: string): SessionData | undefined;
  /** The sealed IdP tokens of a session that may still use them. */
  idpBox(sid: string, now: number): Promise<IdpBox | null>;
  /** Stores renewed sealed IdP tokens; false when the session is gone. */
  saveIdpBox(sid: string, box: IdpBox, tokens: IdpTokens, now: number): Promise<boolean>;
  /** Live sessions, or null when this mode cannot count them. */
  count(live: (s: SessionData) => boolean): Promise<number | null>;
}

/** Server-side: the whole session in the Store under its id, cached per instance. */
class StoredSessions implements SessionStorage {
  readonly #store: Store;
  readonly #cache: RecordCache<SessionData> | undefined;
  readonly #live: (s: SessionData, now: number) => boolean;

  constructor(store: Store, cache: RecordCache<SessionData> | undefined, live: (s: SessionData, now: number) => boolean) {
    this.#store = store;
    this.#cache = cache;
    this.#live = live;
  }

  async save(session: SessionData, idp: IdpBox, secret: string): Promise<string> {
    Object.assign(session, idp);
    await this.#store.upsert(KIND, session.sid, session, ttlOf(session, session.createdAt));
    return secret;
  }

  async load(cookie: string, now: number): Promise<SessionData | null> {
    const sid = sidOf(cookie);
    const load = async () => (await this.#store.find<SessionData>(KIND, sid))?.payload ?? null;
    const cache = this.#cache;
    let session = cache ? await cache.get(sid, load) : await load();
    // A cached copy may predate another instance's slide: only the stored record can say it idled out.
    if (cache && session && !this.#live(session, now)) {
      cache.forget(sid);
      session = await load();
    }
    return session;
  }

  async expired(session: SessionData, now: number): Promise<void> {
    if (now >= session.absoluteExpiresAt) await this.#store.destroy(KIND, session.sid);
  }

  async slide(session: SessionData): Promise<undefined> {
    await this.#store.upsert(KIND, session.sid, session, ttlOf(session, session.lastSeenAt));
    this.#cache?.forget(session.sid);
    return undefined;
  }

  cached(cookie: string): SessionData | undefined {
    // Uncounted: when this cannot answer, `read` looks the session up again and counts that.
    return this.#cache?.peekUncounted(sidOf(cookie));
  }

  async idpBox(sid: string, now: number): Promise<IdpBox | null> {
    const s = (await this.#store.find<SessionData>(KIND, sid))?.payload;
    // The login's IdP tokens serve its refresh families past the browser's idle timeout.
    return s && now < s.absoluteExpiresAt ? s : null;
  }

  async saveIdpBox(sid: string, box: IdpBox, tokens: IdpTokens, now: number): Promise<boolean> {
    const s = (await this.#store.find<SessionData>(KIND, sid))?.payload;
    if (!s || now >= s.absoluteExpiresAt) return false;
    const next = withoutStaleExpiry({ ...s, ...box }, tokens);
    await this.#store.upsert(KIND, sid, next, ttlOf(next, now));
    this.#cache?.forget(sid);
    return true;
  }

  async count(live: (s: SessionData) => boolean): Promise<number> {
    return (await this.#store.list<SessionData>(KIND)).filter((r) => live(r.payload)).length;
  }
}

/**
 * `cookie` mode: the whole session sealed (AES-256-GCM) into the cookie, under the 4 KB cookie
 * limit; only the IdP tokens live server-side (a refresh must renew them without the browser),
 * and the sign-out list (a sealed cookie cannot be recalled).
 */
class CookieSessions implements SessionStorage {
  readonly #store: Store;
  readonly #key: Buffer;
  readonly #absoluteSeconds: number;

  constructor(store: Store, key: Buffer, absoluteSeconds: number) {
    this.#store = store;
    this.#key = key;
    this.#absoluteSeconds = absoluteSeconds;
  }

  async save(session: SessionData, idp: IdpBox, _secret: string, identity: SessionIdentity): Promise<string> {
    if (Object.keys(idp).length) await this.#store.upsert(IDP_TOKENS, session.sid, idp, this.#absoluteSeconds);
    let cookie = this.#seal(session);
    // Over the limit: drop what is only nice to have (logout hint, then groups).
    if (cookie.length > MAX_COOKIE_VALUE_BYTES) { delete session.idToken; cookie = this.#seal(session); }
    if (cookie.length > MAX_COOKIE_VALUE_BYTES) { session.identity = { ...identity, groups: [] }; cookie = this.#seal(session); }
    return cookie;
  }

  async load(cookie: string): Promise<SessionData | null> {
    const plain = unseal(this.#key, cookie, 'session-cookie');
    const session = plain ? sealedSession(plain) : null;
    if (session && await this.#store.find(REVOKED, session.sid)) return null;
    return session;
  }

  async expired(): Promise<void> {
    // Nothing to forget: the cookie held it all.
  }

  async slide(session: SessionData): Promise<string> {
    return this.#seal(session);
  }

  cached(): undefined {
    return undefined;
  }

  async idpBox(sid: string): Promise<IdpBox | null> {
    return (await this.#store.find<IdpBox>(IDP_TOKENS, sid))?.payload ?? null;
  }

  async saveIdpBox(sid: string, box: IdpBox, tokens: IdpTokens, now: number): Promise<boolean> {
    const found = await this.#store.find<IdpBox>(IDP_TOKENS, sid);
    if (!found) return false;
    const ttl = found.expiresAt ? found.expiresAt - now : this.#absoluteSeconds;
    await this.#store.upsert(IDP_TOKENS, sid, withoutStaleExpiry({ ...found.payload, ...box }, tokens), Math.max(1, ttl));
    return true;
  }

  async count(): Promise<null> {
    return null;
  }

  #seal(session: SessionData): string {
    return seal(this.#key, JSON.stringify(session), 'session-cookie');
  }
}

export class Sessions {
  readonly cookieName: string;
  readonly #store: Store;
  readonly #o: SessionOptions;
  readonly #now: () => number;
  readonly #storage: SessionStorage;

  constructor(store: Store, options: SessionOptions) {
    this.#store = store;
    this.#o = options;
    this.cookieName = options.cookieName;
    this.#now = options.now ?? Date.now;
    this.#storage = options.mode === 'cookie'
      ? new CookieSessions(store, options.key, options.absoluteSeconds)
      : new StoredSessions(store, options.cache, (s, now) => this.#live(s, now));
  }

  get idleSeconds(): number { return this.#o.idleSeconds; }

  /** A fresh cookie secret and the session id it yields (for grants that must name the session before it exists). */
  newId(): { secret: string; sid: string } {
    const secret = randomToken(32);
    return { secret, sid: sidOf(secret) };
  }

  /** A new session with a fresh id (never reuses an earlier cookie: no fixation). */
  async create(identity: SessionIdentity, extra: CreateExtra = {}, id = this.newId()): Promise<{ cookie: string; session: SessionData }> {
    const now = this.#seconds();
    const { secret, sid } = id;
    const session: SessionData = {
      sid, identity, createdAt: now, lastSeenAt: now, absoluteExpiresAt: now + this.#o.absoluteSeconds,
      ...(extra.refreshFamily ? { refreshFamily: extra.refreshFamily } : {}),
      ...(extra.groupsOverage ? { groupsOverage: true } : {}),
    };
    const idp = this.#sealIdp(sid, {
      ...(extra.idpRefreshToken ? { refreshToken: extra.idpRefreshToken } : {}),
      ...(extra.idpAccessToken ? { accessToken: extra.idpAccessToken } : {}),
      ...(extra.idpAccessTokenExpiresAt ? { accessTokenExpiresAt: extra.idpAccessTokenExpiresAt } : {}),
    });
    if (extra.idToken) session.idToken = seal(this.#o.key, extra.idToken, `id-token:${sid}`);
    const cookie = await this.#storage.save(session, idp, secret, identity);
    return { cookie, session };
  }

  /**
   * The live session behind a cookie value, or null. Slides the idle timeout; in cookie mode
   * a re-sealed cookie is returned in `reissue` for the caller to set.
   */
  async read(cookie: string): Promise<{ session: SessionData; reissue?: string } | null> {
    if (!cookie || cookie.length > 8192) return null;
    const now = this.#seconds();
    let session = await this.#storage.load(cookie, now);
    if (!session) return null;
    if (!this.#live(session, now)) {
      await this.#storage.expired(session, now);
      return null;
    }
    // Slide (see #slideEvery).
    if (now - session.lastSeenAt >= this.#slideEvery()) {
      session = { ...session, lastSeenAt: now };
      const reissue = await this.#storage.slide(session);
      if (reissue !== undefined) return { session, reissue };
    }
    return { session };
  }

  /**
   * {@link resolve} answered from memory alone, without I/O: the Principal of a cached, live
   * session that needs no slide yet; undefined whenever anything else would have to happen (not
   * cached, cookie mode, idle-looking, due to slide) — the caller then awaits `resolve`.
   */
  peek(cookie: string): Principal | undefined {
    if (!cookie || cookie.length > 8192) return undefined;
    const session = this.#storage.cached(cookie);
    if (!session) return undefined;
    const now = this.#seconds();
    if (!this.#live(session, now) || now - session.lastSeenAt >= this.#slideEvery()) return undefined;
    this.#o.cache?.countHit();
    return sessionPrincipal(session, this.#o.idleSeconds);
  }

  /** Slide at most once a minute (or a tenth of the idle timeout) to spare the store. */
  #slideEvery(): number {
    return Math.min(60, Math.ceil(this.#o.idleSeconds / 10));
  }

  /** The session's Principal (`auth_method: 'session'`), for the Authenticator. */
  async resolve(cookie: string): Promise<Principal | null> {
    const found = await this.read(cookie);
    return found ? sessionPrincipal(found.session, this.#o.idleSeconds) : null;
  }

  /** Ends the session; returns what it held (for IdP logout and token revocation). */
  async destroy(cookie: string): Promise<SessionData | null> {
    const found = await this.read(cookie).catch(() => null);
    if (!found) return null;
    await this.end(found.session.sid, found.session.absoluteExpiresAt);
    return found.session;
  }

  /**
   * Ends a session by id: its record and IdP tokens go, and a tombstone stays until it would have
   * expired anyway and as long as a grant made through it can live (a sealed cookie cannot be
   * recalled; grants tied to the sid are refused: src/oauth/refresh/refresh-grant.ts).
   */
  async end(sid: string, absoluteExpiresAt?: number): Promise<void> {
    const now = this.#seconds();
    const until = Math.max(absoluteExpiresAt ?? now + this.#o.absoluteSeconds, now + (this.#o.endedSeconds ?? 0));
    await this.#store.upsert(REVOKED, sid, { at: now }, Math.max(1, until - now));
    try {
      await this.#store.destroy(KIND, sid);
      await this.#store.destroy(IDP_TOKENS, sid);
    } finally {
      this.#o.cache?.forget(sid);
      if (this.#o.cache) await this.#store.publish(SESSION_ENDED_CHANNEL, sid).catch(() => undefined);
    }
  }

  /** Whether the session was ended (sign-out, IdP refusal) rather than merely idle. */
  async wasEnded(sid: string): Promise<boolean> {
    return (await this.#store.find(REVOKED, sid)) !== null;
  }

  /** The IdP tokens of a live session, by id; null when the session is gone (or, in cookie mode, holds none). */
  async idpTokens(sid: string): Promise<IdpTokens | null> {
    const box = await this.#storage.idpBox(sid, this.#seconds());
    if (!box) return null;
    const open = (v: string | undefined, purpose: string) => (v ? unseal(this.#o.key, v, `${purpose}:${sid}`)?.toString('utf8') : undefined);
    const refreshToken = open(box.idpRefreshToken, 'idp-refresh');
    const accessToken = open(box.idpAccessToken, 'idp-access');
    return {
      ...(refreshToken ? { refreshToken } : {}), ...(accessToken ? { accessToken } : {}),
      ...(box.idpAccessTokenExpiresAt ? { accessTokenExpiresAt: box.idpAccessTokenExpiresAt } : {}),
    };
  }

  /** Stores renewed IdP tokens (sealed) with a live session. Returns false when the session is gone. */
  async saveIdpTokens(sid: string, tokens: IdpTokens): Promise<boolean> {
    return this.#storage.saveIdpBox(sid, this.#sealIdp(sid, tokens), tokens, this.#seconds());
  }

  /** Live server-side sessions (the active-sessions gauge); null in cookie mode, which keeps no count. */
  async count(): Promise<number | null> {
    const now = this.#seconds();
    return this.#storage.count((s) => this.#live(s, now));
  }

  /**
   * The live server-side sessions, without their sealed IdP tokens (the admin console's listing);
   * null in cookie mode, where sessions live in the browsers only. A store listing: not for a request path.
   */
  async list(): Promise<SessionSummary[] | null> {
    if (this.#o.mode === 'cookie') return null;
    const now = this.#seconds();
    const out: SessionSummary[] = [];
    for (const { payload: s } of await this.#store.list<SessionData>(KIND)) {
      if (!s?.identity || !this.#live(s, now)) continue;
      const id = s.identity;
      out.push({
        sid: s.sid, sub: id.sub, provider: id.provider, roles: [...id.roles], createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, expiresAt: this.expiresAt(s),
        ...(id.email ? { email: id.email } : {}), ...(id.name ? { name: id.name } : {}),
      });
    }
    return out.sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  /** Opens a sealed field of a session (IdP refresh token, ID token). */
  open(session: SessionData, field: 'idpRefreshToken' | 'idToken'): string | undefined {
    const box = session[field];
    if (!box) return undefined;
    const aad = field === 'idpRefreshToken' ? `idp-refresh:${session.sid}` : `id-token:${session.sid}`;
    return unseal(this.#o.key, box, aad)?.toString('utf8');
  }

  /** Seconds until the session ends if left idle (for the account page and cookie Max-Age). */
  expiresAt(session: SessionData): number {
    return Math.min(session.absoluteExpiresAt, session.lastSeenAt + this.#o.idleSeconds);
  }

  #live(s: SessionData, now: number): boolean {
    return now < s.absoluteExpiresAt && now - s.lastSeenAt < this.#o.idleSeconds;
  }

  #sealIdp(sid: string, t: IdpTokens): IdpBox {
    return {
      ...(t.refreshToken ? { idpRefreshToken: seal(this.#o.key, t.refreshToken, `idp-refresh:${sid}`) } : {}),
      ...(t.accessToken ? { idpAccessToken: seal(this.#o.key, t.accessToken, `idp-access:${sid}`) } : {}),
      ...(t.accessTokenExpiresAt ? { idpAccessTokenExpiresAt: t.accessTokenExpiresAt } : {}),
    };
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

/** Kept until the absolute end (idle expiry is enforced by read), so a refresh can still renew its IdP tokens. */
function ttlOf(session: SessionData, now: number): number {
  return Math.max(1, session.absoluteExpiresAt - now);
}

/** A renewed access token without `expires_in` must not inherit its predecessor's expiry. */
function withoutStaleExpiry<T extends IdpBox>(box: T, tokens: IdpTokens): T {
  if (tokens.accessTokenExpiresAt === undefined) delete box.idpAccessTokenExpiresAt;
  return box;
}

/**
 * The session a sealed cookie holds, or null when it holds anything else (a cookie sealed by
 * another version of the hub with the same key): JSON.parse threw a SyntaxError here, a 500 (issue 15).
 */
function sealedSession(plain: Buffer): SessionData | null {
  let s: Partial<SessionData> | null;
  try {
    s = JSON.parse(plain.toString('utf8')) as Partial<SessionData> | null;
  } catch {
    return null;
  }
  const id = s?.identity;
  const shaped = typeof s === 'object' && s !== null && typeof s.sid === 'string' && typeof s.lastSeenAt === 'number' && typeof s.absoluteExpiresAt === 'number'
    && typeof id === 'object' && id !== null && typeof id.sub === 'string' && strings(id.roles) && strings(id.groups);
  return shaped ? s as SessionData : null;
}

const strings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The session id a cookie value names: a hash prefix (132 bits), so the id reveals nothing of the cookie. */
function sidOf(secret: string): string {
  return hashSecret(secret).slice(0, 22);
}

export function sessionPrincipal(s: SessionData, idleSeconds: number): Principal {
  const id = s.identity;
  const p: Principal = {
    sub: id.sub, roles: [...id.roles], groups: [...id.groups], scopes: [], provider: id.provider,
    auth_method: 'session', sid: s.sid, credential_id: s.sid,
    expires_at: Math.min(s.absoluteExpiresAt, s.lastSeenAt + idleSeconds),
  };
  // The IdP's authentication time, only when it said (OIDC Core §2): the sign-in's own time is no
  // authentication time (the IdP may have answered from an old session), so unknown meets no max_age.
  if (typeof id.authTime === 'number') p.auth_time = id.authTime;
  if (typeof id.acr === 'string') p.acr = id.acr;
  if (Array.isArray(id.amr) && id.amr.every((m) => typeof m === 'string')) p.amr = [...id.amr];
  if (id.email) p.email = id.email;
  if (id.name) p.name = id.name;
  if (id.tenant) p.tenant = id.tenant;
  return p;
}
