/**
 * Mimir refresh tokens: opaque, stored only as a hash, grouped in a family per login.
 * RFC 9700 §4.14.2: each use rotates the token; presenting a rotated-out token revokes the
 * whole family. Atomic single use (Store.consume) makes concurrent refreshes yield one winner.
 *
 * MIMIR_REFRESH_REUSE_INTERVAL (the "reuse interval" of Auth0, Okta's grace period): for that many
 * seconds after a token was rotated out, presenting it again — two tabs, or a retry after a lost
 * response — gets another working token pair of the same family instead of revoking it, as long
 * as it is the immediately previous token (no token of the next generation has been used yet).
 * Once per rotated-out token: a second replay is reuse. And only one token of a generation may
 * ever advance: when the other answer is used too, the family is forked and revoked. So a thief
 * replaying a stolen token gets at most one branch, caught as soon as both branches go on.
 */
import { hashSecret, randomToken } from '../../crypto/index.ts';
import { OAuthError } from '../../errors.ts';
import type { RecordCache } from '../../cache/records.ts';
import type { FreshnessCheck } from '../../revocation/contact.ts';
import type { RevocationList } from '../../revocation/index.ts';
import type { Store, Successor } from '../../storage/adapter.ts';

/** What a refresh token stands for: enough to mint the next access token. */
export interface RefreshGrant {
  sub: string;
  clientId: string;
  scope: string;
  roles: string[];
  email?: string;
  name?: string;
  groups?: string[];
  provider?: string;
  tenant?: string;
  /** The sign-in session this family belongs to, if any. */
  sid?: string;
  act?: { sub: string; act?: unknown };
  /** RFC 8707 resource the tokens are for (becomes `aud`). */
  resource?: string;
  /** RFC 9449: refresh tokens of public clients bound to a DPoP key. */
  jkt?: string;
  /** Whether the client is public (rotation is then mandatory). */
  publicClient?: boolean;
  /**
   * OIDC Core §2: when and how the user authenticated at the sign-in the family comes from. A
   * refresh is no new authentication: every access token of the family says the same.
   */
  authTime?: number;
  acr?: string;
}

interface TokenRecord {
  familyId: string;
  grant: RefreshGrant;
  issuedAt: number;
  expiresAt: number;
  /** Rotations since the family began (absent on tokens stored before it was kept: 0). */
  generation?: number;
}

export interface FamilyRecord {
  familyId: string;
  sub: string;
  clientId: string;
  sid?: string;
  createdAt: number;
  /** Absolute end of the family (the first token's lifetime). */
  expiresAt: number;
  revokedAt?: number;
  revokedReason?: string;
}

export interface IssuedRefreshToken {
  token: string;
  familyId: string;
  expiresAt: number;
}

const TOKEN = 'refresh_token';
const FAMILY = 'refresh_family';
/**
 * `<family>.<generation>`: a token of that generation has been rotated out, so tokens of the
 * generation before are no longer the immediately previous ones (MIMIR_REFRESH_REUSE_INTERVAL).
 */
const ROTATED = 'refresh_rotated';
/** A rotated-out token that has had its one reissue within MIMIR_REFRESH_REUSE_INTERVAL. */
const REISSUED = 'refresh_reissued';
export const FAMILY_REVOKED_CHANNEL = 'refresh-family-revoked';

export class RefreshTokens {
  readonly #store: Store;
  readonly #lifetime: number;
  readonly #now: () => number;
  readonly #revocations: RevocationList | undefined;
  readonly #accessTokenLifetime: number;
  readonly #contact: FreshnessCheck | undefined;
  readonly #reuseInterval: number;
  readonly #families: RecordCache<FamilyRecord> | undefined;

  /**
   * `revocations` + `accessTokenLifetime`: revoking a family also revokes, by `sid`, the access
   * tokens minted from it (RFC 7009 §2.1: tokens of the same grant), for as long as they could live.
   * `reuseIntervalSeconds`: MIMIR_REFRESH_REUSE_INTERVAL (default 0: any reuse revokes the family).
   * `families`: families read by {@link inspect} are kept there (AuthCaches.refreshFamilies, dropped
   * on every instance by {@link FAMILY_REVOKED_CHANNEL}); using a token always reads the store.
   */
  constructor(store: Store, options: {
    lifetimeSeconds: number; now?: () => number; revocations?: RevocationList; accessTokenLifetime?: number;
    contact?: FreshnessCheck; reuseIntervalSeconds?: number; families?: RecordCache<FamilyRecord>;
  }) {
    this.#store = store;
    this.#contact = options.contact;
    this.#lifetime = options.lifetimeSeconds;
    this.#now = options.now ?? Date.now;
    this.#revocations = options.revocations;
    this.#accessTokenLifetime = options.accessTokenLifetime ?? 86400;
    this.#reuseInterval = options.reuseIntervalSeconds ?? 0;
    this.#families = options.families;
  }

