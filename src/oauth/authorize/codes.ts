/**
 * Authorization codes: single use (atomic consume), short-lived, stored by hash, bound to the
 * client, redirect URI, PKCE challenge and resource of the request that produced them.
 */
import { createHash } from 'node:crypto';
import { hashSecret, randomToken, safeEqual } from '../../crypto/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Store } from '../../storage/adapter.ts';

export interface CodeGrant {
  clientId: string;
  redirectUri: string;
  /**
   * False when the authorization request left redirect_uri out (the client's one registered URI):
   * then the token request need not send it (RFC 6749 §4.1.3). Absent (a code of an earlier
   * version): it was sent.
   */
  redirectUriSent?: boolean;
  codeChallenge: string;
  resource: string;
  scope: string;
  /** OIDC Core §3.1.2.1: echoed in the ID token. */
  nonce?: string;
  user: {
    sub: string; email?: string; name?: string; roles: string[]; groups: string[];
    provider?: string; tenant?: string; sid?: string;
    /** OIDC Core §2: when and how the user authenticated, where known. */
    authTime?: number; acr?: string; amr?: string[];
  };
}

const KIND = 'authz_code';
const ISSUED = 'authz_code_family';

export async function issueCode(store: Store, grant: CodeGrant, ttlSeconds: number): Promise<string> {
  const code = randomToken(32);
  await store.upsert(KIND, hashSecret(code), grant, ttlSeconds);
  return code;
}

/**
 * Redeems a code once. A second redemption fails and returns the refresh family issued from the
 * first, so the caller can revoke it (RFC 6749 §4.1.2: SHOULD revoke tokens issued from a reused code).
 */
export async function redeemCode(store: Store, code: string): Promise<{ grant: CodeGrant } | { replayedFamily: string | undefined }> {
  const id = hashSecret(code);
  const found = await store.find<CodeGrant>(KIND, id);
  if (!found) throw new OAuthError('invalid_grant', 'The authorization code is invalid or expired.');
  if (!(await store.consume(KIND, id))) {
    const issued = await store.find<{ familyId: string }>(ISSUED, id);
    return { replayedFamily: issued?.payload.familyId };
  }
  return { grant: found.payload };
}

export async function rememberIssued(store: Store, code: string, familyId: string, ttlSeconds: number): Promise<void> {
  await store.upsert(ISSUED, hashSecret(code), { familyId }, ttlSeconds);
}

/** RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge. */
export function verifyPkce(verifier: string | undefined, challenge: string): void {
  if (!verifier) throw new OAuthError('invalid_grant', 'The code_verifier is missing (PKCE).');
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) throw new OAuthError('invalid_grant', 'The code_verifier is malformed (RFC 7636 §4.1).');
  const computed = createHash('sha256').update(verifier).digest('base64url');
  if (!safeEqual(computed, challenge)) throw new OAuthError('invalid_grant', 'The code_verifier does not match the code_challenge.');
}
