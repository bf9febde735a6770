/**
 * The hub's signing keys. Generated on first start, private halves sealed at rest
 * (AES-256-GCM), public halves published at /.well-known/jwks.json (RFC 7517).
 * Rotation: the new key signs from then on; the old one stays published (and verifying)
 * until the last token it signed has expired, then leaves the set.
 */
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importJWK, importPKCS8, type JWK } from 'jose';
import type { webcrypto } from 'node:crypto';
import { join } from 'node:path';
import type { Config, SigningAlgorithm } from '../config/index.ts';
import { deriveKey, loadOrCreateKeyFile, reseal, seal, sha256, unseal } from '../crypto/index.ts';
import type { Store } from '../storage/adapter.ts';

type CryptoKey = webcrypto.CryptoKey;
type VerifyKey = CryptoKey | Uint8Array;

export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlgorithm;
  /** Public JWK (absent for HS256: a shared secret is never published). */
  publicJwk?: JWK;
  /** Sealed PKCS#8 PEM of the private key (absent for HS256). */
  privateSealed?: string;
  createdAt: number;
  /** When it stopped signing. */
  retiredAt?: number;
  /** After this, it neither verifies nor is published. */
  removeAfter?: number;
}

interface LoadedKey {
  record: SigningKeyRecord;
  verify: VerifyKey;
  sign?: CryptoKey | Uint8Array;
}

const KIND = 'signing_key';
export const SIGNING_KEY_KIND = KIND;
const CURRENT = 'signing_key_current';
/** Channel on which instances learn about rotations without polling. */
export const KEYS_CHANNEL = 'signing-keys';

export class KeyRing {
  readonly #store: Store;
  readonly #config: Config;
  readonly #sealKey: Buffer;
  readonly #now: () => number;
  #keys = new Map<string, LoadedKey>();
  #currentKid = '';
  /** When the last reload began (performance.now(): how often the store is read is about load, not token time). */
  #lastReload = -Infinity;
  /** Reloads begun, and the number of the one whose key set is in use: an older one never replaces a newer one's. */
  #begun = 0;
  #applied = 0;
  /** The number of the last reload that failed (the store could not be read). */
  #failed = 0;
  /** The reload under way, if any: a caller meeting an unknown kid waits for it rather than failing. */
  #reloading: Promise<void> | undefined;

  private constructor(store: Store, config: Config, sealKey: Buffer, now: () => number) {
    this.#store = store;
    this.#config = config;
    this.#sealKey = sealKey;
    this.#now = now;
  }

