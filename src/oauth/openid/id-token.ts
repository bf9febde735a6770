/**
 * ID tokens (OIDC Core §2, §3.1.3.6): signed by the hub's current signing key (published in its
 * JWKS, so the algorithm is the one `id_token_signing_alg_values_supported` lists), for one
 * client, carrying the request's `nonce` and the access token's hash.
 */
import { createHash } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Hub } from '../../hub.ts';
import { scopedClaims, type UserFacts } from './claims.ts';

export interface IdTokenInput {
  /** The user as the hub names them to its clients (src/authz `Identities.userId`). */
  sub: string;
  clientId: string;
  /** The scopes granted: the claims they release ride along (§5.4). */
  scopes: readonly string[];
  user: UserFacts;
  accessToken: string;
  nonce?: string | undefined;
  authTime?: number | undefined;
  acr?: string | undefined;
  amr?: readonly string[] | undefined;
}

/**
 * §3.1.3.6 `at_hash`: the left half of the hash of the access token, with the hash of the ID
 * token's algorithm (SHA-512 for EdDSA over Ed25519, as openid-client and other OIDF-certified
 * libraries compute it).
 */
export function accessTokenHash(accessToken: string, alg: string): string {
  const hash = alg === 'EdDSA' || alg === 'Ed25519' ? 'sha512' : alg.endsWith('384') ? 'sha384' : alg.endsWith('512') ? 'sha512' : 'sha256';
  const digest = createHash(hash).update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

export async function issueIdToken(hub: Pick<Hub, 'keys' | 'config' | 'now'>, input: IdTokenInput): Promise<string> {
  const key = hub.keys.current();
  const iat = Math.floor(hub.now() / 1000);
  const claims: Record<string, unknown> = {
    ...scopedClaims(input.scopes, input.user),
    at_hash: accessTokenHash(input.accessToken, key.record.alg),
    ...(input.nonce !== undefined ? { nonce: input.nonce } : {}),
    ...(input.authTime !== undefined ? { auth_time: input.authTime } : {}),
    ...(input.acr !== undefined ? { acr: input.acr } : {}),
    ...(input.amr?.length ? { amr: [...input.amr] } : {}),
  };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.record.alg, kid: key.record.kid, typ: 'JWT' })
    .setIssuer(hub.config.jwt.issuer)
    .setSubject(input.sub)
    .setAudience(input.clientId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + hub.config.jwt.idTokenLifetime)
    .sign(key.sign);
}
