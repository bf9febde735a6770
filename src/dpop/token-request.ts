/**
 * RFC 9449 §5: a token request carrying a `DPoP` proof gets a token bound to the proof's key.
 * With MIMIR_ENABLE_TOKEN_BINDING=false the header is ignored and Bearer tokens are issued,
 * as a server without DPoP support would (RFC 9449 §5, last paragraph).
 */
import type { Config } from '../config/index.ts';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';
import { verifyDpopProof } from './verify-proof.ts';

/** The `jkt` to bind the issued token to, or undefined when no proof was sent (or binding is off). */
export async function dpopForTokenRequest(
  deps: { config: Config; store: Store; now: () => number },
  request: { headers: Record<string, string | string[] | undefined>; method: string; url: string },
): Promise<string | undefined> {
  if (!deps.config.security.tokenBinding) return undefined;
  const header = request.headers.dpop;
  if (header === undefined) return undefined;
  if (Array.isArray(header) || header.includes(',')) throw new OAuthError('invalid_dpop_proof', 'Send exactly one DPoP proof.');
  const path = request.url.split('?')[0]!;
  const { jkt } = await verifyDpopProof(header, { method: request.method, urls: [`${deps.config.publicUrl}${path}`], store: deps.store, now: deps.now });
  return jkt;
}