  /** Starts a new family (a new login) and returns its first token. */
  async issue(grant: RefreshGrant): Promise<IssuedRefreshToken> {
    const now = this.#seconds();
    const familyId = randomToken(16);
    const family: FamilyRecord = {
      familyId, sub: grant.sub, clientId: grant.clientId, createdAt: now, expiresAt: now + this.#lifetime,
      ...(grant.sid ? { sid: grant.sid } : {}),
    };
    await this.#store.upsert(FAMILY, familyId, family, this.#lifetime);
    return this.#mint(familyId, grant, family.expiresAt, 0);
  }

  /**
   * Uses a refresh token. With rotation, it is consumed and a successor returned; reuse of a
   * consumed one revokes the family and fails, unless the reuse interval allows it (`reused`).
   * Without rotation, the same token stays valid.
   */
  async use(token: string, options: { rotate: boolean }): Promise<{ grant: RefreshGrant; familyId: string; next?: IssuedRefreshToken; reused?: true }> {
    // A refresh renews a sign-in whose end (a session, a family revoked elsewhere) may be news still in flight.
    this.#contact?.assertFresh();
    const id = hashSecret(token);
    const found = await this.#store.find<TokenRecord>(TOKEN, id);
    if (!found) throw new OAuthError('invalid_grant', 'The refresh token is invalid or expired.');
    const record = found.payload;
    const family = await this.#liveFamily(record.familyId);
    if (!family) throw new OAuthError('invalid_grant', 'The refresh token has been revoked.');
    if (found.consumedAt !== undefined) return this.#reuse(id, record, found.consumedAt, family);
    if (!options.rotate && !record.grant.publicClient) return { grant: record.grant, familyId: record.familyId };
    // Exactly one concurrent caller wins; any other is a reuse of a rotated-out token. The old
    // token is used and its successor stored in one step.
    const generation = record.generation ?? 0;
    const next = this.#successor(record.familyId, record.grant, family.expiresAt, generation + 1);
    if (!(await this.#store.consumeAndPut(TOKEN, id, next.record))) {
      // A concurrent caller rotated it a moment ago: within the reuse interval, that is the case
      // the interval is for (two tabs refreshing at once).
      const consumed = this.#reuseInterval > 0 ? (await this.#store.find<TokenRecord>(TOKEN, id))?.consumedAt : undefined;
      return this.#reuse(id, record, consumed, family);
    }
    if (this.#reuseInterval > 0) {
      // The generation before this token is no longer the immediately previous one, and this
      // token is the one of its generation that advanced. Within the interval a generation can
      // have two tokens (the rotation's and the reissue's): if the other already advanced, the
      // family has forked (a replay by someone else, RFC 9700 §4.14.2) and is revoked. The marker
      // lives as long as the family, as long as a second token of the generation could.
      const ttl = Math.max(1, family.expiresAt - this.#seconds());
      if (!(await this.#store.insert(ROTATED, `${record.familyId}.${generation}`, {}, ttl))) {
        await this.revokeFamily(record.familyId, 'reuse_detected');
        throw new RefreshReuseError(record.familyId, record.grant);
      }
    }
    return { grant: record.grant, familyId: record.familyId, next: next.issued };
  }

  /**
   * A rotated-out token presented again. Within MIMIR_REFRESH_REUSE_INTERVAL of its rotation, while
   * it is the immediately previous token of its family, and once only, it gets another token of
   * the next generation (both answers are members of the family, but only one of them may go on
   * refreshing: see `use`); otherwise the family is revoked (RFC 9700 §4.14.2). `consumedAt` is
   * the store's record of the rotation; `id` the stored token's.
   */
  async #reuse(id: string, record: TokenRecord, consumedAt: number | undefined, family: FamilyRecord): Promise<{ grant: RefreshGrant; familyId: string; next: IssuedRefreshToken; reused: true }> {
    const generation = record.generation ?? 0;
    if (this.#reuseInterval > 0 && consumedAt !== undefined && this.#seconds() - consumedAt <= this.#reuseInterval
      && !(await this.#store.find(ROTATED, `${record.familyId}.${generation + 1}`))
      // Exactly one reissue per rotated-out token, across hubs: a second presentation is reuse.
      && await this.#store.insert(REISSUED, id, {}, this.#reuseInterval + 2)) {
      const next = await this.#mint(record.familyId, record.grant, family.expiresAt, generation + 1);
      return { grant: record.grant, familyId: record.familyId, next, reused: true };
    }
    await this.revokeFamily(record.familyId, 'reuse_detected');
    throw new RefreshReuseError(record.familyId, record.grant);
  }

  /**
   * The grant and family of a token without using it (introspection, revocation). The family may
   * come from the cache: its revocation reaches every instance's cache through the store's
   * messages (and a lost one through the revocation contact's resync, which empties it), the only
   * change a family sees; the token itself is read from the store every time (rotation consumes it).
   */
  async inspect(token: string): Promise<{ grant: RefreshGrant; family: FamilyRecord; expiresAt: number; consumed: boolean } | null> {
    const found = await this.#store.find<TokenRecord>(TOKEN, hashSecret(token));
    if (!found) return null;
    const familyId = found.payload.familyId;
    const load = async () => (await this.#store.find<FamilyRecord>(FAMILY, familyId))?.payload ?? null;
    const family = this.#families ? await this.#families.get(familyId, load) : await load();
    if (!family) return null;
    return { grant: found.payload.grant, family, expiresAt: found.payload.expiresAt, consumed: found.consumedAt !== undefined };
  }

  /**
   * Revokes every token of the family, now and on every instance: its refresh tokens, and the
   * access tokens minted from it (they carry the family as `fid`). Only this family (RFC 9700
   * §4.14.2): the sign-in session it came from, and the user's other clients, keep working.
   */
  async revokeFamily(familyId: string, reason: string): Promise<boolean> {
    const found = await this.#store.find<FamilyRecord>(FAMILY, familyId);
    if (!found) return false;
    if (found.payload.revokedAt === undefined) {
      const ttl = Math.max(1, found.payload.expiresAt - this.#seconds());
      await this.#store.upsert(FAMILY, familyId, { ...found.payload, revokedAt: this.#seconds(), revokedReason: reason }, ttl);
    }
    // Here at once; elsewhere when the message below arrives.
    this.#families?.forget(familyId);
    if (this.#revocations) await this.#revocations.revoke('sid', familyId, this.#seconds() + this.#accessTokenLifetime);
    await this.#store.publish(FAMILY_REVOKED_CHANNEL, familyId).catch(() => undefined);
    return true;
  }

  /**
   * Revokes every live family issued to `clientId` (an administrator revoked the client): a public
   * client's refresh token needs no client authentication, so the registration going is not enough.
   * Lists the families: an admin action, not a request path. Returns how many were revoked.
   */
  async revokeClientFamilies(clientId: string, reason: string): Promise<number> {
    return this.#revokeFamiliesWhere((f) => f.clientId === clientId, reason);
  }

  /**
   * Revokes every live family started by the sign-in session `sid` (an administrator ended the
   * session): a family's id is its own, the session it came from is in its record. Lists the
   * families, as {@link revokeClientFamilies} does. Returns how many were revoked.
   */
  async revokeSessionFamilies(sid: string, reason: string): Promise<number> {
    return this.#revokeFamiliesWhere((f) => f.sid === sid, reason);
  }

  async #revokeFamiliesWhere(matches: (family: FamilyRecord) => boolean, reason: string): Promise<number> {
    const now = this.#seconds();
    const live = (await this.#store.list<FamilyRecord>(FAMILY))
      .filter((f) => matches(f.payload) && f.payload.revokedAt === undefined && f.payload.expiresAt > now);
    for (const f of live) await this.revokeFamily(f.id, reason);
    return live.length;
  }

  async #liveFamily(familyId: string): Promise<FamilyRecord | null> {
    const family = await this.#store.find<FamilyRecord>(FAMILY, familyId);
    if (!family || family.payload.revokedAt !== undefined || family.payload.expiresAt <= this.#seconds()) return null;
    return family.payload;
  }

  async #mint(familyId: string, grant: RefreshGrant, familyExpiresAt: number, generation: number): Promise<IssuedRefreshToken> {
    const { record: r, issued } = this.#successor(familyId, grant, familyExpiresAt, generation);
    await this.#store.upsert(r.kind, r.id, r.payload, r.ttlSeconds);
    return issued;
  }

  /** A new token of the family: what to store (its hash only) and what to hand out. */
  #successor(familyId: string, grant: RefreshGrant, familyExpiresAt: number, generation: number): { record: Successor; issued: IssuedRefreshToken } {
    const token = randomToken(32);
    const now = this.#seconds();
    const expiresAt = Math.min(familyExpiresAt, now + this.#lifetime);
    const payload: TokenRecord = { familyId, grant, issuedAt: now, expiresAt, generation };
    return { record: { kind: TOKEN, id: hashSecret(token), payload, ttlSeconds: Math.max(1, expiresAt - now) }, issued: { token, familyId, expiresAt } };
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

/** Thrown when a rotated-out token is presented: the family is already revoked. */
export class RefreshReuseError extends OAuthError {
  readonly familyId: string;
  readonly grant: RefreshGrant;
  constructor(familyId: string, grant: RefreshGrant) {
    super('invalid_grant', 'The refresh token was already used; every token of this sign-in has been revoked.', { detail: 'refresh token reuse detected' });
    this.familyId = familyId;
    this.grant = grant;
  }
}
