/**
 * RFC 9449 §4.3: checking a DPoP proof. Signature by the public key embedded in the proof
 * (jose EmbeddedJWK refuses private keys), `typ: dpop+jwt`, an asymmetric algorithm, `htm` and
 * `htu` naming this request, a fresh `iat`, a `jti` never seen before (replay cache in the Store,
 * so it holds across instances) and, with an access token, `ath` = its SHA-256 (§4.2).
 */
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { hashSecret, sha256 } from '../crypto/index.ts';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';
import type { DpopNonces } from './nonce.ts';

/** Asymmetric only: RFC 9449 §4.2 forbids `none` and MAC algorithms. */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'];
/** How old (or, by clock skew, how far in the future) a proof's `iat` may be. */
export const DPOP_MAX_AGE_SECONDS = 60;
const CLOCK_SKEW_SECONDS = 5;
const MAX_PROOF_BYTES = 8192;
const REPLAY_KIND = 'dpop_jti';
/**
 * RFC 7515 §7.1: three base64url parts (§2: no padding, no whitespace). jose's decoder skips
 * whitespace, so without this one proof had many spellings (found by fuzzing, issue 15).
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface ProofExpectations {
  method: string;
  /** The request URL as the client may have named it (RFC 9449 §4.3 check 9: no query, no fragment). */
  urls: string[];
  /** The access token presented with the proof (resource requests): `ath` must match. */
  accessToken?: string;
  store: Store;
  now: () => number;
  /** RFC 9449 §8, §9: when set, the proof must carry a nonce these accept. */
  nonces?: DpopNonces | undefined;
}

export interface VerifiedProof {
  /** RFC 7638 thumbprint of the proof key: what `cnf.jkt` carries (RFC 9449 §6.1). */
  jkt: string;
  jti: string;
  /** RFC 9449 §8.2: a fresh nonce to send with the response, when the proof's is about to go stale. */
  nextNonce?: string;
}

/** Verifies one proof; throws `invalid_dpop_proof` (400) naming the failed check. */
export async function verifyDpopProof(proof: string, expect: ProofExpectations): Promise<VerifiedProof> {
  const fail = (description: string, detail?: string) =>
    new OAuthError('invalid_dpop_proof', description, detail ? { detail } : {});
  if (!proof || Buffer.byteLength(proof) > MAX_PROOF_BYTES || !COMPACT_JWS.test(proof)) throw fail('The DPoP proof is not a compact JWS.');
  let jwk: JWK;
  try {
    jwk = decodeProtectedHeader(proof).jwk as JWK;
  } catch {
    throw fail('The DPoP proof header cannot be decoded.');
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGORITHMS }));
  } catch (e) {
    throw fail('The DPoP proof signature, type or algorithm is invalid.', (e as { code?: string }).code);
  }
  const { jti, htm, htu, iat, ath } = payload;
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 256) throw fail('The DPoP proof has no usable jti.');
  if (htm !== expect.method.toUpperCase()) throw fail('The DPoP proof was made for another HTTP method (htm).');
  if (typeof htu !== 'string' || !expect.urls.map(normalizeHtu).includes(normalizeHtu(htu))) {
    throw fail('The DPoP proof was made for another URL (htu).');
  }
  const now = Math.floor(expect.now() / 1000);
  if (typeof iat !== 'number' || iat > now + CLOCK_SKEW_SECONDS || iat < now - DPOP_MAX_AGE_SECONDS - CLOCK_SKEW_SECONDS) {
    throw fail('The DPoP proof is not fresh (iat).');
  }
  if (expect.accessToken !== undefined && ath !== sha256(expect.accessToken).toString('base64url')) {
    throw fail('The DPoP proof is not bound to this access token (ath).');
  }
  const nextNonce = checkNonce(payload.nonce, expect.nonces);
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  // RFC 9449 §11.1: a proof is single use. The entry outlives the iat window, so a replay is
  // caught for as long as the proof would otherwise be accepted.
  const fresh = await expect.store.insert(REPLAY_KIND, hashSecret(`${jkt}.${jti}`), {}, DPOP_MAX_AGE_SECONDS + 2 * CLOCK_SKEW_SECONDS + 1);
  if (!fresh) throw fail('The DPoP proof was already used (jti replay).');
  return nextNonce ? { jkt, jti, nextNonce } : { jkt, jti };
}

/**
 * RFC 9449 §8 (token endpoint) and §9 (resource): a proof without the hub's nonce, or with a stale
 * one, is answered `use_dpop_nonce` with the nonce to use. Checked after the signature and before
 * the jti is recorded, so the proof is not spent and only a genuine client learns it must retry.
 * Returns the nonce to send along when the proof's is of the previous window.
 */
function checkNonce(nonce: unknown, nonces: DpopNonces | undefined): string | undefined {
  if (!nonces) return undefined;
  const standing = nonces.check(nonce);
  if (standing === 'current') return undefined;
  const current = nonces.current();
  if (standing === 'previous') return current;
  const description = nonce === undefined ? 'This server requires a nonce in DPoP proofs; use the one in the DPoP-Nonce header.' : 'The DPoP proof\'s nonce is stale or unknown; use the one in the DPoP-Nonce header.';
  throw new OAuthError('use_dpop_nonce', description, { headers: { 'dpop-nonce': current } });
}

/** RFC 9449 §4.3 check 9 with RFC 3986 §6 normalisation, ignoring query and fragment. */
export function normalizeHtu(value: string): string {
  try {
    const u = new URL(value);
    // URL already lower-cases scheme and host and drops a default port; the path stays as sent.
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return `invalid:${value}`;
  }
}
