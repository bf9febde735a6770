/**
 * Service accounts: OAuth clients of the hub that authenticate with a secret
 * (client_secret_basic / client_secret_post) or with a key (private_key_jwt, RFC 7523 §2.2: a
 * JWK Set or a jwks_uri set by the administrator) and get Mimir JWTs by client_credentials.
 * Only a hash of the secret is stored; rotation keeps the previous secret valid for a grace period.
 * An account with keys has no secret anyone knows and is never authenticated by one.
 */
import type { JSONWebKeySet } from 'jose';
import { digestEqual, hashSecret, randomToken } from '../crypto/index.ts';
import { LastUseRecorder, lastUses, requestCounts } from '../metrics/request-counts.ts';
import type { FreshnessCheck } from '../revocation/contact.ts';
import type { Store } from '../storage/adapter.ts';

export interface ServiceAccountRecord {
  clientId: string;
  name: string;
  roles: string[];
  /** Scopes it may request; empty = the permissions of its roles. */
  scopes: string[];
  secretHash: string;
  previousSecretHash?: string;
  previousSecretExpiresAt?: number;
  disabled: boolean;
  allowUserContext: boolean;
  allowTokenExchange: boolean;
  createdAt: number;
  /**
   * This incarnation of the account: its tokens carry it (`aid`), so a token of a deleted account
   * never works for a new account that reuses the client id.
   */
  instance?: string;
  secretRotatedAt?: number;
  lastUsedAt?: number;
  /** private_key_jwt: the account's public keys, inline… */
  jwks?: JSONWebKeySet;
  /** …or where they are published (https, or http on loopback). */
  jwksUri?: string;
}

/** Whether the account authenticates with a key (private_key_jwt) rather than a secret. */
export function authenticatesWithKey(r: Pick<ServiceAccountRecord, 'jwks' | 'jwksUri'>): boolean {
  return r.jwks !== undefined || r.jwksUri !== undefined;
}

export interface ServiceAccountInput {
  clientId: string; name?: string; roles: string[]; scopes?: string[]; allowUserContext?: boolean; allowTokenExchange?: boolean;
}

export type ServiceAccountView = Omit<ServiceAccountRecord, 'secretHash' | 'previousSecretHash'> & { hasPreviousSecret: boolean; requestCount?: number };

const KIND = 'service_account';
const DUMMY_HASH = hashSecret('mimir-auth-hub-no-such-service-account');
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const SERVICE_ACCOUNT_CHANNEL = 'service-account-changed';

export class ServiceAccounts {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #grace: number;

  readonly #lastUse: LastUseRecorder;
  readonly #contact: FreshnessCheck | undefined;

  /** `contact`: client authentication reads records cached on pub/sub's word, so it is refused when that word is stale. */
  constructor(store: Store, options: { now?: () => number; secretGraceSeconds?: number; contact?: FreshnessCheck } = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#grace = options.secretGraceSeconds ?? 86400;
    this.#lastUse = new LastUseRecorder(store, 'service_account');
    this.#contact = options.contact;
  }

  async create(input: ServiceAccountInput): Promise<{ clientSecret: string; account: ServiceAccountView }> {
    const clientSecret = randomToken(32);
    const account = await this.#insert(input, hashSecret(clientSecret), {});
    return { clientSecret, account };
  }

