/**
 * RFC 9449 §5: a token request carrying a `DPoP` proof gets a token bound to the proof's key.
 * With MIMIR_ENABLE_TOKEN_BINDING=false the header is ignored and Bearer tokens are issued,
 * as a server without DPoP support would (RFC 9449 §5, last paragraph).
 */
import type { Config } from '../config/index.ts';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';
import type { DpopNonces } from './nonce.ts';
import { verifyDpopProof } from './verify-proof.ts';

/**
 * The `jkt` to bind the issued token to (and, RFC 9449 §8.2, a fresh nonce to send with the answer
 * when one is due), or undefined when no proof was sent (or binding is off). With
 * MIMIR_DPOP_REQUIRE_NONCE a proof without the hub's nonce is refused `use_dpop_nonce` (400).
 */
export async function dpopForTokenRequest(
  deps: { config: Config; store: Store; now: () => number; dpopNonces?: DpopNonces | undefined },
  request: { headers: Record<string, string | string[] | undefined>; method: string; url: string },
): Promise<{ jkt: string; nextNonce?: string } | undefined> {
  if (!deps.config.security.tokenBinding) return undefined;
  const header = request.headers.dpop;
  if (header === undefined) return undefined;
  if (Array.isArray(header) || header.includes(',')) throw new OAuthError('invalid_dpop_proof', 'Send exactly one DPoP proof.');
  const path = request.url.split('?')[0]!;
  const { jkt, nextNonce } = await verifyDpopProof(header, {
    method: request.method, urls: [`${deps.config.publicUrl}${path}`], store: deps.store, now: deps.now, nonces: deps.dpopNonces,
  });
  return nextNonce ? { jkt, nextNonce } : { jkt };
}
