/**
 * Sign-in sessions. Server-side (the hub Store: redis, memory or sqlite), keyed by the hash
 * of the cookie value so a store dump yields no usable cookie; or `cookie` mode, where the
 * whole session is sealed (AES-256-GCM) into the cookie and kept under the 4 KB cookie limit.
 * Idle timeout slides with use; the absolute lifetime never moves. The IdP's refresh token is
 * sealed separately, bound to the session id.
 */
import type { Principal } from '../authn/principal.ts';
import { hashSecret, randomToken, seal, unseal } from '../crypto/index.ts';
import type { Store } from '../storage/adapter.ts';

export interface SessionIdentity {
  sub: string;
  email?: string;
  name?: string;
  roles: string[];
  groups: string[];
  provider: string;
  tenant?: string;
}

export interface SessionData {
  /** Public id (a hash prefix of the cookie), safe for logs and the `sid` claim. */
  sid: string;
  identity: SessionIdentity;
  createdAt: number;
  lastSeenAt: number;
  absoluteExpiresAt: number;
  /** Sealed IdP refresh token, if the IdP issued one. */
  idpRefreshToken?: string;
  /** Sealed ID token, for RP-initiated logout's id_token_hint. */
  idToken?: string;
  /** The Mimir refresh-token family started at sign-in, revoked at sign-out. */
  refreshFamily?: string;
  groupsOverage?: boolean;
}

export interface SessionOptions {
  mode: 'store' | 'cookie';
  key: Buffer;
  cookieName: string;
  idleSeconds: number;
  absoluteSeconds: number;
  now?: () => number;
}

/** Browsers drop cookies over 4096 bytes (name + value + attributes); keep a margin. */
export const MAX_COOKIE_VALUE_BYTES = 3800;
const KIND = 'session';
const REVOKED = 'session_revoked';

export class Sessions {
  readonly cookieName: string;
  readonly #store: Store;
  readonly #o: SessionOptions;
  readonly #now: () => number;

  constructor(store: Store, options: SessionOptions) {
    this.#store = store;
    this.#o = options;
    this.cookieName = options.cookieName;
    this.#now = options.now ?? Date.now;
  }

  get idleSeconds(): number { return this.#o.idleSeconds; }

  /** A new session with a fresh id (never reuses an earlier cookie: no fixation). */
  async create(identity: SessionIdentity, extra: { idpRefreshToken?: string; idToken?: string; refreshFamily?: string; groupsOverage?: boolean } = {}): Promise<{ cookie: string; session: SessionData }> {
    const now = this.#seconds();
    const secret = randomToken(32);
    const sid = hashSecret(secret).slice(0, 22);
    const session: SessionData = {
      sid, identity, createdAt: now, lastSeenAt: now, absoluteExpiresAt: now + this.#o.absoluteSeconds,
      ...(extra.refreshFamily ? { refreshFamily: extra.refreshFamily } : {}),
      ...(extra.groupsOverage ? { groupsOverage: true } : {}),
    };
    if (extra.idpRefreshToken) session.idpRefreshToken = seal(this.#o.key, extra.idpRefreshToken, `idp-refresh:${sid}`);
    if (extra.idToken) session.idToken = seal(this.#o.key, extra.idToken, `id-token:${sid}`);
    if (this.#o.mode === 'cookie') {
      let cookie = this.#sealCookie(session);
      // Over the limit: drop what is only nice to have (logout hint, then IdP refresh token).
      if (cookie.length > MAX_COOKIE_VALUE_BYTES) { delete session.idToken; cookie = this.#sealCookie(session); }
      if (cookie.length > MAX_COOKIE_VALUE_BYTES) { delete session.idpRefreshToken; cookie = this.#sealCookie(session); }
      if (cookie.length > MAX_COOKIE_VALUE_BYTES) { session.identity = { ...identity, groups: [] }; cookie = this.#sealCookie(session); }
      return { cookie, session };
    }
    await this.#store.upsert(KIND, hashSecret(secret), session, this.#ttl(session));
    return { cookie: secret, session };
  }

  /**
   * The live session behind a cookie value, or null. Slides the idle timeout; in cookie mode
   * a re-sealed cookie is returned in `reissue` for the caller to set.
   */
  async read(cookie: string): Promise<{ session: SessionData; reissue?: string } | null> {
    if (!cookie || cookie.length > 8192) return null;
    const now = this.#seconds();
    let session: SessionData | null;
    if (this.#o.mode === 'cookie') {
      const plain = unseal(this.#o.key, cookie, 'session-cookie');
      session = plain ? JSON.parse(plain.toString('utf8')) as SessionData : null;
      if (session && await this.#store.find(REVOKED, session.sid)) session = null;
    } else {
      session = (await this.#store.find<SessionData>(KIND, hashSecret(cookie)))?.payload ?? null;
    }
    if (!session) return null;
    if (now >= session.absoluteExpiresAt || now - session.lastSeenAt >= this.#o.idleSeconds) {
      if (this.#o.mode === 'store') await this.#store.destroy(KIND, hashSecret(cookie));
      return null;
    }
    // Slide, at most once a minute (or a tenth of the idle timeout) to spare the store.
    if (now - session.lastSeenAt >= Math.min(60, Math.ceil(this.#o.idleSeconds / 10))) {
      session = { ...session, lastSeenAt: now };
      if (this.#o.mode === 'cookie') return { session, reissue: this.#sealCookie(session) };
      await this.#store.upsert(KIND, hashSecret(cookie), session, this.#ttl(session));
    }
    return { session };
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
    const s = found.session;
    if (this.#o.mode === 'cookie') {
      // A sealed cookie cannot be recalled: remember its id until it would have expired anyway.
      await this.#store.upsert(REVOKED, s.sid, { at: this.#seconds() }, Math.max(1, s.absoluteExpiresAt - this.#seconds()));
    } else {
      await this.#store.destroy(KIND, hashSecret(cookie));
    }
    return s;
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

  #sealCookie(session: SessionData): string {
    return seal(this.#o.key, JSON.stringify(session), 'session-cookie');
  }

  #ttl(session: SessionData): number {
    return Math.max(1, this.expiresAt(session) - this.#seconds());
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

export function sessionPrincipal(s: SessionData, idleSeconds: number): Principal {
  const id = s.identity;
  const p: Principal = {
    sub: id.sub, roles: [...id.roles], groups: [...id.groups], scopes: [], provider: id.provider,
    auth_method: 'session', sid: s.sid, credential_id: s.sid,
    expires_at: Math.min(s.absoluteExpiresAt, s.lastSeenAt + idleSeconds),
  };
  if (id.email) p.email = id.email;
  if (id.name) p.name = id.name;
  if (id.tenant) p.tenant = id.tenant;
  return p;
}
