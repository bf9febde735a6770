/**
 * Small primitives around node:crypto. JOSE work belongs to `jose`; these are the non-JOSE bits:
 * random identifiers, hashing of stored secrets, constant-time comparison, and AES-256-GCM for
 * secrets kept at rest (private signing keys, IdP refresh tokens, CLI credentials).
 */
import { createCipheriv, createDecipheriv, hash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A URL-safe random string carrying `bytes` bytes of entropy. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Random bytes drawn ahead for {@link randomPublicId} (never for secrets: see there). */
let idPool = Buffer.alloc(0);
let idPoolOffset = 0;

/**
 * A URL-safe random identifier of `bytes` bytes, cut from a buffer of CSPRNG bytes drawn 4 KB at a
 * time (as crypto.randomUUID does): a fraction of randomBytes' cost per call. Only for identifiers
 * that are public anyway (a JWT's `jti`): bytes waiting in the pool sit in memory before use, so a
 * secret (key, refresh token, client secret) must come from {@link randomToken}.
 */
export function randomPublicId(bytes = 16): string {
  checkCount(bytes, 'randomPublicId');
  if (bytes > 256) return randomToken(bytes);
  const at = takeFromPool(bytes);
  return idPool.toString('base64url', at, at + bytes);
}

/** The offset of `bytes` (at most 256) unused pool bytes, now taken; the pool is drawn again when short. */
function takeFromPool(bytes: number): number {
  if (idPoolOffset + bytes > idPool.length) {
    idPool = randomBytes(4096);
    idPoolOffset = 0;
  }
  const at = idPoolOffset;
  idPoolOffset += bytes;
  return at;
}

/**
 * The pool's offset is shared: a count that is not a whole number of 0 or more (NaN, -8, 1.5) would
 * leave it NaN (every later id empty, every jti one and the same) or move it back (ids repeated).
 */
function checkCount(n: number, name: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name}: ${n} is not a whole number of 0 or more`);
}

const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Lower-case alphanumeric id (no `_`, so it can sit inside `mimir_<id>_<secret>`), from the pool of
 * {@link randomPublicId}: like it, only for identifiers that are public anyway (an API key's id, an
 * audit event's). A randomBytes call per id was 7 % of an introspection's CPU (its audit event id).
 */
export function randomId(length = 16): string {
  checkCount(length, 'randomId');
  if (length > 256) throw new RangeError(`randomId: length ${length} is over 256`);
  const at = takeFromPool(length);
  let out = '';
  for (let i = at; i < at + length; i++) out += ALPHANUMERIC[idPool[i]! % 36];
  return out;
}

export function sha256(input: string | Buffer): Buffer {
  // One-shot hash(): about half the cost of createHash().update().digest() (client authentication runs it per request).
  return hash('sha256', input, 'buffer');
}

/** base64url SHA-256: how opaque secrets (API keys, client secrets, refresh tokens) are stored. */
export function hashSecret(secret: string): string {
  // One-shot hash(): the same digest at about half the cost; it runs on every API-key request.
  return hash('sha256', secret, 'base64url');
}

/**
 * Constant-time equality of two {@link hashSecret} digests, without hashing them again: both
 * are 43 characters, so only a malformed stored value differs in length (and is unequal).
 */
export function digestEqual(presented: string, stored: string): boolean {
  const a = Buffer.from(presented, 'latin1');
  const b = Buffer.from(stored, 'latin1');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time equality of two strings (hashes them first so lengths never leak). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

export interface Sealed {
  /** version.iv.tag.ciphertext, each base64url. */
  readonly sealed: string;
}

const VERSION = 'v1';
/** NIST SP 800-38D: a 96-bit IV and the full 128-bit tag. */
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM with a random 96-bit IV; `aad` binds the ciphertext to its purpose/owner. */
export function seal(key: Buffer, plaintext: string | Buffer, aad = ''): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

/**
 * Returns null when the box is malformed, tampered with or sealed under another key. The tag must
 * be the whole 16 bytes: GCM checks only the bytes it is given, so a truncated tag (Node accepts
 * 4 to 16 unless told otherwise) would cut a forger's work from 2^128 tries to as few as 2^32
 * (SP 800-38D §5.2.1.2 and Appendix C).
 */
export function unseal(key: Buffer, box: string, aad = ''): Buffer | null {
  const parts = box.split('.');
  if (parts.length !== 4 || parts[0] !== VERSION) return null;
  const iv = Buffer.from(parts[1]!, 'base64url');
  const tag = Buffer.from(parts[2]!, 'base64url');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(parts[3]!, 'base64url')), decipher.final()]);
  } catch {
    return null;
  }
}

/** Derives a 256-bit key for one purpose from secret material (RFC 5869 HKDF-SHA256). */
export function deriveKey(material: string | Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', material, 'mimir-auth-hub', purpose, 32));
}

/**
 * A box sealed under one of `from`, sealed again under `to` with the same AAD (moving data to a
 * store whose hubs run with another secret); null when none of `from` opens it.
 */
export function reseal(box: string, aad: string, from: readonly Buffer[], to: Buffer): string | null {
  for (const key of from) {
    const plain = unseal(key, box, aad);
    if (plain) return seal(to, plain, aad);
  }
  return null;
}

/**
 * Reads a 32-byte key file, creating it (mode 0600, directory 0700) on first use.
 * Refuses a file that is readable by group or others.
 */
export function loadOrCreateKeyFile(path: string): Buffer {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(path, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process won the race
    }
  }
  chmodSync(path, 0o600);
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
  if (key.length !== 32) throw new Error(`${path}: is not a 32-byte base64url key; delete it only if nothing was encrypted with it`);
  return key;
}
