/**
 * What the hub's three kinds of incoming JWT assertion share (RFC 7521, RFC 7523): client
 * assertions (private_key_jwt, §2.2), identity assertion grants (ID-JAG) and workload identity
 * grants (§2.1). Asymmetric algorithms only, the hub's issuer as the one audience, a small clock
 * skew, and single use of every assertion, remembered in the Store until it expires.
 */
import { decodeJwt, decodeProtectedHeader, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { hashSecret, sha256 } from '../crypto/index.ts';
import type { Store } from '../storage/adapter.ts';

/** RFC 7523 §2.1: the grant type of a JWT used as an authorization grant. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** RFC 7523 §2.2: the client_assertion_type of a JWT used for client authentication. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** draft-ietf-oauth-identity-assertion-authz-grant §3: the `typ` of an ID-JAG. */
export const ID_JAG_TYP = 'oauth-id-jag+jwt';

/**
 * RFC 8725 §3.1–3.2: asymmetric signatures only. `none` and HS* (a shared secret the hub would
 * have to hold, and an algorithm-confusion path) are never accepted.
 */
export const ASSERTION_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Seconds of clock difference tolerated between the hub and an assertion's issuer. */
export const CLOCK_SKEW_SECONDS = 30;

/** The Store kind holding used assertions (single use, RFC 7523 §3 item 7). */
const USED_KIND = 'assertion_used';

/** A JWT's protected header and claims, unverified: for routing only, never for a decision. */
export interface UnverifiedJwt {
  header: ProtectedHeaderParameters;
  claims: JWTPayload;
}

/** The header and claims of a compact JWS, or null when it is not one. */
export function peekJwt(token: string): UnverifiedJwt | null {
  try {
    return { header: decodeProtectedHeader(token), claims: decodeJwt(token) };
  } catch {
    return null;
  }
}

/**
 * The `typ` header as a media type's subtype, lower-cased (RFC 7515 §4.1.9: `application/` may be
 * left off), or undefined when absent.
 */
export function typOf(header: ProtectedHeaderParameters): string | undefined {
  const typ = header.typ;
  if (typeof typ !== 'string') return undefined;
  return typ.toLowerCase().replace(/^application\//, '');
}

/**
 * `aud` names the hub's issuer and nothing else: the string, or an array of that one string
 * (RFC 7523bis and FAPI 2.0 §5.3.2.1: a token endpoint URL or a second audience is refused, so an
 * assertion made for another server is never good here). A trailing slash is not a difference
 * (RFC 3986 §6.2.3), as the MCP conformance suite's authorization servers accept both forms.
 */
export function audienceIsIssuer(aud: unknown, issuer: string): boolean {
  const one = Array.isArray(aud) ? (aud.length === 1 ? aud[0] : undefined) : aud;
  if (typeof one !== 'string') return false;
  const bare = (s: string) => s.replace(/\/+$/, '');
  return bare(one) === bare(issuer) && bare(issuer) !== '';
}

/**
 * Single use (RFC 7523 §3 item 7, RFC 7521 §4.2): true the first time an assertion of `issuer`
 * with this `jti` is seen, false ever after, on every instance sharing the Store. Remembered
 * until the assertion expires (plus the skew it is accepted with). Without a `jti` the assertion
 * itself (its SHA-256) is what may be used once. `scope` keeps client assertions and grants apart.
 */
export async function useOnce(store: Store, scope: 'client' | 'grant', issuer: string, jti: string | undefined, token: string, exp: number, nowSeconds: number): Promise<boolean> {
  const id = jti !== undefined ? `jti\0${jti}` : `jwt\0${sha256(token).toString('base64url')}`;
  const key = hashSecret(`${scope}\0${issuer}\0${id}`);
  const ttl = Math.max(1, exp - nowSeconds + CLOCK_SKEW_SECONDS);
  return store.insert(USED_KIND, key, { at: nowSeconds }, ttl);
}

/** Members of a JWK that only a private or symmetric key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);
/** At most this many keys in a client's set. */
export const MAX_KEYS = 10;

/**
 * What is wrong with a JWK Set a client authenticates with, or undefined when it is a set of
 * 1..MAX_KEYS public signature keys (RFC 7517 §5; RSA, EC or OKP; no private members; `use`, if
 * given, `sig`). A symmetric (`oct`) key would be a shared secret, which this method is not.
 */
export function publicJwksProblem(doc: unknown): string | undefined {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return 'is not a JWK Set (a JSON object with "keys")';
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) return 'has no "keys"';
  if (keys.length > MAX_KEYS) return `has more than ${MAX_KEYS} keys`;
  for (const [i, key] of keys.entries()) {
    if (!key || typeof key !== 'object' || Array.isArray(key)) return `keys.${i} is not a JWK`;
    const k = key as JWK;
    if (typeof k.kty !== 'string' || !KEY_TYPES.has(k.kty)) return `keys.${i}: kty must be RSA, EC or OKP (public signature keys)`;
    if (PRIVATE_MEMBERS.some((m) => Object.hasOwn(k, m))) return `keys.${i} holds private key material; publish only the public key`;
    if (k.use !== undefined && k.use !== 'sig') return `keys.${i}: use must be "sig"`;
  }
  return undefined;
}

/** A jwks_uri an administrator or a client gives: https, or http on a loopback host. */
export function jwksUriProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (u.username || u.password || u.hash) return 'must not contain credentials or a fragment';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return undefined;
  return 'must use https (http only on a loopback host)';
}
