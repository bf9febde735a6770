/**
 * Mimir access tokens: JWTs in the RFC 9068 profile (`typ: at+jwt`).
 */
import { errors, jwtVerify, SignJWT, type JWTPayload, type JWTHeaderParameters } from 'jose';
import { randomPublicId } from '../crypto/index.ts';
import { OAuthError } from '../errors.ts';
import type { KeyRing } from './keys.ts';

export interface AccessTokenClaims {
  sub: string;
  client_id: string;
  scope?: string;
  roles?: string[];
  /** Overrides the configured audience (RFC 8707 resource indicators). */
  aud?: string | string[];
  email?: string;
  name?: string;
  groups?: string[];
  /** RFC 8693 §4.1 actor: the service acting for `sub`. */
  act?: { sub: string; act?: unknown };
  /** RFC 9449 §6 confirmation: the DPoP key thumbprint. */
  cnf?: { jkt: string };
  auth_method?: string;
  provider?: string;
  tenant?: string;
  /** Sign-in session id: signing out (revoking the login) reaches the token. */
  sid?: string;
  /** Refresh-token family the token was minted from: revoking the family reaches the token. */
  fid?: string;
  /** The incarnation of the service account a client_credentials token was issued to. */
  aid?: string;
  [claim: string]: unknown;
}

export interface IssuedToken {
  token: string;
  jti: string;
  expiresIn: number;
  expiresAt: number;
}

export interface TokenSigner {
  readonly issuer: string;
  readonly audience: string;
  issue(claims: AccessTokenClaims, lifetimeSeconds: number): Promise<IssuedToken>;
}

export function createTokenSigner(keys: KeyRing, options: { issuer: string; audience: string; now?: () => number }): TokenSigner {
  const now = options.now ?? Date.now;
  return {
    issuer: options.issuer,
    audience: options.audience,
    async issue(claims, lifetimeSeconds) {
      const { aud, ...rest } = claims;
      const iat = Math.floor(now() / 1000);
      const exp = iat + lifetimeSeconds;
      const jti = randomPublicId(16);
      const key = keys.current();
      const token = await new SignJWT(rest as JWTPayload)
        .setProtectedHeader({ alg: key.record.alg, kid: key.record.kid, typ: 'at+jwt' })
        .setIssuer(options.issuer)
        .setAudience(aud ?? options.audience)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(exp)
        .setJti(jti)
        .sign(key.sign);
      return { token, jti, expiresIn: lifetimeSeconds, expiresAt: exp };
    },
  };
}

export interface VerifiedAccessToken {
  payload: JWTPayload & AccessTokenClaims & { jti: string; exp: number; iat: number };
  header: JWTHeaderParameters;
}

/**
 * Verifies a Mimir JWT: signature by a key of our own ring (the `kid` picks the key; the
 * key's own algorithm is the only one allowed, so a token cannot choose its key type),
 * `typ`, `iss`, `aud`, `exp`, `nbf`. Expired → `token_expired`, anything else → `invalid_token`.
 */
export async function verifyAccessToken(
  token: string,
  keys: KeyRing,
  options: { issuer: string; audiences: string[]; now?: () => number },
): Promise<VerifiedAccessToken> {
  const getKey = async (header: JWTHeaderParameters) => {
    const kid = header.kid;
    if (typeof kid !== 'string' || kid.length > 128) throw new OAuthError('invalid_token', 'The access token has no usable key id.');
    let found = keys.verificationKey(kid);
    if (!found && (await keys.refreshForUnknownKid(kid))) found = keys.verificationKey(kid);
    if (!found) throw new OAuthError('invalid_token', 'The access token was signed by an unknown key.');
    if (header.alg !== found.alg) throw new OAuthError('invalid_token', 'The access token algorithm does not match its key.');
    return found.key;
  };
  try {
    const currentDate = options.now ? new Date(options.now()) : undefined;
    const { payload, protectedHeader } = await jwtVerify(token, getKey, {
      issuer: options.issuer,
      audience: options.audiences,
      algorithms: ['RS256', 'ES256', 'EdDSA', 'Ed25519', 'HS256'],
      typ: 'at+jwt',
      requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      clockTolerance: 5,
      ...(currentDate ? { currentDate } : {}),
    });
    checkClaimTypes(payload);
    return { payload: payload as VerifiedAccessToken['payload'], header: protectedHeader };
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    if (e instanceof errors.JWTExpired) throw new OAuthError('token_expired', 'The access token expired.', { challenge: { error: 'invalid_token' } });
    throw new OAuthError('invalid_token', 'The access token is invalid.', { detail: e instanceof Error ? `${(e as { code?: string }).code ?? e.name}` : undefined });
  }
}

/**
 * The claims the hub reads, of the types it wrote them with (RFC 7519 §4.1: `sub`, `jti` are
 * strings). A token only the hub's keys could sign is still checked: a malformed claim is an
 * invalid token, never a crash further in.
 */
function checkClaimTypes(p: Record<string, unknown>): void {
  const strings = ['sub', 'jti', 'client_id', 'scope', 'sid', 'fid', 'aid', 'email', 'name', 'provider', 'tenant', 'auth_method'];
  for (const name of strings) {
    if (p[name] !== undefined && typeof p[name] !== 'string') throw new OAuthError('invalid_token', 'The access token is invalid.', { detail: `claim ${name} is not a string` });
  }
}