  /** Loads the key set, generating the first key (or one for a newly configured algorithm). */
  static async open(store: Store, config: Config, options: { now?: () => number } = {}): Promise<KeyRing> {
    const sealKey = signingSealKey(config.jwt.secret, config.dataDir);
    const ring = new KeyRing(store, config, sealKey, options.now ?? Date.now);
    await ring.reload();
    if (ring.#currentKid === '') await ring.#first();
    const current = ring.#keys.get(ring.#currentKid);
    if (!current || current.record.alg !== config.jwt.algorithm || (config.jwt.algorithm === 'HS256' && current.record.kid !== hmacKid(config.jwt.secret!))) {
      await ring.rotate();
    }
    return ring;
  }

  get algorithm(): SigningAlgorithm {
    return this.current().record.alg;
  }

  get currentKid(): string {
    return this.#currentKid;
  }

  current(): LoadedKey & { sign: CryptoKey | Uint8Array } {
    const key = this.#keys.get(this.#currentKid);
    if (!key?.sign) throw new Error('no signing key loaded');
    return key as LoadedKey & { sign: CryptoKey | Uint8Array };
  }

  /** The key that verifies tokens carrying this `kid`, if it is still valid. */
  verificationKey(kid: string): { key: VerifyKey; alg: SigningAlgorithm } | undefined {
    const k = this.#keys.get(kid);
    if (!k) return undefined;
    if (k.record.removeAfter !== undefined && k.record.removeAfter <= this.#nowSeconds()) return undefined;
    return { key: k.verify, alg: k.record.alg };
  }

  /**
   * Whether the store holds a key for this unknown `kid` (another instance may have rotated): true
   * once a key set read from the store after this call began has it, false once one without it is
   * in use. A reload under way (told of a rotation elsewhere) is waited for; one that began before
   * this call may have missed a key written since, so the store is then read again, at most once a
   * second (callers meanwhile wait for that read: a flood of unknown kids costs one read a second).
   */
  async refreshForUnknownKid(kid: string): Promise<boolean> {
    const before = this.#begun;
    for (;;) {
      if (this.#keys.has(kid)) return true;
      if (this.#reloading) {
        await this.#reloading.catch(() => undefined);
        continue;
      }
      // A key set read since this call began is in use, without the kid; or a read since failed
      // (the store is down: unknown now, not waited for again and again).
      if (this.#applied > before || this.#failed > before) return false;
      const wait = this.#lastReload + 1000 - performance.now();
      if (wait > 0) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        continue;
      }
      try {
        await this.reload();
      } catch {
        return false; // the store cannot be read now: unknown, as before
      }
    }
  }

  /** RFC 7517 JWK Set of every published key (the current one first). */
  jwks(): { keys: JWK[] } {
    const now = this.#nowSeconds();
    const keys: JWK[] = [];
    for (const k of this.#sorted()) {
      if (!k.record.publicJwk) continue;
      if (k.record.removeAfter !== undefined && k.record.removeAfter <= now) continue;
      keys.push({ ...k.record.publicJwk, kid: k.record.kid, alg: k.record.alg, use: 'sig' });
    }
    return { keys };
  }

  list(): SigningKeyRecord[] {
    return this.#sorted().map((k) => ({ ...k.record, privateSealed: undefined, publicJwk: undefined }));
  }

  /**
   * The store's first key. Several instances starting together on an empty store each make one, and
   * only the first to name its key current keeps it; the others sign with that one. (Each keeping
   * its own, an instance refused another's tokens until it happened to reload the key set: for an
   * unknown `kid` it does so at most once a second.) The store's `insert` decides who is first.
   */
  async #first(): Promise<void> {
    const now = this.#nowSeconds();
    const record = await this.#generate(this.#config.jwt.algorithm, now);
    await this.#store.upsert(KIND, record.kid, record);
    const won = await this.#store.insert(CURRENT, 'current', { kid: record.kid, at: now });
    if (!won) {
      // Never used to sign: gone again, unless it is the winner's (an HS256 key's kid comes from the secret).
      const winner = await this.#store.find<{ kid: string }>(CURRENT, 'current');
      if (winner?.payload.kid !== record.kid) await this.#store.destroy(KIND, record.kid);
    }
    await this.reload();
    if (won) await this.#store.publish(KEYS_CHANNEL, record.kid).catch(() => undefined);
  }

  /** Generates a new current key and retires the previous one with overlap. */
  async rotate(): Promise<SigningKeyRecord> {
    const alg = this.#config.jwt.algorithm;
    const now = this.#nowSeconds();
    const record = await this.#generate(alg, now);
    await this.#store.upsert(KIND, record.kid, record);
    const previous = this.#currentKid ? this.#keys.get(this.#currentKid) : undefined;
    await this.#store.upsert(CURRENT, 'current', { kid: record.kid, at: now });
    if (previous && previous.record.kid !== record.kid) {
      const retired: SigningKeyRecord = { ...previous.record, retiredAt: now, removeAfter: now + this.#config.jwt.signingKeyOverlap };
      // HS256 secrets are not kept: once MIMIR_JWT_SECRET changed, the old one is gone.
      await this.#store.upsert(KIND, retired.kid, retired, retired.privateSealed ? this.#config.jwt.signingKeyOverlap + 60 : 1);
    }
    await this.reload();
    await this.#store.publish(KEYS_CHANNEL, record.kid).catch(() => undefined);
    return record;
  }

  async reload(): Promise<void> {
    const run = this.#loadAll();
    this.#reloading = run;
    try {
      await run;
    } finally {
      if (this.#reloading === run) this.#reloading = undefined;
    }
  }

  async #loadAll(): Promise<void> {
    const n = ++this.#begun;
    this.#lastReload = performance.now();
    try {
      await this.#read(n);
    } catch (e) {
      this.#failed = Math.max(this.#failed, n);
      throw e;
    }
  }

  async #read(n: number): Promise<void> {
    const records = await this.#store.list<SigningKeyRecord>(KIND);
    const current = await this.#store.find<{ kid: string }>(CURRENT, 'current');
    const next = new Map<string, LoadedKey>();
    for (const { payload } of records) {
      const loaded = await this.#load(payload);
      if (loaded) next.set(payload.kid, loaded);
    }
    // Two reloads under way at once (a rotation's message while an unknown kid's is running): the
    // one that began first read an older store, and must not replace the other's key set.
    if (n < this.#applied) return;
    this.#applied = n;
    this.#keys = next;
    this.#currentKid = current?.payload.kid ?? '';
  }

  async #generate(alg: SigningAlgorithm, now: number): Promise<SigningKeyRecord> {
    if (alg === 'HS256') {
      return { kid: hmacKid(this.#config.jwt.secret!), alg, createdAt: now };
    }
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const pem = await exportPKCS8(privateKey);
    return { kid, alg, publicJwk, privateSealed: seal(this.#sealKey, pem, `signing-key:${kid}`), createdAt: now };
  }

  async #load(record: SigningKeyRecord): Promise<LoadedKey | undefined> {
    if (record.alg === 'HS256') {
      const secret = this.#config.jwt.secret;
      // Only the secret configured now can verify; a record for an old secret is inert.
      if (!secret || hmacKid(secret) !== record.kid) return undefined;
      const key = new TextEncoder().encode(secret);
      return { record, verify: key, sign: key };
    }
    if (!record.publicJwk) return undefined;
    const verify = await importJWK(record.publicJwk, record.alg) as CryptoKey;
    let sign: CryptoKey | undefined;
    if (record.privateSealed && record.retiredAt === undefined) {
      const pem = unseal(this.#sealKey, record.privateSealed, `signing-key:${record.kid}`);
      if (!pem) {
        throw new Error(`signing key ${record.kid} cannot be decrypted: MIMIR_JWT_SECRET (or ${join(this.#config.dataDir, 'signing-keys.key')}) differs from the one it was created with`);
      }
      sign = await importPKCS8(pem.toString('utf8'), record.alg);
    }
    return sign ? { record, verify, sign } : { record, verify };
  }

  #sorted(): LoadedKey[] {
    return [...this.#keys.values()].sort((a, b) =>
      a.record.kid === this.#currentKid ? -1 : b.record.kid === this.#currentKid ? 1 : b.record.createdAt - a.record.createdAt);
  }

  #nowSeconds(): number {
    return Math.floor(this.#now() / 1000);
  }
}

/**
 * A stored signing key whose private half is sealed again under `to` (storage copy into a store
 * whose hubs share MIMIR_JWT_SECRET); null when none of `from` opens it. HS256 records hold no
 * private half and come back unchanged.
 */
export function resealSigningKey(record: SigningKeyRecord, from: readonly Buffer[], to: Buffer): SigningKeyRecord | null {
  if (!record.privateSealed) return record;
  const box = reseal(record.privateSealed, `signing-key:${record.kid}`, from, to);
  return box ? { ...record, privateSealed: box } : null;
}

/** The key a hub seals its signing keys with: from MIMIR_JWT_SECRET, else the key file in MIMIR_DATA_DIR. */
export function signingSealKey(secret: string | undefined, dataDir: string): Buffer {
  return secret ? deriveKey(secret, 'signing-key-encryption') : loadOrCreateKeyFile(join(dataDir, 'signing-keys.key'));
}

/** A stable, non-reversible id for an HMAC secret. */
function hmacKid(secret: string): string {
  return 'hs-' + sha256(`mimir-hs256-kid:${secret}`).toString('base64url').slice(0, 16);
}