  /**
   * An account that authenticates with private_key_jwt (RFC 7523 §2.2) by one of `keys`: no
   * secret is made known (its stored hash is of a random value nobody sees). The caller has
   * validated the keys (src/admin/service.ts).
   */
  async createWithKeys(input: ServiceAccountInput, keys: { jwks: JSONWebKeySet } | { jwksUri: string }): Promise<{ account: ServiceAccountView }> {
    return { account: await this.#insert(input, hashSecret(randomToken(32)), keys) };
  }

  async #insert(input: ServiceAccountInput, secretHash: string, keys: { jwks?: JSONWebKeySet; jwksUri?: string }): Promise<ServiceAccountView> {
    if (!CLIENT_ID_PATTERN.test(input.clientId)) {
      throw new Error(`"${input.clientId}" is not a valid service account id (1-128 of letters, digits, '.', '_', '-', starting with a letter or digit)`);
    }
    const record: ServiceAccountRecord = {
      clientId: input.clientId,
      name: input.name ?? input.clientId,
      roles: [...new Set(input.roles)],
      scopes: [...new Set(input.scopes ?? [])],
      secretHash,
      disabled: false,
      allowUserContext: input.allowUserContext ?? false,
      allowTokenExchange: input.allowTokenExchange ?? false,
      createdAt: this.#seconds(),
      instance: randomToken(12),
      ...(keys.jwks ? { jwks: keys.jwks } : {}),
      ...(keys.jwksUri ? { jwksUri: keys.jwksUri } : {}),
    };
    if (!(await this.#store.insert(KIND, input.clientId, record))) {
      throw new ServiceAccountExists(input.clientId);
    }
    // Every instance forgets what it cached of this id (an earlier account of the same id, or its absence).
    await this.#store.publish(SERVICE_ACCOUNT_CHANNEL, input.clientId).catch(() => undefined);
    return view(record);
  }

  /**
   * Before a cached record answers: refused (503) when this hub's view of revocations is stale,
   * and on SQLite another process's disabling or deletion heard first (see RevocationContact).
   */
  assertFresh(): void {
    this.#contact?.assertFresh();
  }

  /**
   * The account when the secret is right and the account enabled; otherwise null.
   * Both the current and the previous secret are always compared, so timing tells nothing.
   * `find` reads the record (the hub passes its record cache, see src/cache).
   */
  async authenticate(clientId: string, secret: string, find: (clientId: string) => Promise<ServiceAccountRecord | null> = (id) => this.get(id)): Promise<ServiceAccountRecord | null> {
    this.#contact?.assertFresh();
    const r = CLIENT_ID_PATTERN.test(clientId) ? await find(clientId) : null;
    const presented = hashSecret(secret);
    const current = digestEqual(presented, r?.secretHash ?? DUMMY_HASH);
    const previous = digestEqual(presented, r?.previousSecretHash ?? DUMMY_HASH)
      && r?.previousSecretExpiresAt !== undefined && r.previousSecretExpiresAt > this.#seconds();
    // An account with keys authenticates by them only (RFC 7523 §2.2), never by a secret.
    if (!r || r.disabled || authenticatesWithKey(r) || !(current || previous)) return null;
    return r;
  }

  async get(clientId: string): Promise<ServiceAccountRecord | null> {
    return (await this.#store.find<ServiceAccountRecord>(KIND, clientId))?.payload ?? null;
  }

  async list(): Promise<ServiceAccountView[]> {
    const [counts, used] = await Promise.all([requestCounts(this.#store, 'service_account'), lastUses(this.#store, 'service_account')]);
    return (await this.#store.list<ServiceAccountRecord>(KIND))
      .map((r) => ({ ...view(r.payload), requestCount: counts.get(r.payload.clientId) ?? 0, ...(used.has(r.payload.clientId) ? { lastUsedAt: used.get(r.payload.clientId)! } : {}) })).sort((a, b) => a.createdAt - b.createdAt);
  }

  async rotateSecret(clientId: string, graceSeconds = this.#grace): Promise<{ clientSecret: string; previousValidUntil: number } | null> {
    const r = await this.get(clientId);
    if (!r) return null;
    const clientSecret = randomToken(32);
    const now = this.#seconds();
    const next: ServiceAccountRecord = {
      ...r, secretHash: hashSecret(clientSecret), previousSecretHash: r.secretHash,
      previousSecretExpiresAt: now + graceSeconds, secretRotatedAt: now,
    };
    await this.#store.upsert(KIND, clientId, next);
    await this.#store.publish(SERVICE_ACCOUNT_CHANNEL, clientId).catch(() => undefined);
    return { clientSecret, previousValidUntil: now + graceSeconds };
  }

  async setDisabled(clientId: string, disabled: boolean): Promise<boolean> {
    const r = await this.get(clientId);
    if (!r) return false;
    await this.#store.upsert(KIND, clientId, { ...r, disabled });
    await this.#store.publish(SERVICE_ACCOUNT_CHANNEL, clientId).catch(() => undefined);
    return true;
  }

  async delete(clientId: string): Promise<boolean> {
    const removed = await this.#store.destroy(KIND, clientId);
    if (removed) await this.#store.publish(SERVICE_ACCOUNT_CHANNEL, clientId).catch(() => undefined);
    return removed;
  }

  /** Records use in its own record (see recordLastUse): at most once a minute per account and instance. */
  touch(record: ServiceAccountRecord): Promise<void> | undefined {
    return this.#lastUse.touch(record.clientId, this.#seconds());
  }

  #seconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

export class ServiceAccountExists extends Error {
  constructor(clientId: string) {
    super(`service account "${clientId}" already exists`);
    this.name = 'ServiceAccountExists';
  }
}

function view(r: ServiceAccountRecord): ServiceAccountView {
  const { secretHash: _s, previousSecretHash, ...rest } = r;
  return { ...rest, hasPreviousSecret: previousSecretHash !== undefined };
}
